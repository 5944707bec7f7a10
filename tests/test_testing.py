"""The testing helpers themselves (:mod:`trio_engineio.testing`, :mod:`trio_engineio.pytest_plugin`).

In memory, on ``autojump_clock``: the in-memory HTTP transport and websocket
connector, the raw clients and their faults, :class:`SilentServer`, the virtual-time
promise (an in-memory exchange never waits on the clock, a 25 s ping interval is
asserted at its exact virtual instants), then the pytest plugin and the examples of
``docs/testing.rst``, each run as a small user test suite by ``pytester``. Wall-clock
speed is measured in ``benchmarks/``, never asserted here.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from trio_engineio import ASGIApp, AsyncClient, AsyncServer, ConnectionError, EngineIOError
from trio_engineio.client import ClientWebSocket, WebSocketConnector
from trio_engineio.exceptions import WebSocketClosedError
from trio_engineio.protocol import Packet, PacketType
from trio_engineio.testing import (
    BASE_URL,
    InMemoryHTTPTransport,
    InMemoryWebSocketConnector,
    RawPollingClient,
    RawWebSocketClient,
    SilentServer,
    WebSocketRejected,
    open_client,
    open_lifespan,
    open_websocket,
)

pytest_plugins = ["pytester"]

DOCS_EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples_testing"


def echo_server(**options: Any) -> tuple[AsyncServer, ASGIApp, list[tuple[str, str, float]]]:
    """A server echoing every message, its app, and its ``(sid, reason, instant)`` disconnects."""
    eio = AsyncServer(**options)
    disconnects: list[tuple[str, str, float]] = []

    async def message(sid: str, data: Any) -> None:
        await eio.send(sid, data)

    eio.on("message", message)
    eio.on("disconnect", lambda sid, reason: disconnects.append((sid, reason, trio.current_time())))
    return eio, ASGIApp(eio), disconnects


# -- speed and virtual time ------------------------------------------------------------------------


@pytest.mark.parametrize("transports", [["polling"], ["websocket"]])
async def test_a_hundred_messages_in_memory_take_no_virtual_time(
    autojump_clock: trio.testing.MockClock, transports: list[str]
) -> None:
    """Nothing in the in-memory round trip sleeps: the autojump clock never has to move."""
    eio, app, _ = echo_server()
    async with eio, open_client(app) as client:
        await client.connect(BASE_URL, transports=transports)
        start = trio.current_time()
        for i in range(100):
            await client.send(str(i))
            assert await client.receive() == str(i)
        assert trio.current_time() == start


async def test_a_hundred_raw_websocket_messages_take_no_virtual_time(autojump_clock: trio.testing.MockClock) -> None:
    eio, app, _ = echo_server()
    async with eio, RawWebSocketClient.open(app) as ws:
        start = trio.current_time()
        for i in range(100):
            await ws.send(f"4{i}")
            assert await ws.receive() == f"4{i}"
        assert trio.current_time() == start


async def test_a_25_second_ping_interval_runs_on_virtual_time(autojump_clock: trio.testing.MockClock) -> None:
    eio, app, disconnects = echo_server(ping_interval=25, ping_timeout=20)
    async with eio, RawWebSocketClient.open(app) as ws:
        assert await ws.receive_packet() == Packet(PacketType.PING)
        assert trio.current_time() == 25
        await ws.send_packet(Packet(PacketType.PONG))
        assert await ws.receive_packet() == Packet(PacketType.PING)
        assert trio.current_time() == 50
        await ws.wait_closed()  # this PING goes unanswered
        assert trio.current_time() == 70
    assert disconnects == [(ws.sid, "ping timeout", 70)]


# -- InMemoryHTTPTransport -------------------------------------------------------------------------


class RecordingApp:
    """An ASGI app that records what ``receive`` gave it; ``GET /wait`` waits for the client to leave."""

    def __init__(self, *, ignore_disconnect: bool = False) -> None:
        self.received: list[dict[str, Any]] = []
        self.ignore_disconnect = ignore_disconnect
        self.finished = False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        message = await receive()
        self.received.append(message)
        while message.get("more_body"):
            message = await receive()
            self.received.append(message)
        if scope["path"] == "/wait":
            if self.ignore_disconnect:
                await trio.sleep_forever()
            self.received.append(await receive())
            self.finished = True
            return
        if scope["path"] == "/fail":
            raise ValueError("the app failed")
        if scope["path"] == "/silent":
            return
        await send({"type": "http.response.start", "status": 201, "headers": [(b"x-app", b"yes")]})
        await send({"type": "http.response.body", "body": b"hel", "more_body": True})
        await send({"type": "http.response.body", "body": b"lo"})


async def test_http_transport_carries_requests_and_responses(autojump_clock: trio.testing.MockClock) -> None:
    app = RecordingApp()
    async with httpx.AsyncClient(transport=InMemoryHTTPTransport(app), base_url=BASE_URL) as http:
        response = await http.post("/echo?a=1", content=b"body")
    assert (response.status_code, response.text, response.headers["x-app"]) == (201, "hello", "yes")
    assert app.received[-1]["more_body"] is False
    assert b"".join(message.get("body", b"") for message in app.received) == b"body"


async def test_http_transport_tells_the_app_when_the_client_goes_away(autojump_clock: trio.testing.MockClock) -> None:
    app = RecordingApp()
    async with httpx.AsyncClient(transport=InMemoryHTTPTransport(app), base_url=BASE_URL) as http:
        with trio.move_on_after(3):
            await http.get("/wait")
    assert app.finished
    assert app.received[-1] == {"type": "http.disconnect"}
    assert trio.current_time() == 3


async def test_http_transport_cancels_an_app_that_ignores_the_disconnect(
    autojump_clock: trio.testing.MockClock,
) -> None:
    app = RecordingApp(ignore_disconnect=True)
    transport = InMemoryHTTPTransport(app, close_timeout=2)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        with trio.move_on_after(3):
            await http.get("/wait")
    assert trio.current_time() == 3 + 2
    assert not app.finished


async def test_http_transport_raises_what_the_app_raised(autojump_clock: trio.testing.MockClock) -> None:
    async with httpx.AsyncClient(transport=InMemoryHTTPTransport(RecordingApp()), base_url=BASE_URL) as http:
        with pytest.raises(ValueError, match="the app failed"):
            await http.get("/fail")
        with pytest.raises(httpx.RemoteProtocolError):
            await http.get("/silent")


# -- the in-memory AsyncClient ---------------------------------------------------------------------


async def test_open_client_takes_an_async_server_or_an_app_and_client_options(
    autojump_clock: trio.testing.MockClock,
) -> None:
    eio, app, _ = echo_server()
    async with eio:
        async with open_client(eio, request_timeout=2) as client:
            assert client.request_timeout == 2
            await client.connect(BASE_URL, transports=["websocket"])
            await client.send("via the server")
            assert await client.receive() == "via the server"
        async with open_client(app) as client:
            await client.connect("http://any.host:1234/", transports=["polling"])
            await client.send("via the app")
            assert await client.receive() == "via the app"


async def test_a_refused_websocket_is_a_connection_error_with_the_status(
    autojump_clock: trio.testing.MockClock,
) -> None:
    eio = AsyncServer()
    eio.on("connect", lambda sid, environ: False)
    async with eio, open_client(eio) as client:
        with pytest.raises(ConnectionError) as refused:
            await client.connect(BASE_URL, transports=["websocket"])
    assert isinstance(refused.value, WebSocketRejected)
    assert refused.value.status_code == 401


async def test_a_websocket_app_that_never_answers_times_out(autojump_clock: trio.testing.MockClock) -> None:
    async def mute(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await trio.sleep_forever()

    async with open_client(mute, request_timeout=3) as client:
        with pytest.raises(ConnectionError, match="timed out"):
            await client.connect(BASE_URL, transports=["websocket"])
    assert trio.current_time() == 3


async def test_closing_cancels_a_websocket_app_that_ignores_the_disconnect(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The client closes the websocket when no OPEN packet came in time (3 s); the app, deaf to the
    disconnect, is cancelled after the client's request_timeout (3 s more)."""

    async def deaf(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await trio.sleep_forever()

    async with open_client(deaf, request_timeout=3) as client:
        with pytest.raises(ConnectionError, match="no OPEN packet"):
            await client.connect(BASE_URL, transports=["websocket"])
    assert trio.current_time() == 6


async def test_the_in_memory_websocket_reports_closes_like_a_real_one(autojump_clock: trio.testing.MockClock) -> None:
    """Close code 1000 is orderly; an app that ends without a close is 1006 (no code); sends then fail."""

    async def close_with(code: int | None) -> WebSocketClosedError:
        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await receive()
            await send({"type": "websocket.accept"})
            if code is not None:
                await send({"type": "websocket.close", "code": code})

        async with trio.open_nursery() as nursery:
            websocket = await InMemoryWebSocketConnector(app).connect(nursery, "ws://h/", headers={}, time_limit=5)
            with pytest.raises(WebSocketClosedError) as closed:
                await websocket.receive()
            with pytest.raises(WebSocketClosedError):
                await websocket.send("4late")
            await websocket.aclose()
            await websocket.aclose()  # idempotent
        return closed.value

    orderly = await close_with(1000)
    assert (orderly.code, orderly.orderly) == (1000, True)
    abnormal = await close_with(None)
    assert (abnormal.code, abnormal.orderly) == (None, False)


async def test_a_partition_silences_both_ways_and_close_still_ends_the_app(
    autojump_clock: trio.testing.MockClock,
) -> None:
    eio, app, disconnects = echo_server(ping_interval=25, ping_timeout=20)
    connector = InMemoryWebSocketConnector(app)
    async with eio, trio.open_nursery() as nursery:
        websocket = await connector.connect(
            nursery, "ws://h/engine.io/?EIO=4&transport=websocket", headers={}, time_limit=5
        )
        assert (await websocket.receive())[:1] == "0"
        connector.partition()
        await websocket.send("4lost")
        with trio.move_on_after(60):
            await websocket.receive()  # neither the PING at 25 nor the close at 45 arrives
        assert disconnects[0][1:] == ("ping timeout", 45)
        await websocket.aclose()


# -- SilentServer --------------------------------------------------------------------------------


async def test_silent_server_handshakes_and_then_says_nothing(autojump_clock: trio.testing.MockClock) -> None:
    silent = SilentServer(ping_interval=1, ping_timeout=2, max_payload=300)
    async with open_lifespan(silent), RawPollingClient.open(silent) as poller:
        data = await poller.handshake()
        assert data == {"sid": "silent0", "upgrades": [], "pingInterval": 1000, "pingTimeout": 2000, "maxPayload": 300}
        await poller.post(Packet(PacketType.MESSAGE, "hi"), Packet(PacketType.MESSAGE, b"\x01"))
        with trio.move_on_after(100) as waited:
            await poller.get()
        assert waited.cancelled_caught
        async with RawWebSocketClient.open(silent) as ws:
            assert ws.sid == "silent1"
            await ws.send_packet(Packet(PacketType.PONG))
            await ws.send_malformed()  # kept out of `received`, and the websocket stays open
            with trio.move_on_after(100) as waited:
                await ws.receive()
            assert waited.cancelled_caught
    assert silent.received == [
        Packet(PacketType.MESSAGE, "hi"),
        Packet(PacketType.MESSAGE, b"\x01"),
        Packet(PacketType.PONG),
    ]


# -- raw clients and their faults ------------------------------------------------------------------


async def test_polling_client_that_stops_answering_pings(autojump_clock: trio.testing.MockClock) -> None:
    eio, app, disconnects = echo_server(ping_interval=25, ping_timeout=20)
    async with eio, RawPollingClient.open(app) as poller:
        await poller.handshake()
        assert await poller.get() == [Packet(PacketType.PING)]
        await poller.post(Packet(PacketType.PONG))
        assert await poller.get() == [Packet(PacketType.PING)]  # at 50, not answered
        response = await poller.get_response()
        assert response.text == "1"
    assert disconnects == [(poller.sid, "ping timeout", 70)]


async def test_polling_client_aborting_a_poll_loses_nothing(autojump_clock: trio.testing.MockClock) -> None:
    """The aborted GET tells the server ``http.disconnect``; the next GET gets what was sent meanwhile."""
    eio, app, disconnects = echo_server()
    async with eio, RawPollingClient.open(app) as poller:
        await poller.handshake()
        async with trio.open_nursery() as nursery:
            pending = await poller.start_get(nursery)
            assert not pending.done.is_set()
            pending.abort()
        assert await pending.response() is None
        await eio.send(poller.sid, "kept")
        assert await poller.get() == [Packet(PacketType.MESSAGE, "kept")]
        async with trio.open_nursery() as nursery:
            pending = await poller.start_get(nursery)
            await eio.send(poller.sid, "answered")
        answered = await pending.response()
        assert answered is not None
        assert answered.text == "4answered"
    assert [reason for _, reason, _ in disconnects] == ["server disconnect"]  # the shutdown only


@pytest.mark.parametrize(("fault", "status"), [("post_oversize", 413), ("post_malformed", 400)])
async def test_polling_client_oversize_and_malformed_posts(
    autojump_clock: trio.testing.MockClock, fault: str, status: int
) -> None:
    eio, app, disconnects = echo_server(max_http_buffer_size=500)
    async with eio, RawPollingClient.open(app) as poller:
        await poller.handshake()
        response = await getattr(poller, fault)()
        assert response.status_code == status
        await trio.testing.wait_all_tasks_blocked()
        assert disconnects == [(poller.sid, "transport error", 0)]


async def test_polling_client_vanishing_mid_upgrade_goes_on_polling(autojump_clock: trio.testing.MockClock) -> None:
    eio, app, disconnects = echo_server()
    async with eio, RawPollingClient.open(app) as poller:
        await poller.handshake()
        async with poller.open_probe() as probe:
            await probe.vanish()
        await poller.post(Packet(PacketType.MESSAGE, "still polling"))
        assert await poller.get() == [Packet(PacketType.MESSAGE, "still polling")]
        assert eio.transport(poller.sid) == "polling"
        assert disconnects == []


async def test_polling_client_completing_an_upgrade(autojump_clock: trio.testing.MockClock) -> None:
    eio, app, _ = echo_server()
    async with eio, RawPollingClient.open(app) as poller:
        await poller.handshake()
        async with poller.open_probe() as probe:
            await probe.upgrade()
            await probe.send_packet(Packet(PacketType.MESSAGE, "upgraded"))
            assert await probe.receive_packet() == Packet(PacketType.MESSAGE, "upgraded")
            assert eio.transport(poller.sid) == "websocket"


async def test_polling_client_raises_on_refusals(autojump_clock: trio.testing.MockClock) -> None:
    eio, app, _ = echo_server(transports=["websocket"])
    async with eio, RawPollingClient.open(app) as poller:
        with pytest.raises(EngineIOError, match="handshake refused: 400"):
            await poller.handshake()
        poller.sid = "unknown"
        with pytest.raises(EngineIOError, match="GET answered 400"):
            await poller.get()
        with pytest.raises(EngineIOError, match="POST answered 400"):
            await poller.post(Packet(PacketType.MESSAGE, "x"))


async def test_open_probe_needs_the_app(autojump_clock: trio.testing.MockClock) -> None:
    async with httpx.AsyncClient() as http:
        poller = RawPollingClient(http)
        with pytest.raises(EngineIOError, match="needs the app"):
            async with poller.open_probe():
                pass  # pragma: no cover


@pytest.mark.parametrize(
    ("fault", "code", "reason"),
    [("send_oversize", 1009, "transport error"), ("send_malformed", 1002, "transport error")],
)
async def test_websocket_client_oversize_and_malformed_messages(
    autojump_clock: trio.testing.MockClock, fault: str, code: int, reason: str
) -> None:
    eio, app, disconnects = echo_server(max_http_buffer_size=500)
    async with eio, RawWebSocketClient.open(app) as ws:
        assert ws.open_data["maxPayload"] == 500
        await getattr(ws, fault)()
        assert await ws.wait_closed() == code
    assert disconnects == [(ws.sid, reason, 0)]


async def test_websocket_client_vanishing(autojump_clock: trio.testing.MockClock) -> None:
    eio, app, disconnects = echo_server()
    async with eio, RawWebSocketClient.open(app) as ws:
        await trio.sleep(5)
        await ws.vanish()
        await trio.testing.wait_all_tasks_blocked()
    assert disconnects == [(ws.sid, "transport close", 5)]


async def test_raw_websocket_client_refuses_a_first_message_that_is_not_open(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def not_engineio(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "4hello"})
        await receive()

    with pytest.raises(EngineIOError, match="expected an OPEN packet"):
        async with RawWebSocketClient.open(not_engineio):
            pass  # pragma: no cover


async def test_the_websocket_session_of_open_websocket_still_works(autojump_clock: trio.testing.MockClock) -> None:
    eio, app, _ = echo_server()
    async with eio, open_websocket(app) as ws:
        assert str(await ws.receive()).startswith("0{")
        await ws.send("4raw")
        assert await ws.receive() == "4raw"


# -- the pytest plugin and the documentation's examples ---------------------------------------------

USER_SUITE_INI = """
[pytest]
trio_mode = true
filterwarnings = error
addopts = -p no:cacheprovider
"""


def test_the_pytest_plugin_is_enabled_with_one_line(pytester: pytest.Pytester) -> None:
    pytester.makeini(USER_SUITE_INI)
    pytester.makeconftest(
        """
        import pytest
        import trio_engineio

        pytest_plugins = ["trio_engineio.pytest_plugin"]


        @pytest.fixture
        def asgi_app():
            eio = trio_engineio.AsyncServer()

            @eio.on("message")
            async def message(sid, data):
                await eio.send(sid, data)

            return trio_engineio.ASGIApp(eio)
        """
    )
    pytester.makepyfile(
        """
        import trio
        import trio_engineio
        from trio_engineio.testing import BASE_URL


        async def test_url(engineio_url):
            assert engineio_url.startswith("http://127.0.0.1:")
            async with trio_engineio.AsyncClient() as client:
                await client.connect(engineio_url, transports=["websocket"])
                await client.send("over a socket")
                assert await client.receive() == "over a socket"


        async def test_http(engineio_http, autojump_clock):
            response = await engineio_http.get("/engine.io/", params={"EIO": "4", "transport": "polling"})
            assert response.status_code == 200
            assert response.text.startswith("0{")


        async def test_client(engineio_client, autojump_clock):
            await engineio_client.connect(BASE_URL)
            await engineio_client.send("in memory")
            assert await engineio_client.receive() == "in memory"
            await trio.sleep(3600)
            assert engineio_client.state == "connected"
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=3)


def test_every_example_of_the_testing_docs_runs(pytester: pytest.Pytester) -> None:
    """docs/testing.rst shows only files of docs/examples_testing/ (literalinclude); run them as a suite."""
    examples = sorted(DOCS_EXAMPLES.iterdir())
    tests = [path for path in examples if path.name.startswith("test_")]
    assert tests
    for path in examples:
        if path.is_file():
            shutil.copy(path, pytester.path / path.name)
    docs = (DOCS_EXAMPLES.parent / "testing.rst").read_text()
    for path in examples:
        if path.suffix == ".py":
            assert f"examples_testing/{path.name}" in docs, f"{path.name} is not shown in docs/testing.rst"
    result = pytester.runpytest()
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) >= len(tests), result.stdout.str()
    result.assert_outcomes(passed=outcomes["passed"])


async def test_an_async_client_can_use_any_websocket_connector(autojump_clock: trio.testing.MockClock) -> None:
    """``websocket_connector`` takes any object with ``connect``: here one that records the URLs."""
    eio, app, _ = echo_server()

    class Recording:
        def __init__(self) -> None:
            self.inner: WebSocketConnector = InMemoryWebSocketConnector(app)  # it fits the protocol
            self.urls: list[str] = []
            self.headers: list[dict[str, str]] = []

        async def connect(
            self, nursery: trio.Nursery, url: str, *, headers: Mapping[str, str], time_limit: float
        ) -> ClientWebSocket:
            self.urls.append(url)
            self.headers.append(dict(headers))
            return await self.inner.connect(nursery, url, headers=headers, time_limit=time_limit)

    recording = Recording()
    async with eio, httpx.AsyncClient(transport=InMemoryHTTPTransport(app)) as http:
        client = AsyncClient(
            http_session=http, websocket_connector=recording, websocket_extra_options={"headers": {"X-A": "1"}}
        )
        async with client:
            await client.connect("http://example.com/?token=t", headers={"Cookie": "c=1"})
            await trio.testing.wait_all_tasks_blocked()
            assert client.transport() == "websocket"
    [url] = recording.urls
    assert url.startswith("ws://example.com/engine.io/?token=t&transport=websocket&EIO=4&sid=")
    assert "&t=" in url  # timestamp_requests
    assert recording.headers == [{"X-A": "1", "Cookie": "c=1"}]
