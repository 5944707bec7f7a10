"""Our AsyncClient against the official JavaScript ``engine.io`` server (node, 127.0.0.1, port 0).

Real processes and real sockets, so real time: heartbeats are shortened
(300 ms / 200 ms) where a test waits for one, and every test is bounded by
``trio.fail_after``. The server echoes each message; ``please-disconnect``,
``stop-pinging`` and ``send-binary`` are its control messages (see tests/js/server.mjs).
"""

from __future__ import annotations

import gc
import socket
import warnings
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
from nodejs import JsServer, open_js_server

import trio_engineio.client
from trio_engineio.client import AsyncClient
from trio_engineio.exceptions import CloseReason, ConnectionError, SocketIsClosedError

pytestmark = pytest.mark.usefixtures("node_modules")

TRANSPORTS = {
    "polling": ["polling"],
    "websocket": ["websocket"],
    "upgrade": ["polling", "websocket"],
}
FAST_PINGS = {"pingInterval": 300, "pingTimeout": 200}
LIMIT = 15  # seconds any one test may take


@pytest.fixture(params=sorted(TRANSPORTS))
def mode(request: pytest.FixtureRequest) -> str:
    mode: str = request.param
    return mode


@pytest.fixture
async def js_server() -> AsyncIterator[JsServer]:
    async with open_js_server({"logMessages": False}) as server:
        yield server


class Recorder:
    """The client's handler calls, in order."""

    def __init__(self, client: AsyncClient) -> None:
        self.events: list[tuple[str, Any]] = []
        self.disconnected = trio.Event()
        client.on("connect", self.on_connect)
        client.on("disconnect", self.on_disconnect)

    def on_connect(self) -> None:
        self.events.append(("connect", None))

    async def on_disconnect(self, reason: CloseReason) -> None:
        self.events.append(("disconnect", reason))
        self.disconnected.set()


async def wait_for_transport(client: AsyncClient, name: str) -> None:
    while client.transport() != name:  # noqa: ASYNC110  (a public getter, no event to wait on)
        await trio.sleep(0.01)


async def connect(client: AsyncClient, server: JsServer, mode: str) -> None:
    await client.connect(server.url, transports=TRANSPORTS[mode])
    if mode == "upgrade":
        assert client.transport() == "polling"
        await wait_for_transport(client, "websocket")
    else:
        assert client.transport() == mode


# -- echo, binary, order -------------------------------------------------------------


async def test_echo_text_and_binary_both_ways(js_server: JsServer, mode: str) -> None:
    with trio.fail_after(LIMIT):
        async with AsyncClient() as client:
            recorder = Recorder(client)
            await connect(client, js_server, mode)
            assert recorder.events == [("connect", None)]
            assert client.state == "connected"
            assert client.sid is not None
            await client.send("hello")
            assert await client.receive() == "hello"
            await client.send(bytes(range(256)) * 3)
            assert await client.receive() == bytes(range(256)) * 3
            await client.send("send-binary")
            assert await client.receive() == bytes(range(256))
            # dict/list go as JSON text; a received JSON object or array is decoded, other text is kept
            await client.send({"a": [1, 2]})
            assert await client.receive() == {"a": [1, 2]}
            await client.send([1, "two"])
            assert await client.receive() == [1, "two"]
            for text in ("123", "null", '"quoted"', "{not json"):
                await client.send(text)
                assert await client.receive() == text


async def test_upgrade_is_reported_by_the_server(js_server: JsServer) -> None:
    with trio.fail_after(LIMIT):
        async with AsyncClient() as client:
            await client.connect(js_server.url)
            await wait_for_transport(client, "websocket")
            connection = await js_server.wait_for("connection")
            assert connection["transport"] == "polling"
            upgrade = await js_server.wait_for("upgrade", sid=client.sid)
            assert upgrade["transport"] == "websocket"


async def test_messages_sent_during_the_upgrade_arrive_in_order(js_server: JsServer) -> None:
    with trio.fail_after(LIMIT):
        async with AsyncClient() as client:
            await client.connect(js_server.url)
            for i in range(300):
                await client.send(f"m{i}")
                if i % 10 == 0:
                    await trio.sleep(0.005)  # spread the sends across the probe and the pause
            assert [await client.receive() for _ in range(300)] == [f"m{i}" for i in range(300)]
            assert client.transport() == "websocket"


async def test_a_thousand_ordered_messages(js_server: JsServer, mode: str) -> None:
    with trio.fail_after(LIMIT):
        async with AsyncClient() as client:
            await connect(client, js_server, mode)
            received: list[Any] = []

            async def consume() -> None:
                async for data in client:
                    received.append(data)
                    if len(received) == 1000:
                        return

            async with trio.open_nursery() as nursery:
                nursery.start_soon(consume)
                for i in range(1000):
                    await client.send(f"#{i}" if i % 2 else f"#{i}".encode())
            assert received == [f"#{i}" if i % 2 else f"#{i}".encode() for i in range(1000)]


async def test_message_handler_gets_messages_in_order(js_server: JsServer, mode: str) -> None:
    with trio.fail_after(LIMIT):
        async with AsyncClient() as client:
            got: list[Any] = []
            done = trio.Event()

            @client.on("message")
            async def on_message(data: Any) -> None:
                await trio.lowlevel.checkpoint()
                got.append(data)
                if len(got) == 200:
                    done.set()

            await connect(client, js_server, mode)
            for i in range(200):
                await client.send(f"x{i}")
            await done.wait()
            assert got == [f"x{i}" for i in range(200)]


@pytest.mark.parametrize("mode", ["polling", "websocket"])
async def test_a_message_near_max_http_buffer_size(mode: str) -> None:
    limit = 100_000
    async with open_js_server({"maxHttpBufferSize": limit, "logMessages": False}) as server:
        with trio.fail_after(LIMIT):
            async with AsyncClient() as client:
                await client.connect(server.url, transports=TRANSPORTS[mode])
                big = "x" * (limit - 10)
                await client.send(big)
                assert await client.receive() == big
                # Two messages that only fit the server's maxPayload in separate POSTs.
                halves = ["a" * (limit // 2 + 100), "b" * (limit // 2 + 100)]
                for half in halves:
                    await client.send(half)
                assert [await client.receive(), await client.receive()] == halves
                assert client.state == "connected"


# -- disconnects -------------------------------------------------------------------


async def test_server_disconnect(js_server: JsServer, mode: str) -> None:
    with trio.fail_after(LIMIT):
        async with AsyncClient() as client:
            recorder = Recorder(client)
            await connect(client, js_server, mode)
            await client.send("before")
            await client.send("please-disconnect")
            await client.wait()
            assert recorder.events == [("connect", None), ("disconnect", CloseReason.SERVER_DISCONNECT)]
            assert client.state == "disconnected"
            assert client.sid is None
            assert client.transport() is None
            # messages received before the close can still be read, then iteration ends
            assert [data async for data in client] == ["before"]
            with pytest.raises(SocketIsClosedError):
                await client.send("after")


async def test_client_disconnect(js_server: JsServer, mode: str) -> None:
    with trio.fail_after(LIMIT):
        async with AsyncClient() as client:
            recorder = Recorder(client)
            await connect(client, js_server, mode)
            sid = client.sid
            await client.send("last words")
            await client.disconnect()
            assert recorder.events == [("connect", None), ("disconnect", CloseReason.CLIENT_DISCONNECT)]
            assert client.state == "disconnected"
            close = await js_server.wait_for("close", sid=sid)
            assert close["reason"] in ("transport close", "transport error")
            await client.disconnect()  # a no-op now
            assert len(recorder.events) == 2


async def test_disconnect_from_a_message_handler(js_server: JsServer, mode: str) -> None:
    with trio.fail_after(LIMIT):
        async with AsyncClient() as client:
            recorder = Recorder(client)

            @client.on("message")
            async def on_message(data: Any) -> None:
                await client.disconnect()

            await connect(client, js_server, mode)
            await client.send("bye")
            await recorder.disconnected.wait()
            assert recorder.events[-1] == ("disconnect", CloseReason.CLIENT_DISCONNECT)


async def test_ping_timeout(mode: str) -> None:
    async with open_js_server({**FAST_PINGS, "logMessages": False}) as server:
        with trio.fail_after(LIMIT):
            async with AsyncClient() as client:
                recorder = Recorder(client)
                await connect(client, server, mode)
                await client.send("stop-pinging")
                await server.wait_for("stopped-pinging")
                stopped = trio.current_time()
                await client.wait()
                elapsed = trio.current_time() - stopped
                assert recorder.events[-1] == ("disconnect", CloseReason.PING_TIMEOUT)
                # at most one more ping arrives after the server stops, then 300 + 200 ms of silence
                assert elapsed < 0.3 + 0.5 + 0.5


async def test_pings_are_answered(mode: str) -> None:
    async with open_js_server({"pingInterval": 100, "pingTimeout": 200, "logMessages": False}) as server:
        with trio.fail_after(LIMIT):
            async with AsyncClient() as client:
                await connect(client, server, mode)
                await trio.sleep(1)  # ten ping rounds
                assert client.state == "connected"
                await client.send("still here")
                assert await client.receive() == "still here"
                assert server.events_named("close") == []


# -- failures -----------------------------------------------------------------------


def _refused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize("transports", [["polling"], ["websocket"]])
async def test_connection_refused(transports: list[str]) -> None:
    with trio.fail_after(LIMIT):
        async with AsyncClient() as client:
            with pytest.raises(ConnectionError) as info:
                await client.connect(f"http://127.0.0.1:{_refused_port()}", transports=transports)
            assert info.value.status_code is None
            assert client.state == "disconnected"


@pytest.mark.parametrize(
    ("server_transports", "client_transports"), [(["websocket"], ["polling"]), (["polling"], ["websocket"])]
)
async def test_refused_handshake_carries_status_and_body(
    server_transports: list[str], client_transports: list[str]
) -> None:
    async with open_js_server({"transports": server_transports}) as server:
        with trio.fail_after(LIMIT):
            async with AsyncClient() as client:
                with pytest.raises(ConnectionError) as info:
                    await client.connect(server.url, transports=client_transports)
                assert info.value.status_code == 400
                assert info.value.error_body == {"code": 0, "message": "Transport unknown"}
                assert client.state == "disconnected"
                # the client can connect again with a transport the server takes
                await client.connect(server.url, transports=server_transports)
                assert client.transport() == server_transports[0]


async def test_wrong_path_is_a_connection_error(js_server: JsServer) -> None:
    with trio.fail_after(LIMIT):
        async with AsyncClient() as client:
            with pytest.raises(ConnectionError) as info:
                await client.connect(js_server.url, engineio_path="nope")
            assert info.value.status_code == 404


async def test_connect_handler_failure_is_a_connection_error(js_server: JsServer) -> None:
    with trio.fail_after(LIMIT):
        async with AsyncClient() as client:

            @client.on("connect")
            def refuse() -> None:
                raise RuntimeError("no thanks")

            with pytest.raises(ConnectionError, match="Connect handler failed: no thanks"):
                await client.connect(js_server.url)
            assert client.state == "disconnected"


# -- structure and resources -------------------------------------------------------


async def test_no_task_remains_after_disconnect(js_server: JsServer, mode: str) -> None:
    with trio.fail_after(LIMIT):
        async with AsyncClient() as client:
            await connect(client, js_server, mode)
            nursery = client._nursery
            assert nursery is not None
            assert nursery.child_tasks
            await client.disconnect()
            assert not nursery.child_tasks


async def test_no_socket_leaks_when_the_server_closes_the_websocket(js_server: JsServer) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        with trio.fail_after(LIMIT):
            async with AsyncClient() as client:
                await client.connect(js_server.url, transports=["websocket"])
                await client.send("please-disconnect")
                await client.wait()
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


async def test_connect_outside_async_with_says_how_to_use_it(js_server: JsServer) -> None:
    client = AsyncClient()
    with pytest.raises(RuntimeError, match=r"async with trio_engineio\.AsyncClient"):
        await client.connect(js_server.url)


def test_unknown_keyword_arguments_are_refused() -> None:
    with pytest.raises(TypeError):
        AsyncClient(nope=True)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unknown websocket_extra_options"):
        AsyncClient(websocket_extra_options={"ssl": None})
    AsyncClient(websocket_extra_options={"headers": {"X-A": "1"}, "max_message_size": 10}, handle_sigint=False)
    assert trio_engineio.client.AsyncClient.reason.PING_TIMEOUT is CloseReason.PING_TIMEOUT
