"""The hypercorn websocket fast path (trio_engineio/_hypercorn.py) on a real worker.

It writes frames straight to the socket when no one else is writing; these tests
try what could break that: concurrent writers, hypercorn's own writes (pings,
close answers), partial writes to a slow reader, a close in the middle of a
burst, and connections where it must stand aside (TLS).
"""

from __future__ import annotations

import pathlib
import shutil
import socket
from typing import Any

import pytest
import trio
from test_client_hypercorn import serve_tls
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, Ping, Pong, Request, TextMessage

from trio_engineio import ASGIApp, AsyncClient, AsyncServer, _hypercorn
from trio_engineio._http import Receive, Scope, Send
from trio_engineio.testing import serve_hypercorn

SENDERS = 8
PER_SENDER = 200


def _app(**options: Any) -> tuple[AsyncServer, ASGIApp]:
    eio = AsyncServer(async_mode="asgi", **options)
    return eio, ASGIApp(eio)


async def _receive(client: AsyncClient, count: int) -> list[Any]:
    received: list[Any] = []
    with trio.fail_after(30):
        while len(received) < count:
            received.append(await client.receive())
    return received


@pytest.mark.parametrize("transports", [["websocket"], ["polling", "websocket"]], ids=["websocket", "upgraded"])
async def test_concurrent_writers_and_pings_keep_every_frame_whole_and_in_order(transports: list[str]) -> None:
    """8 tasks send 200 numbered messages each at once while pings fly (every 50 ms)."""
    eio, app = _app(ping_interval=0.05, ping_timeout=5)

    @eio.on("message")
    async def message(sid: str, data: Any) -> None:
        async def sender(number: int) -> None:
            for index in range(PER_SENDER):
                await eio.send(sid, f"{number}:{index}:" + "x" * (index % 50) * 40)

        async with trio.open_nursery() as nursery:
            for number in range(SENDERS):
                nursery.start_soon(sender, number)

    async with serve_hypercorn(app) as url, AsyncClient() as client:
        await client.connect(url, transports=transports)
        await client.send("go")
        received = await _receive(client, SENDERS * PER_SENDER)
        for number in range(SENDERS):
            mine = [item for item in received if item.startswith(f"{number}:")]
            assert [int(item.split(":")[1]) for item in mine] == list(range(PER_SENDER))
            assert all(len(item.split(":")[2]) == (int(item.split(":")[1]) % 50) * 40 for item in mine)
        assert client.state == "connected"  # every ping was answered in time


async def test_partial_writes_to_a_slow_reader_arrive_intact(monkeypatch: pytest.MonkeyPatch) -> None:
    """Large messages, sent at once by several tasks, to a client that reads slowly through a
    small buffer and sends websocket pings all along: the kernel takes part of a frame,
    hypercorn's locked send finishes it, hypercorn's pongs go between frames, and nothing
    interleaves."""
    eio, app = _app(ping_timeout=30)
    sizes = [200_000 + 7919 * index for index in range(10)]

    @eio.on("message")
    async def message(sid: str, data: Any) -> None:
        async with trio.open_nursery() as nursery:
            for index, size in enumerate(sizes):
                nursery.start_soon(eio.send, sid, bytes([index]) * size)

    # The fast path hands the rest of a partial write to hypercorn's protocol_send: count those.
    from hypercorn.trio.tcp_server import TCPServer

    finished_by_hypercorn: list[int] = []
    original = TCPServer.protocol_send

    async def counting(self: TCPServer, event: Any) -> None:
        if len(getattr(event, "data", b"")) > 10_000:
            finished_by_hypercorn.append(len(event.data))
        await original(self, event)

    monkeypatch.setattr(TCPServer, "protocol_send", counting)
    async with serve_hypercorn(app) as url:
        host, port = url.removeprefix("http://").split(":")
        stream = await trio.open_tcp_stream(host, int(port))
        stream.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
        async with stream:
            ws = WSConnection(ConnectionType.CLIENT)
            await stream.send_all(
                ws.send(Request(host=f"{host}:{port}", target="/engine.io/?EIO=4&transport=websocket"))
            )
            received: list[bytes] = []
            pongs: list[int] = []
            pings_sent = 0
            partial = bytearray()
            sent_go = False
            with trio.fail_after(60):
                while len(received) < len(sizes):
                    ws.receive_data(await stream.receive_some(32768))
                    await trio.sleep(0.001)  # a slow reader (real sockets, real time)
                    if sent_go:
                        # hypercorn's reader answers each websocket ping under its send lock,
                        # between (never inside) the frames our writers put on the socket.
                        pings_sent += 1
                        await stream.send_all(ws.send(Ping(payload=pings_sent.to_bytes(4, "big"))))
                    for event in ws.events():
                        if isinstance(event, AcceptConnection) and not sent_go:
                            await stream.send_all(ws.send(TextMessage(data="4go")))
                            sent_go = True
                        elif isinstance(event, BytesMessage):
                            partial += event.data
                            if event.message_finished:
                                received.append(bytes(partial))
                                partial.clear()
                        elif isinstance(event, TextMessage) and event.data == "2":
                            await stream.send_all(ws.send(TextMessage(data="3")))
                        elif isinstance(event, Pong):
                            pongs.append(int.from_bytes(event.payload, "big"))
    assert sorted(len(item) for item in received) == sorted(sizes)
    assert len(pongs) > 10
    assert pongs == list(range(1, len(pongs) + 1))  # answered in order, intact
    for item in received:
        assert item == bytes([item[0]]) * len(item)
    assert finished_by_hypercorn, "no write went partial: the test did not test what it says"


async def test_a_server_close_in_the_middle_of_a_burst_arrives_after_it() -> None:
    eio, app = _app()

    @eio.on("message")
    async def message(sid: str, data: Any) -> None:
        for index in range(500):
            await eio.send(sid, str(index))
        await eio.disconnect(sid)

    async with serve_hypercorn(app) as url, AsyncClient() as client:
        reasons: list[str] = []
        client.on("disconnect", reasons.append)
        await client.connect(url, transports=["websocket"])
        await client.send("go")
        with trio.fail_after(10):
            received = [item async for item in client]  # until the connection ends
            await client.wait()
        assert received == [str(index) for index in range(500)]
        assert reasons == ["server disconnect"]


def _capturing(app: ASGIApp, captured: list[Send]) -> Any:
    async def capture(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            captured.append(send)
        await app(scope, receive, send)

    return capture


async def test_the_fast_path_is_taken_on_plain_connections() -> None:
    _, app = _app()
    captured: list[Send] = []
    async with serve_hypercorn(_capturing(app, captured)) as url, AsyncClient() as client:
        await client.connect(url, transports=["websocket"])
        assert _hypercorn.fast_websocket_writer(captured[0]) is not None
        assert _hypercorn.fast_websocket_writer(captured[0], enabled=False) is None
        assert _hypercorn.connection_aborter(captured[0]) is not None


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a certificate")
async def test_tls_falls_back_to_hypercorns_path(tmp_path: pathlib.Path) -> None:
    """hypercorn's TLS stream has no plain socket to write to: the fast path stands aside."""
    eio, app = _app()
    captured: list[Send] = []

    @eio.on("message")
    async def message(sid: str, data: Any) -> None:
        await eio.send(sid, data)

    tls_app: Any = _capturing(app, captured)
    tls_app.engineio_server = eio  # serve_tls shuts the server down through it
    async with serve_tls(tls_app, tmp_path) as url, AsyncClient(ssl_verify=False) as client:
        await client.connect(url, transports=["websocket"])
        assert _hypercorn.fast_websocket_writer(captured[0]) is None
        assert _hypercorn.connection_aborter(captured[0]) is not None  # the socket under TLS
        for index in range(100):
            await client.send(f"over TLS {index}")
        assert await _receive(client, 100) == [f"over TLS {index}" for index in range(100)]
