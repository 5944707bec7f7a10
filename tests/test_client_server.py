"""Our AsyncClient against our AsyncServer, in memory, on virtual time.

Every test connects through :func:`trio_engineio.testing.open_client` (polling
over :class:`~trio_engineio.testing.InMemoryHTTPTransport`, websockets over
:class:`~trio_engineio.testing.InMemoryWebSocketConnector`) and runs on
``autojump_clock``, so timers are asserted at their exact virtual instants.

``mode`` runs a test over the three ways to connect: ``polling`` only,
``websocket`` only, and ``upgrade`` (polling, then the websocket upgrade that
the client starts by itself; the test waits for it to complete).
"""

from __future__ import annotations

import json
import signal
from typing import Any

import pytest
import trio
import trio.testing

from trio_engineio import ASGIApp, AsyncClient, AsyncServer, CloseReason
from trio_engineio._http import Receive, Scope, Send
from trio_engineio.exceptions import ConnectionError, LocalProtocolError
from trio_engineio.testing import BASE_URL, InMemoryWebSocketConnector, SilentServer, open_client

TRANSPORTS: dict[str, list[str] | None] = {"polling": ["polling"], "websocket": ["websocket"], "upgrade": None}


@pytest.fixture(params=list(TRANSPORTS))
def mode(request: pytest.FixtureRequest) -> str:
    """``polling``, ``websocket`` or ``upgrade``."""
    name: str = request.param
    return name


class EchoServer:
    """A server that echoes every message and records what its handlers saw, with the instant."""

    def __init__(self, **options: Any) -> None:
        self.eio = AsyncServer(**options)
        self.app = ASGIApp(self.eio)
        self.echo = True
        self.sids: list[str] = []
        self.messages: list[Any] = []
        self.disconnects: list[tuple[str, float]] = []
        self.disconnected = trio.Event()
        self._wanted = 0
        self._enough = trio.Event()
        self.eio.on("connect", self.on_connect)
        self.eio.on("message", self.on_message)
        self.eio.on("disconnect", self.on_disconnect)

    def on_connect(self, sid: str, environ: dict[str, Any]) -> None:
        self.sids.append(sid)

    async def on_message(self, sid: str, data: Any) -> None:
        self.messages.append(data)
        if len(self.messages) >= self._wanted:
            self._enough.set()
        if self.echo:
            await self.eio.send(sid, data)

    def on_disconnect(self, sid: str, reason: str) -> None:
        self.disconnects.append((reason, trio.current_time()))
        self.disconnected.set()

    async def wait_messages(self, count: int) -> list[Any]:
        """Wait until ``count`` messages arrived in all; return them."""
        self._wanted = count
        if len(self.messages) < count:
            self._enough = trio.Event()
            await self._enough.wait()
        return self.messages


def record_disconnects(client: AsyncClient) -> list[tuple[str, float]]:
    """The client's ``disconnect`` reasons, with the instant, as they happen."""
    seen: list[tuple[str, float]] = []
    client.on("disconnect", lambda reason: seen.append((reason, trio.current_time())))
    return seen


async def connect(client: AsyncClient, mode: str) -> None:
    """Connect in ``mode``; for ``upgrade``, return once the websocket is the transport."""
    await client.connect(BASE_URL, transports=TRANSPORTS[mode])
    if mode == "upgrade":
        await trio.testing.wait_all_tasks_blocked()
    assert client.transport() == ("polling" if mode == "polling" else "websocket")


async def test_connect_and_echo(autojump_clock: trio.testing.MockClock, mode: str) -> None:
    server = EchoServer()
    async with server.eio, open_client(server.app) as client:
        await connect(client, mode)
        assert client.sid == server.sids[0]
        await client.send("hello")
        await client.send({"json": [1, 2]})
        assert await client.receive() == "hello"
        assert await client.receive() == {"json": [1, 2]}
        assert server.messages == ["hello", {"json": [1, 2]}]
        assert trio.current_time() == 0


async def test_binary_both_ways(autojump_clock: trio.testing.MockClock, mode: str) -> None:
    server = EchoServer()
    every_byte = bytes(range(256))
    async with server.eio, open_client(server.app) as client:
        await connect(client, mode)
        await client.send(every_byte)
        assert await client.receive() == every_byte
        await server.eio.send(server.sids[0], b"\x00from the server\xff")
        assert await client.receive() == b"\x00from the server\xff"
        assert server.messages == [every_byte]


async def test_a_thousand_messages_arrive_in_order_both_ways(autojump_clock: trio.testing.MockClock, mode: str) -> None:
    """Nothing is lost or reordered, across the upgrade too (it runs while the messages flow)."""
    server = EchoServer()
    server.echo = False
    sent = [f"message {i}" for i in range(1000)]
    async with server.eio, open_client(server.app) as client:
        await client.connect(BASE_URL, transports=TRANSPORTS[mode])  # no wait: upgrade while sending
        for data in sent:
            await client.send(data)
        assert await server.wait_messages(1000) == sent

        async def server_sends() -> None:
            for data in sent:
                await server.eio.send(server.sids[0], data)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(server_sends)
            assert [await client.receive() for _ in sent] == sent
        assert client.transport() == ("polling" if mode == "polling" else "websocket")


@pytest.mark.parametrize("mode", ["polling", "websocket"])
async def test_a_message_at_max_http_buffer_size_passes_both_ways(
    autojump_clock: trio.testing.MockClock, mode: str
) -> None:
    """A message whose POST body or websocket frame is exactly max_http_buffer_size bytes goes through."""
    server = EchoServer(max_http_buffer_size=2000)
    largest = "x" * 1999  # "4" + 1999 characters: 2000 bytes on the wire
    async with server.eio, open_client(server.app) as client:
        await connect(client, mode)
        await client.send(largest)
        assert await client.receive() == largest
        assert server.disconnects == []


@pytest.mark.parametrize("mode", ["polling", "websocket"])
async def test_a_message_over_max_http_buffer_size_ends_the_connection(
    autojump_clock: trio.testing.MockClock, mode: str
) -> None:
    """One byte more: the server refuses it (413, or close code 1009); both sides say 'transport error'."""
    server = EchoServer(max_http_buffer_size=2000)
    async with server.eio, open_client(server.app) as client:
        seen = record_disconnects(client)
        await connect(client, mode)
        await client.send("x" * 2000)
        await client.wait()
        await server.disconnected.wait()
        assert seen == [(CloseReason.TRANSPORT_ERROR, 0)]
        assert server.disconnects == [("transport error", 0)]
        assert server.messages == []


async def test_client_disconnect(autojump_clock: trio.testing.MockClock, mode: str) -> None:
    server = EchoServer()
    async with server.eio, open_client(server.app) as client:
        seen = record_disconnects(client)
        await connect(client, mode)
        await trio.sleep(7)
        await client.send("last")
        await client.disconnect()
        assert client.state == "disconnected"
        assert seen == [(CloseReason.CLIENT_DISCONNECT, 7)]
        await server.disconnected.wait()
        assert server.disconnects == [("client disconnect", 7)]
        assert server.messages == ["last"]  # sent before the CLOSE packet


async def test_server_disconnect(autojump_clock: trio.testing.MockClock, mode: str) -> None:
    server = EchoServer()
    async with server.eio, open_client(server.app) as client:
        seen = record_disconnects(client)
        await connect(client, mode)
        await trio.sleep(7)
        await server.eio.send(server.sids[0], "goodbye")
        await server.eio.disconnect(server.sids[0])
        await client.wait()
        assert seen == [(CloseReason.SERVER_DISCONNECT, 7)]
        assert server.disconnects == [("server disconnect", 7)]
        assert await client.receive() == "goodbye"  # delivered before the CLOSE packet


async def test_server_shutdown_disconnects_the_client(autojump_clock: trio.testing.MockClock, mode: str) -> None:
    server = EchoServer()
    async with open_client(server.app) as client:
        seen = record_disconnects(client)
        async with server.eio:
            await connect(client, mode)
            await trio.sleep(3)
        await client.wait()
        assert seen == [(CloseReason.SERVER_DISCONNECT, 3)]
        assert server.disconnects == [("server disconnect", 3)]


async def test_heartbeat_keeps_an_idle_connection_open(autojump_clock: trio.testing.MockClock, mode: str) -> None:
    """An hour of pings (25 s interval, 20 s timeout) in no wall time; the connection stays up."""
    server = EchoServer()
    async with server.eio, open_client(server.app) as client:
        await connect(client, mode)
        await trio.sleep(3600)
        assert client.state == "connected"
        assert server.disconnects == []
        await client.send("still here")
        assert await client.receive() == "still here"


@pytest.mark.parametrize(
    ("transports", "ping_timeout", "reason", "instant"),
    [
        # pingInterval + pingTimeout after the OPEN packet, the last packet received
        (["websocket"], 20, CloseReason.PING_TIMEOUT, 45),
        (["polling"], 2, CloseReason.PING_TIMEOUT, 27),
        # a GET may last pingInterval + request_timeout (30 s): with a longer pingTimeout, it times out first
        (["polling"], 20, CloseReason.TRANSPORT_ERROR, 30),
    ],
)
async def test_a_server_that_stops_pinging(
    autojump_clock: trio.testing.MockClock,
    transports: list[str],
    ping_timeout: float,
    reason: CloseReason,
    instant: float,
) -> None:
    silent = SilentServer(ping_interval=25, ping_timeout=ping_timeout)
    async with open_client(silent) as client:
        seen = record_disconnects(client)
        await client.connect(BASE_URL, transports=transports)
        await client.send("anyone there?")
        await client.wait()
        assert seen == [(reason, instant)]
    assert silent.received[0].data == "anyone there?"


@pytest.mark.parametrize("mode", ["websocket", "upgrade"])
async def test_a_network_partition_times_out_both_sides(autojump_clock: trio.testing.MockClock, mode: str) -> None:
    """The server pings at 25 (answered) and sends a message at 40; the network fails at 41.

    The server's PING of 50 goes unanswered: it closes at 50 + pingTimeout = 70 ('ping timeout').
    The client heard last at 40: it gives up at 40 + pingInterval + pingTimeout = 85 (PING_TIMEOUT).
    """
    server = EchoServer(ping_interval=25, ping_timeout=20)
    connector = InMemoryWebSocketConnector(server.app)
    async with server.eio, open_client(server.app, websocket_connector=connector) as client:
        seen = record_disconnects(client)
        await connect(client, mode)
        await trio.sleep(40)
        await server.eio.send(server.sids[0], "last words")
        assert await client.receive() == "last words"
        await trio.sleep(1)
        connector.partition()
        await client.wait()
        assert server.disconnects == [("ping timeout", 70)]
        assert seen == [(CloseReason.PING_TIMEOUT, 85)]


@pytest.mark.parametrize("mode", ["polling", "websocket"])
async def test_a_client_that_stops_reading_is_dropped_for_ping_timeout(
    autojump_clock: trio.testing.MockClock, mode: str
) -> None:
    """A client whose application does not consume messages stops reading once 256 wait, so its
    PONGs stop: the server drops it at pingInterval + pingTimeout. The messages already read stay."""
    server = EchoServer(ping_interval=25, ping_timeout=20)
    async with server.eio, open_client(server.app) as client:
        seen = record_disconnects(client)
        await connect(client, mode)
        for i in range(400):
            await server.eio.send(server.sids[0], str(i))
        await server.disconnected.wait()
        assert server.disconnects == [("ping timeout", 45)]
        await client.wait()
        assert seen == [(CloseReason.PING_TIMEOUT, 45)]
        received = [data async for data in client]
        assert received == [str(i) for i in range(len(received))]
        assert len(received) >= 256


# -- python-engineio's API, and what must not escape ---------------------------------------------


class RecordingApp(ASGIApp):
    """An ASGIApp that records the type, method and headers of every request."""

    def __init__(self, eio: AsyncServer) -> None:
        super().__init__(eio)
        self.requests: list[tuple[str, str, dict[str, str]]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope.get("headers", [])}
        self.requests.append((scope["type"], scope.get("method", "GET"), headers))
        await super().__call__(scope, receive, send)


async def test_headers_and_cookies_go_with_every_request_and_the_websocket_handshake(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The caller's headers on every request and on the upgrade's websocket; the cookie the server set
    on the handshake (sticky load balancers) on every request after it."""
    server = EchoServer(cookie="io")
    app = RecordingApp(server.eio)
    async with server.eio, open_client(app) as client:
        await client.connect(BASE_URL, headers={"X-Token": "t"}, transports=["polling"])
        await client.send("over polling")
        assert await client.receive() == "over polling"
        await client.disconnect()
        await client.connect(BASE_URL, headers={"X-Token": "t"})
        await trio.testing.wait_all_tasks_blocked()
        assert client.transport() == "websocket"
        await client.send("over the websocket")
        assert await client.receive() == "over the websocket"
        first_sid, second_sid = server.sids
    kinds = [(kind, method) for kind, method, _ in app.requests]
    assert ("http", "POST") in kinds
    assert ("websocket", "GET") in kinds
    assert all(headers.get("x-token") == "t" for _, _, headers in app.requests)
    # Every request but the very first handshake carries a cookie (the jar keeps the latest sid).
    cookies = [headers.get("cookie") for _, _, headers in app.requests]
    assert cookies[0] is None
    assert all(cookie in (f"io={first_sid}", f"io={second_sid}") for cookie in cookies[1:])
    assert cookies[-1] == f"io={second_sid}"


async def test_python_engineio_informational_names(autojump_clock: trio.testing.MockClock) -> None:
    """``is_asyncio_based``, ``current_transport``, ``transports`` and ``handle_sigint``, as in
    python-engineio; and ``handle_sigint=True`` (the default) installs no signal handler."""
    handler_before = signal.getsignal(signal.SIGINT)
    server = EchoServer()
    async with server.eio, open_client(server.app) as client:
        assert client.is_asyncio_based() is False
        assert client.handle_sigint is True
        assert (client.transports, client.current_transport) == (None, None)
        await client.connect(BASE_URL, transports="websocket")
        assert (client.transports, client.current_transport) == (["websocket"], "websocket")
        await client.disconnect()
        assert (client.transports, client.current_transport) == (["websocket"], None)
    assert signal.getsignal(signal.SIGINT) is handler_before


async def test_disconnect_with_a_reason_reports_that_reason(autojump_clock: trio.testing.MockClock, mode: str) -> None:
    """``disconnect(reason=...)`` (python-engineio 4.11+) is what the client's handler gets; the server
    still sees a client disconnect."""
    server = EchoServer()
    async with server.eio, open_client(server.app) as client:
        seen = record_disconnects(client)
        await connect(client, mode)
        await client.disconnect(reason="going home")
        assert seen == [("going home", 0)]
        await server.disconnected.wait()
        assert server.disconnects == [("client disconnect", 0)]


@pytest.mark.parametrize("data", ["x\ud800", {"key": "\udfff"}], ids=["str", "dict"])
async def test_sending_a_lone_surrogate_raises_and_the_connection_goes_on(
    autojump_clock: trio.testing.MockClock, mode: str, data: Any
) -> None:
    """Refused by ``send`` (over polling it used to crash the writer task, and with it the
    ``async with`` block; trio-websocket would have raised UnicodeEncodeError)."""
    server = EchoServer(json=_AsciiUnsafeJson)
    async with server.eio, open_client(server.app, json=_AsciiUnsafeJson) as client:
        await connect(client, mode)
        with pytest.raises(LocalProtocolError, match="lone surrogate"):
            await client.send(data)
        await client.send("fine")
        assert await client.receive() == "fine"
        assert server.messages == ["fine"]


class _AsciiUnsafeJson:
    """A ``json=`` module that writes non-ASCII as is (so a lone surrogate stays one)."""

    @staticmethod
    def dumps(data: Any, **options: Any) -> str:
        return json.dumps(data, ensure_ascii=False, **options)

    @staticmethod
    def loads(text: str) -> Any:
        return json.loads(text)


class Boom(BaseException):
    """Not one of the fatal BaseExceptions: a handler raising it is logged, like an Exception."""


@pytest.mark.parametrize("event", ["connect", "message", "disconnect"])
async def test_a_handler_raising_a_base_exception_is_contained(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture, event: str
) -> None:
    """``message`` and ``disconnect``: logged, the client goes on; ``connect``: connect() raises
    ConnectionError. It used to tear down the client's nursery."""
    server = EchoServer()
    async with server.eio, open_client(server.app) as client:

        def handler(*args: Any) -> None:
            raise Boom(event)

        client.on(event, handler)
        if event == "connect":
            with pytest.raises(ConnectionError, match="Connect handler failed"):
                await client.connect(BASE_URL)
            return
        await client.connect(BASE_URL, transports=["websocket"])
        await client.send("echo me")
        await trio.testing.wait_all_tasks_blocked()
        assert client.state == "connected"
        await client.disconnect()
        assert client.state == "disconnected"
        await client.connect(BASE_URL, transports=["websocket"])  # the client still works
    assert f"{event} handler error" in caplog.text


class StallingPosts(ASGIApp):
    """An ASGIApp that never answers a POST (it only notices when the client gives up)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("method") == "POST":
            while (await receive())["type"] != "http.disconnect":
                pass
            return
        await super().__call__(scope, receive, send)


async def test_request_timeout_bounds_each_post(autojump_clock: trio.testing.MockClock) -> None:
    """A POST that is never answered ends the connection exactly ``request_timeout`` after it began."""
    server = EchoServer()
    async with server.eio, open_client(StallingPosts(server.eio), request_timeout=3) as client:
        seen = record_disconnects(client)
        await client.connect(BASE_URL, transports=["polling"])
        await trio.sleep(1)
        await client.send("stalls")
        await client.wait()
        assert seen == [(CloseReason.TRANSPORT_ERROR, 4)]
