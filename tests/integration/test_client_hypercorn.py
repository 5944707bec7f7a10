"""Our AsyncClient against our AsyncServer under real hypercorn (trio worker, 127.0.0.1 port 0).

The matrix of ``tests/test_client_server.py`` over real sockets and real time:
polling, websocket and upgrade; binary; 1,000 ordered messages; the
``max_http_buffer_size`` limit; disconnects from either side with the reason
on both sides; and both heartbeat failures, with 0.2 s timers. Instants are
checked with a tolerance here; their exact values are asserted in memory.
"""

from __future__ import annotations

import contextlib
import pathlib
import shutil
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

from trio_engineio import ASGIApp, AsyncClient, AsyncServer, CloseReason
from trio_engineio.exceptions import ConnectionError
from trio_engineio.testing import SilentServer, serve_hypercorn

pytestmark = pytest.mark.usefixtures("hypercorn_fast_path")  # every test with and without the fast path

TRANSPORTS: dict[str, list[str] | None] = {"polling": ["polling"], "websocket": ["websocket"], "upgrade": None}


@pytest.fixture(params=list(TRANSPORTS))
def mode(request: pytest.FixtureRequest) -> str:
    """``polling``, ``websocket`` or ``upgrade``."""
    name: str = request.param
    return name


class EchoServer:
    """A server that echoes every message and records what its handlers saw."""

    def __init__(self, **options: Any) -> None:
        self.eio = AsyncServer(**options)
        self.app = ASGIApp(self.eio)
        self.echo = True
        self.sids: list[str] = []
        self.messages: list[Any] = []
        self.disconnects: list[str] = []
        self.disconnected = trio.Event()
        self.wanted = 0
        self.got_wanted = trio.Event()
        self.eio.on("connect", lambda sid, environ: self.sids.append(sid))
        self.eio.on("message", self.on_message)
        self.eio.on("disconnect", self.on_disconnect)

    async def on_message(self, sid: str, data: Any) -> None:
        self.messages.append(data)
        if len(self.messages) == self.wanted:
            self.got_wanted.set()
        if self.echo:
            await self.eio.send(sid, data)

    def on_disconnect(self, sid: str, reason: str) -> None:
        self.disconnects.append(reason)
        self.disconnected.set()


@pytest.fixture
async def server() -> AsyncIterator[tuple[EchoServer, str]]:
    """An :class:`EchoServer` (default options) under hypercorn, and its URL."""
    echo = EchoServer()
    async with serve_hypercorn(echo.app) as url:
        yield echo, url


def record_disconnects(client: AsyncClient) -> list[str]:
    seen: list[str] = []
    client.on("disconnect", seen.append)
    return seen


async def connect(client: AsyncClient, url: str, mode: str) -> None:
    """Connect in ``mode``; for ``upgrade``, return once the websocket is the transport."""
    await client.connect(url, transports=TRANSPORTS[mode])
    with trio.fail_after(5):
        # The client has no upgrade event to wait for: poll its transport.
        while mode == "upgrade" and client.transport() != "websocket":  # noqa: ASYNC110
            await trio.sleep(0.005)
    assert client.transport() == ("polling" if mode == "polling" else "websocket")


async def test_echo_text_json_and_binary(server: tuple[EchoServer, str], mode: str) -> None:
    echo, url = server
    async with AsyncClient() as client:
        await connect(client, url, mode)
        await client.send("hello")
        await client.send({"json": [1, 2]})
        await client.send(bytes(range(256)))
        assert await client.receive() == "hello"
        assert await client.receive() == {"json": [1, 2]}
        assert await client.receive() == bytes(range(256))
        await echo.eio.send(echo.sids[0], b"\x00from the server")
        assert await client.receive() == b"\x00from the server"


async def test_a_thousand_messages_arrive_in_order_both_ways(server: tuple[EchoServer, str], mode: str) -> None:
    echo, url = server
    echo.echo = False
    sent = [f"message {i}" for i in range(1000)]
    echo.wanted = len(sent)
    async with AsyncClient() as client:
        await client.connect(url, transports=TRANSPORTS[mode])  # the upgrade runs while the messages flow
        for data in sent:
            await client.send(data)

        async def server_sends() -> None:
            for data in sent:
                await echo.eio.send(echo.sids[0], data)

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(server_sends)
                assert [await client.receive() for _ in sent] == sent
            await echo.got_wanted.wait()
        assert echo.messages == sent


@pytest.mark.parametrize("mode", ["polling", "websocket"])
async def test_max_http_buffer_size(mode: str) -> None:
    """A message of exactly max_http_buffer_size bytes on the wire passes; one byte more ends the
    connection, as a 'transport error' on both sides."""
    echo = EchoServer(max_http_buffer_size=2000)
    async with serve_hypercorn(echo.app) as url, AsyncClient() as client:
        seen = record_disconnects(client)
        await connect(client, url, mode)
        await client.send("x" * 1999)
        assert await client.receive() == "x" * 1999
        await client.send("x" * 2000)
        with trio.fail_after(5):
            await client.wait()
            await echo.disconnected.wait()
        assert seen == [CloseReason.TRANSPORT_ERROR]
        assert echo.disconnects == ["transport error"]


async def test_client_disconnect(server: tuple[EchoServer, str], mode: str) -> None:
    echo, url = server
    async with AsyncClient() as client:
        seen = record_disconnects(client)
        await connect(client, url, mode)
        await client.send("last")
        await client.disconnect()
        assert seen == [CloseReason.CLIENT_DISCONNECT]
        with trio.fail_after(5):
            await echo.disconnected.wait()
        assert echo.disconnects == ["client disconnect"]
        assert echo.messages == ["last"]


async def test_server_disconnect(server: tuple[EchoServer, str], mode: str) -> None:
    echo, url = server
    async with AsyncClient() as client:
        seen = record_disconnects(client)
        await connect(client, url, mode)
        await echo.eio.send(echo.sids[0], "goodbye")
        await echo.eio.disconnect(echo.sids[0])
        with trio.fail_after(5):
            await client.wait()
        assert seen == [CloseReason.SERVER_DISCONNECT]
        assert echo.disconnects == ["server disconnect"]
        assert await client.receive() == "goodbye"


@pytest.mark.parametrize("transports", [["polling"], ["websocket"]])
async def test_a_server_that_stops_pinging(transports: list[str]) -> None:
    """Nothing after the OPEN packet: the client gives up pingInterval + pingTimeout (0.4 s) later."""
    silent = SilentServer(ping_interval=0.2, ping_timeout=0.2)
    async with serve_hypercorn(silent) as url, AsyncClient() as client:
        seen = record_disconnects(client)
        start = trio.current_time()
        await client.connect(url, transports=transports)
        with trio.fail_after(5):
            await client.wait()
        assert 0.4 <= trio.current_time() - start < 2
        assert seen == [CloseReason.PING_TIMEOUT]


@pytest.mark.parametrize("mode", ["polling", "websocket"])
async def test_a_client_that_stops_reading_is_dropped_for_ping_timeout(mode: str) -> None:
    """A client whose application leaves 400 messages unread stops reading, so its PONGs stop:
    the server drops it after pingInterval + pingTimeout (0.4 s). The client learns it from its
    own timer (no PING arrives) or, when the server's close frame comes first (a busy machine
    delays the client's timer), from that close."""
    echo = EchoServer(ping_interval=0.2, ping_timeout=0.2)
    async with serve_hypercorn(echo.app) as url, AsyncClient() as client:
        seen = record_disconnects(client)
        await connect(client, url, mode)
        start = trio.current_time()
        for i in range(400):
            await echo.eio.send(echo.sids[0], str(i))
        with trio.fail_after(5):
            await echo.disconnected.wait()
            await client.wait()
        assert 0.4 <= trio.current_time() - start < 2
        assert echo.disconnects == ["ping timeout"]
        assert seen in ([CloseReason.PING_TIMEOUT], [CloseReason.SERVER_DISCONNECT])
        received = [data async for data in client]
        assert received == [str(i) for i in range(len(received))]


@contextlib.asynccontextmanager
async def serve_tls(app: ASGIApp, directory: pathlib.Path) -> AsyncIterator[str]:
    """Serve ``app`` with hypercorn's trio worker over TLS with a fresh self-signed certificate; yield its URL."""
    from hypercorn.config import Config
    from hypercorn.trio import serve

    asgi_app: Any = app  # hypercorn types apps with its TypedDict scopes (as testing.serve_hypercorn does)

    certificate, key = directory / "cert.pem", directory / "key.pem"
    command = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    command += ["-subj", "/CN=localhost", "-days", "1", "-keyout", str(key), "-out", str(certificate)]
    await trio.run_process(command, capture_stdout=True, capture_stderr=True)
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.certfile, config.keyfile = str(certificate), str(key)
    config.accesslog = config.errorlog = None
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(
            lambda task_status: serve(asgi_app, config, shutdown_trigger=shutdown.wait, task_status=task_status)
        )
        try:
            yield binds[0]
        finally:
            await app.engineio_server.shutdown()
            shutdown.set()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a certificate")
async def test_ssl_verify_false_accepts_a_self_signed_certificate(tmp_path: pathlib.Path) -> None:
    """``ssl_verify=False`` works for polling (httpx) and the websocket upgrade (trio-websocket);
    with the default, the same server is refused as a ConnectionError."""
    echo = EchoServer()
    async with serve_tls(echo.app, tmp_path) as url:
        assert url.startswith("https://")
        async with AsyncClient(ssl_verify=False) as client:
            await connect(client, url, "upgrade")
            await client.send("over TLS")
            assert await client.receive() == "over TLS"
        for transports in (["polling"], ["websocket"]):
            async with AsyncClient() as client:
                with pytest.raises(ConnectionError):
                    await client.connect(url, transports=transports)


async def test_a_plain_websocket_makes_no_tls_context(
    server: tuple[EchoServer, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ws://`` (websocket-only and upgrade) never builds a TLS context: making one costs tens of
    milliseconds of CPU per connection, for nothing."""
    import trio_engineio.client

    made: list[bool] = []

    def counting_context(verify: bool) -> Any:
        made.append(verify)
        raise AssertionError("a TLS context for ws://")

    monkeypatch.setattr(trio_engineio.client, "make_ssl_context", counting_context)
    _, url = server
    for mode in ("websocket", "upgrade"):
        async with AsyncClient() as client:
            await connect(client, url, mode)
            await client.send("plain")
            assert await client.receive() == "plain"
    assert made == []
