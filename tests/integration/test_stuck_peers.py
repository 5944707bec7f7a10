"""Peers that stop reading: a session that has ended releases everything in bounded time.

A websocket client that sends without reading fills the TCP window, so the
server's echo blocks inside hypercorn's shielded ``send_all`` (under its
``send_lock``): cancellation cannot reach it. When the session ends (ping
timeout), the blocked write must be abandoned (the connection is aborted
underneath) and hypercorn must never be left waiting on our app.
"""

from __future__ import annotations

import contextlib
import socket
from typing import TYPE_CHECKING

import trio
from test_no_leaks import all_tasks, session_tasks
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Request, TextMessage

if TYPE_CHECKING:
    from conftest import ServeEcho

CLIENTS = 5
MESSAGES = 3000


async def _flood_without_reading(url: str, closed: trio.Event) -> None:
    host, port = url.removeprefix("http://").split(":")
    stream = await trio.open_tcp_stream(host, int(port))
    stream.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    async with stream:
        ws = WSConnection(ConnectionType.CLIENT)
        await stream.send_all(ws.send(Request(host=f"{host}:{port}", target="/engine.io/?EIO=4&transport=websocket")))
        accepted = False
        while not accepted:  # read the handshake, then nothing more
            ws.receive_data(await stream.receive_some(65536))
            accepted = any(isinstance(event, AcceptConnection) for event in ws.events())
        frame = ws.send(TextMessage(data="4" + "x" * 1024))
        # The server stops reading too once its writes block; when it gives up on us, it
        # resets the connection.
        with trio.move_on_after(3), contextlib.suppress(trio.BrokenResourceError):
            for _ in range(MESSAGES):
                await stream.send_all(frame)
        await closed.wait()  # keep the connection open, unread, past the ping timeout


async def test_a_client_that_never_reads_cannot_keep_its_session(serve_echo: ServeEcho) -> None:
    async with serve_echo(ping_interval=1, ping_timeout=1, close_timeout=1) as echo:
        leave = trio.Event()
        async with trio.open_nursery() as nursery:
            for _ in range(CLIENTS):
                nursery.start_soon(_flood_without_reading, echo.url, leave)
            await echo.wait_for(lambda: len(echo.connects) == CLIENTS, "every client connected")
            # Ping interval + ping timeout, then close_timeout for the blocked writes: each
            # session has ended and released its tasks while its client still holds the
            # connection open, unread.
            with trio.fail_after(8):
                while echo.eio.sockets:  # noqa: ASYNC110 - real sockets: nothing to wait on but the registry
                    await trio.sleep(0.05)
            assert sorted(echo.disconnects) == sorted(echo.connects)
            leave.set()
        # And once the clients have gone, so has every connection of hypercorn's: it was never
        # left blocked on our app (a full queue no one reads) nor on a write.
        with trio.fail_after(5):
            while session_tasks() or _connection_tasks():  # noqa: ASYNC110 - no event says a task ended
                await trio.sleep(0.05)


def _connection_tasks() -> list[trio.lowlevel.Task]:
    return [task for task in all_tasks() if task.name.endswith("_highlevel_serve_listeners._run_handler")]


async def test_an_oversized_websocket_message_is_refused_as_its_bytes_arrive(serve_echo: ServeEcho) -> None:
    """max_http_buffer_size is enforced by hypercorn while the message arrives, not after 16 MiB."""
    async with serve_echo(max_http_buffer_size=10_000) as echo:
        host, port = echo.url.removeprefix("http://").split(":")
        stream = await trio.open_tcp_stream(host, int(port))
        async with stream:
            ws = WSConnection(ConnectionType.CLIENT)
            await stream.send_all(
                ws.send(Request(host=f"{host}:{port}", target="/engine.io/?EIO=4&transport=websocket"))
            )
            accepted = False
            while not accepted:
                ws.receive_data(await stream.receive_some(65536))
                accepted = any(isinstance(event, AcceptConnection) for event in ws.events())
            # A 2 MB message of which only the first 100 KB is ever sent.
            frame = ws.send(TextMessage(data="4" + "x" * 2_000_000))
            await stream.send_all(frame[:100_000])
            with trio.fail_after(5):
                closes: list[CloseConnection] = []
                while not closes:
                    data = await stream.receive_some(65536)
                    assert data, "the connection ended without a close frame"
                    ws.receive_data(data)
                    closes = [event for event in ws.events() if isinstance(event, CloseConnection)]
            assert closes[0].code == 1009
        await echo.wait_for(lambda: len(echo.disconnects) == 1, "the session's end")
