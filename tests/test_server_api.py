"""AsyncServer's public API: python-engineio's names and semantics, run on Trio.

Every test runs in memory on virtual time (``autojump_clock``): a 25 s ping
interval costs no wall time, and timed assertions are about exact instants.
"""

from __future__ import annotations

import inspect
import json
import logging
import re
from collections.abc import MutableMapping
from typing import Any

import engineio
import pytest
import trio
import trio.testing
from server_helpers import Poller, Recorder, make_app, ws_handshake

import trio_engineio
from trio_engineio import AsyncServer, EngineIOError, QueueEmpty
from trio_engineio.protocol import Packet, PacketType
from trio_engineio.testing import BASE_URL, WebSocketRejected, open_client, open_http_client, open_websocket

# -- constructor -------------------------------------------------------------------------


def test_constructor_accepts_every_python_engineio_option_with_its_default() -> None:
    """Compatibility: every AsyncServer option of python-engineio exists here, with the same default."""
    reference = inspect.signature(engineio.AsyncServer.__init__).parameters
    ours = inspect.signature(AsyncServer.__init__).parameters
    names = [name for name, p in reference.items() if name != "self" and p.kind is not p.VAR_KEYWORD]
    assert names == [
        "async_mode",
        "ping_interval",
        "ping_timeout",
        "max_http_buffer_size",
        "allow_upgrades",
        "http_compression",
        "compression_threshold",
        "cookie",
        "cors_allowed_origins",
        "cors_credentials",
        "logger",
        "json",
        "async_handlers",
        "monitor_clients",
        "transports",
    ]
    for name in names:
        assert name in ours, name
        assert ours[name].default == reference[name].default, name
    # Positional order too, so positional calls written for python-engineio keep working.
    assert [n for n in ours if n != "self"][: len(names)] == names


def test_constructor_defaults() -> None:
    """The option attributes hold python-engineio's defaults."""
    eio = AsyncServer()
    assert eio.async_mode == "asgi"
    assert eio.ping_interval == 25
    assert eio.ping_interval_grace_period == 0
    assert eio.ping_timeout == 20
    assert eio.max_http_buffer_size == 1_000_000
    assert eio.allow_upgrades is True
    assert eio.http_compression is True
    assert eio.compression_threshold == 1024
    assert eio.cookie is None
    assert eio.cors_allowed_origins is None
    assert eio.cors_credentials is True
    assert eio.async_handlers is True
    assert [t.value for t in eio.transports] == ["polling", "websocket"]
    assert eio.upgrade_timeout == 10
    assert eio.max_packets_per_poll == 16
    assert eio.max_packets_per_post == 1024
    assert eio.close_timeout == 5


def test_unknown_keyword_argument_is_a_type_error() -> None:
    """A misspelt option fails loudly instead of being ignored."""
    with pytest.raises(TypeError, match="ping_intervall"):
        AsyncServer(ping_intervall=5)  # type: ignore[call-arg]


@pytest.mark.parametrize("mode", ["aiohttp", "tornado", "sanic", "threading", "eventlet"])
def test_async_mode_other_than_asgi_is_a_value_error_naming_it(mode: str) -> None:
    """Only 'asgi' (or None) is a mode here; the error names the rejected mode."""
    with pytest.raises(ValueError, match=mode):
        AsyncServer(async_mode=mode)


@pytest.mark.parametrize("mode", [None, "asgi"])
def test_async_mode_none_or_asgi_is_accepted(mode: str | None) -> None:
    """``async_mode=None`` and ``'asgi'`` both select the ASGI mode."""
    assert AsyncServer(async_mode=mode).async_mode == "asgi"


@pytest.mark.parametrize(
    ("transports", "expected"),
    [
        ("polling", ["polling"]),
        ("websocket", ["websocket"]),
        (["websocket", "polling"], ["websocket", "polling"]),
        (["polling", "carrier-pigeon"], ["polling"]),
    ],
)
def test_transports_option_keeps_the_valid_names(transports: Any, expected: list[str]) -> None:
    """As in python-engineio, a string or a list; unknown names are dropped."""
    assert [t.value for t in AsyncServer(transports=transports).transports] == expected


@pytest.mark.parametrize("transports", [[], ["carrier-pigeon"], "smoke"])
def test_transports_option_without_a_valid_transport_is_a_value_error(transports: Any) -> None:
    """A server that could accept no transport is a configuration error."""
    with pytest.raises(ValueError, match="transports"):
        AsyncServer(transports=transports)


async def test_ping_interval_tuple_advertises_interval_plus_grace(autojump_clock: trio.testing.MockClock) -> None:
    """``ping_interval=(interval, grace)``: pings every ``interval``, the client is told ``interval + grace``."""
    eio, app = make_app(ping_interval=(10, 2.5), ping_timeout=4)
    async with eio, open_websocket(app) as ws:
        opened = await ws_handshake(ws)
        assert opened["pingInterval"] == 12500
        assert opened["pingTimeout"] == 4000
        start = trio.current_time()
        assert await ws.receive() == "2"
        assert trio.current_time() - start == 10


async def test_custom_json_module_is_used_by_this_server(autojump_clock: trio.testing.MockClock) -> None:
    """``json=`` gives this server (only) a module with ``dumps``/``loads`` for dict/list messages."""
    calls: list[str] = []

    class TaggingJSON:
        @staticmethod
        def dumps(data: Any) -> str:
            calls.append("dumps")
            return json.dumps({"tagged": data})

        @staticmethod
        def loads(text: str) -> Any:
            calls.append("loads")
            return {"decoded": json.loads(text)}

    eio, app = make_app(json=TaggingJSON)
    recorder = Recorder(eio)
    async with eio, open_websocket(app) as ws:
        sid = (await ws_handshake(ws))["sid"]
        await eio.send(sid, {"a": 1})
        assert json.loads((await ws.receive())[1:]) == {"tagged": {"a": 1}}
        await ws.send('4{"b": 2}')
        await recorder.message_received.wait()
    assert recorder.messages == [(sid, {"decoded": {"b": 2}})]
    assert calls == ["dumps", "loads"]
    other, other_app = make_app()
    async with other, open_websocket(other_app) as ws:
        await other.send((await ws_handshake(ws))["sid"], {"a": 1})
        assert await ws.receive() == '4{"a":1}'
    assert calls == ["dumps", "loads"]


async def test_a_server_runs_once_at_a_time(autojump_clock: trio.testing.MockClock) -> None:
    """Entering ``async with eio:`` twice at once is a usage error; after leaving, it may run again."""
    eio = AsyncServer()
    async with eio:
        assert eio.running
        with pytest.raises(RuntimeError, match="already running"):
            async with eio:
                pass
    assert not eio.running
    async with eio:
        assert eio.running


# -- handlers ------------------------------------------------------------------------------


def test_on_as_decorator_returns_the_handler() -> None:
    """``@eio.on(event)`` registers the function and leaves it usable."""
    eio = AsyncServer()

    @eio.on("message")
    def message(sid: str, data: Any) -> str:
        return "still callable"

    assert eio.handlers["message"] is message
    assert message("sid", "x") == "still callable"


def test_on_as_call_registers_the_handler() -> None:
    """``eio.on(event, handler)`` registers without decorating."""
    eio = AsyncServer()

    def connect(sid: str, environ: dict[str, Any]) -> None:
        pass

    eio.on("connect", connect)
    assert eio.handlers["connect"] is connect


def test_on_unknown_event_is_a_value_error() -> None:
    """Only connect, message and disconnect exist."""
    with pytest.raises(ValueError, match="mesage"):
        AsyncServer().on("mesage")


@pytest.mark.parametrize("is_async", [False, True])
async def test_sync_and_async_handlers_are_both_called(autojump_clock: trio.testing.MockClock, is_async: bool) -> None:
    """Handlers may be plain functions or coroutine functions."""
    eio, app = make_app()
    seen: list[tuple[str, Any]] = []
    done = trio.Event()

    def record(event: str, *args: Any) -> None:
        seen.append((event, args[1] if len(args) > 1 else None))
        if event == "disconnect":
            done.set()

    if is_async:

        async def connect(sid: str, environ: dict[str, Any]) -> None:
            record("connect", sid, environ["REQUEST_METHOD"])

        async def message(sid: str, data: Any) -> None:
            record("message", sid, data)

        async def disconnect(sid: str, reason: str) -> None:
            record("disconnect", sid, reason)

        eio.on("connect", connect)
        eio.on("message", message)
        eio.on("disconnect", disconnect)
    else:
        eio.on("connect", lambda sid, environ: record("connect", sid, environ["REQUEST_METHOD"]))
        eio.on("message", lambda sid, data: record("message", sid, data))
        eio.on("disconnect", lambda sid, reason: record("disconnect", sid, reason))
    async with eio:
        async with open_websocket(app) as ws:
            await ws_handshake(ws)
            await ws.send("4hi")
            await trio.testing.wait_all_tasks_blocked()
        await done.wait()
    assert seen == [("connect", "GET"), ("message", "hi"), ("disconnect", "transport close")]


# -- send ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "frame"),
    [
        ("hello", "4hello"),
        ("", "4"),
        ("é ✓", "4é ✓"),
        (b"\x00\x01\xff", b"\x00\x01\xff"),
        (bytearray(b"\x01\x02"), b"\x01\x02"),
        ({"a": [1, 2], "b": "é"}, None),
        ([1, "two", None], None),
    ],
)
async def test_send_str_bytes_dict_list(autojump_clock: trio.testing.MockClock, data: Any, frame: Any) -> None:
    """``send``: str is a text message, bytes (or bytearray) a binary frame, dict/list JSON text."""
    eio, app = make_app()
    async with eio, open_websocket(app) as ws:
        sid = (await ws_handshake(ws))["sid"]
        await eio.send(sid, data)
        received = await ws.receive()
        if frame is not None:
            assert received == frame
        else:
            assert isinstance(received, str)
            assert received[0] == "4"
            assert json.loads(received[1:]) == data


async def test_send_packet_sends_the_raw_packet(autojump_clock: trio.testing.MockClock) -> None:
    """``send_packet`` puts a given Packet on the wire as is."""
    eio, app = make_app()
    async with eio, open_websocket(app) as ws:
        sid = (await ws_handshake(ws))["sid"]
        await eio.send_packet(sid, Packet(PacketType.NOOP))
        await eio.send_packet(sid, Packet(PacketType.MESSAGE, "raw"))
        assert await ws.receive() == "6"
        assert await ws.receive() == "4raw"


async def test_send_to_an_unknown_sid_is_logged_not_raised(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """As in python-engineio, sending to a sid that is gone is logged, not raised."""
    eio, _ = make_app()
    async with eio:
        with caplog.at_level(logging.WARNING, logger="trio_engineio.server"):
            await eio.send("no-such-sid", "x")
    warnings = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "trio_engineio.server"]
    assert warnings == [(logging.WARNING, "Cannot send to sid no-such-sid")]


# -- user sessions ------------------------------------------------------------------------


async def test_get_session_save_session_and_session_context(autojump_clock: trio.testing.MockClock) -> None:
    """The per-client user session: starts empty, replaced by save_session, saved by ``session()``."""
    eio, app = make_app()
    async with eio, open_websocket(app) as ws:
        sid = (await ws_handshake(ws))["sid"]
        assert await eio.get_session(sid) == {}
        await eio.save_session(sid, {"user": "ada"})
        assert await eio.get_session(sid) == {"user": "ada"}
        async with eio.session(sid) as session:
            session["visits"] = 1
        assert await eio.get_session(sid) == {"user": "ada", "visits": 1}
        with pytest.raises(KeyError):
            await eio.get_session("no-such-sid")
        with pytest.raises(KeyError):
            await eio.save_session("no-such-sid", {})


# -- disconnect ---------------------------------------------------------------------------


async def test_disconnect_one_websocket_client(autojump_clock: trio.testing.MockClock) -> None:
    """``disconnect(sid)`` delivers CLOSE, closes the socket and runs the handler with 'server disconnect'."""
    eio, app = make_app()
    recorder = Recorder(eio)
    async with eio, open_websocket(app) as ws:
        sid = (await ws_handshake(ws))["sid"]
        with trio.fail_after(1):
            await eio.disconnect(sid)
        assert recorder.disconnects == [(sid, "server disconnect")]
        assert await ws.receive() == "1"
        assert await ws.wait_closed() == 1000
        assert sid not in eio.sockets


async def test_disconnect_all_clients(autojump_clock: trio.testing.MockClock) -> None:
    """``disconnect()`` closes every session, polling and websocket, and returns promptly."""
    eio, app = make_app()
    recorder = Recorder(eio)
    async with eio, open_http_client(app) as http, open_websocket(app) as ws1, open_websocket(app) as ws2:
        poller = Poller(http)
        await poller.handshake()
        sids = {(await ws_handshake(ws1))["sid"], (await ws_handshake(ws2))["sid"], poller.sid}
        with trio.fail_after(1):
            await eio.disconnect()
        assert {sid for sid, _ in recorder.disconnects} == sids
        assert {reason for _, reason in recorder.disconnects} == {"server disconnect"}
        assert await ws1.receive() == "1"
        assert await ws2.receive() == "1"
        assert [p.type for p in await poller.get()] == [PacketType.CLOSE]


async def test_disconnect_with_no_clients_or_unknown_sid_returns(autojump_clock: trio.testing.MockClock) -> None:
    """Disconnecting nobody, or a sid that does not exist, is not an error and does not hang."""
    eio, _ = make_app()
    async with eio:
        with trio.fail_after(1):
            await eio.disconnect()
            await eio.disconnect("no-such-sid")


async def test_disconnect_twice_runs_the_handler_once(autojump_clock: trio.testing.MockClock) -> None:
    """A session ends once: a second disconnect of the same sid is a no-op."""
    eio, app = make_app()
    recorder = Recorder(eio)
    async with eio, open_websocket(app) as ws:
        sid = (await ws_handshake(ws))["sid"]
        with trio.fail_after(1):
            await eio.disconnect(sid)
            await eio.disconnect(sid)
        assert recorder.disconnects == [(sid, "server disconnect")]


async def test_failing_disconnect_handler_is_logged_and_harms_nothing(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A disconnect handler that raises is logged; the session still ends and others go on."""
    eio, app = make_app()

    @eio.on("disconnect")
    def disconnect(sid: str, reason: str) -> None:
        raise RuntimeError("cleanup bug")

    async with eio, open_websocket(app) as survivor:
        sid = (await ws_handshake(survivor))["sid"]
        async with open_websocket(app) as leaving:
            gone = (await ws_handshake(leaving))["sid"]
        await trio.testing.wait_all_tasks_blocked()
        assert gone not in eio.sockets
        await eio.send(sid, "alive")
        assert await survivor.receive() == "4alive"
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1
        assert errors[0].exc_info is not None
        assert "cleanup bug" in str(errors[0].exc_info[1])


async def test_legacy_disconnect_handler_taking_only_sid(autojump_clock: trio.testing.MockClock) -> None:
    """A disconnect handler written before reasons existed (``sid`` only) is still called."""
    eio, app = make_app()
    seen: list[str] = []

    @eio.on("disconnect")
    async def disconnect(sid: str) -> None:
        seen.append(sid)

    async with eio, open_websocket(app) as ws:
        sid = (await ws_handshake(ws))["sid"]
        await eio.disconnect(sid)
    assert seen == [sid]


async def test_transport_names_the_current_transport(autojump_clock: trio.testing.MockClock) -> None:
    """``transport(sid)`` is 'polling' or 'websocket'; an unknown sid is a KeyError."""
    eio, app = make_app()
    async with eio, open_http_client(app) as http, open_websocket(app) as ws:
        poller = Poller(http)
        await poller.handshake()
        ws_sid = (await ws_handshake(ws))["sid"]
        assert eio.transport(poller.sid) == "polling"
        assert eio.transport(ws_sid) == "websocket"
        with pytest.raises(KeyError):
            eio.transport("no-such-sid")


# -- concurrency helpers ----------------------------------------------------------------------


async def test_background_task_handle_is_awaitable(autojump_clock: trio.testing.MockClock) -> None:
    """``start_background_task`` passes args and kwargs; awaiting the handle gives the result."""
    eio = AsyncServer()

    async def add(a: int, b: int, *, scale: int) -> int:
        await trio.sleep(3)
        return (a + b) * scale

    async with eio:
        handle = eio.start_background_task(add, 1, 2, scale=10)
        assert not handle.done()
        assert await handle == 30
        assert handle.done()
        assert trio.current_time() == 3


async def test_background_task_exception_is_logged_and_raised_by_await(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A failing background task is logged and its exception comes out of ``await handle``."""
    eio = AsyncServer()

    async def fail() -> None:
        raise RuntimeError("boom")

    async with eio:
        handle = eio.start_background_task(fail)
        with pytest.raises(RuntimeError, match="boom"):
            await handle
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == [f"background task {handle.name} raised"]
    assert errors[0].exc_info is not None
    assert str(errors[0].exc_info[1]) == "boom"


async def test_background_task_can_be_cancelled(autojump_clock: trio.testing.MockClock) -> None:
    """``handle.cancel()`` stops the task; awaiting it then returns None."""
    eio = AsyncServer()
    async with eio:
        handle = eio.start_background_task(trio.sleep_forever)
        await trio.sleep(1)
        handle.cancel()
        assert await handle is None
        assert handle.cancelled()
        assert trio.current_time() == 1


async def test_background_tasks_are_cancelled_by_shutdown(autojump_clock: trio.testing.MockClock) -> None:
    """Leaving ``async with eio:`` cancels the background tasks still running."""
    eio = AsyncServer()
    async with eio:
        handle = eio.start_background_task(trio.sleep_forever)
        await trio.sleep(1)
    assert handle.done()
    assert handle.cancelled()
    assert trio.current_time() == 1


def test_background_task_needs_a_running_server() -> None:
    """Without a nursery there is nowhere to run a task: a clear EngineIOError."""
    with pytest.raises(EngineIOError, match="async with"):
        AsyncServer().start_background_task(trio.sleep_forever)


async def test_create_queue_and_its_empty_exception() -> None:
    """``create_queue`` gives a FIFO with asyncio.Queue's names; ``get_nowait`` raises the advertised exception."""
    eio = AsyncServer()
    queue = eio.create_queue()
    assert queue.empty()
    await queue.put(1)
    queue.put_nowait(2)
    assert queue.qsize() == 2
    assert await queue.get() == 1
    assert queue.get_nowait() == 2
    assert eio.get_queue_empty_exception() is QueueEmpty
    with pytest.raises(eio.get_queue_empty_exception()):
        queue.get_nowait()


async def test_bounded_queue_put_nowait_refuses_when_full() -> None:
    """``create_queue(maxsize)`` is bounded: ``put_nowait`` raises the library's QueueFull, as asyncio's does."""
    queue = AsyncServer().create_queue(1)
    queue.put_nowait("a")
    with pytest.raises(trio_engineio.QueueFull):
        queue.put_nowait("b")
    assert queue.get_nowait() == "a"


async def test_create_event_and_sleep(autojump_clock: trio.testing.MockClock) -> None:
    """``create_event`` is an event with asyncio's methods; ``sleep`` is ``trio.sleep`` (virtual time here)."""
    eio = AsyncServer()
    event = eio.create_event()
    assert not event.is_set()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(event.wait)
        await eio.sleep(2.5)
        event.set()
    assert trio.current_time() == 2.5


def test_generate_id_is_url_safe_and_unique() -> None:
    """Session ids can go in a URL unescaped and never repeat."""
    eio = AsyncServer()
    ids = [eio.generate_id() for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{16,}", sid) for sid in ids)


def test_async_modes_and_is_asyncio_based() -> None:
    """The one mode is 'asgi', and this server is not asyncio-based."""
    eio = AsyncServer()
    assert eio.async_modes() == ["asgi"]
    assert eio.is_asyncio_based() is False


async def test_handle_request_without_a_running_server_says_how_to_run_it() -> None:
    """The server's nursery lives in ASGI lifespan or ``async with eio:``; the error says so."""
    eio = AsyncServer()
    scope: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "path": "/engine.io/",
        "query_string": b"EIO=4&transport=polling",
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: MutableMapping[str, Any]) -> None:
        pass

    with pytest.raises(EngineIOError) as info:
        await eio.handle_request(scope, receive, send)
    assert "async with" in str(info.value)
    assert "lifespan" in str(info.value)


# -- the connect handler ---------------------------------------------------------------------


async def _refuse_false(sid: str, environ: dict[str, Any]) -> bool:
    return False


def _refuse_raise(sid: str, environ: dict[str, Any]) -> None:
    raise RuntimeError("database down")


@pytest.mark.parametrize("connect", [_refuse_false, _refuse_raise])
async def test_connect_refused_is_401_json_without_disconnect(
    autojump_clock: trio.testing.MockClock, connect: Any
) -> None:
    """A connect handler returning False or raising refuses with 401 and a JSON body; no disconnect follows."""
    eio, app = make_app()
    disconnects: list[str] = []
    eio.on("connect", connect)
    eio.on("disconnect", lambda sid, reason: disconnects.append(sid))
    async with eio, open_http_client(app) as http:
        response = await http.get("/engine.io/", params={"EIO": "4", "transport": "polling"})
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/json"
        assert response.json() == "Unauthorized"
        await trio.testing.wait_all_tasks_blocked()
        assert list(eio.sockets) == []
    assert disconnects == []


async def test_connect_refusal_over_websocket_is_401(autojump_clock: trio.testing.MockClock) -> None:
    """A websocket-only handshake refused by the connect handler is denied before accept."""

    eio, app = make_app()
    eio.on("connect", _refuse_false)
    async with eio:
        with pytest.raises(WebSocketRejected) as info:
            async with open_websocket(app):
                pass
        assert info.value.status_code == 401
        assert list(eio.sockets) == []


async def test_connect_handler_custom_refusal_body(autojump_clock: trio.testing.MockClock) -> None:
    """A connect handler may return a JSON-able reason; it becomes the 401 body (python-engineio)."""
    eio, app = make_app()
    eio.on("connect", lambda sid, environ: {"reason": "banned"})
    async with eio, open_http_client(app) as http:
        response = await http.get("/engine.io/", params={"EIO": "4", "transport": "polling"})
        assert response.status_code == 401
        assert response.json() == {"reason": "banned"}


async def test_messages_sent_from_the_connect_handler_follow_the_open_packet(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The connect handler may already send: the message arrives right after OPEN, on either transport."""
    eio, app = make_app()

    @eio.on("connect")
    async def connect(sid: str, environ: dict[str, Any]) -> None:
        await eio.send(sid, "welcome")

    async with eio, open_http_client(app) as http, open_websocket(app) as ws:
        poller = Poller(http)
        await poller.handshake()
        assert await poller.get() == [Packet(PacketType.MESSAGE, "welcome")]
        await ws_handshake(ws)
        assert await ws.receive() == "4welcome"


async def test_connect_handler_sees_the_environ(autojump_clock: trio.testing.MockClock) -> None:
    """The connect handler gets a WSGI-style environ with the request's headers and query."""
    eio, app = make_app()
    environs: list[dict[str, Any]] = []
    eio.on("connect", lambda sid, environ: environs.append(environ))
    async with eio, open_http_client(app) as http:
        await Poller(http).handshake(headers={"Authorization": "secret"}, token="abc")
    (environ,) = environs
    assert environ["HTTP_AUTHORIZATION"] == "secret"
    assert "token=abc" in environ["QUERY_STRING"]
    assert environ["REQUEST_METHOD"] == "GET"
    assert environ["PATH_INFO"] == "/engine.io/"


# -- messages ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        ('4{"a": 1}', {"a": 1}),
        ('4[1, "x"]', [1, "x"]),
        ("4{not json", "{not json"),
        ("4123", "123"),
        ('4"quoted"', '"quoted"'),
        ("4true", "true"),
        ("4", ""),
        ("4plain text", "plain text"),
        (b"\x00\xff", b"\x00\xff"),
    ],
)
async def test_message_data_decoding(autojump_clock: trio.testing.MockClock, frame: Any, expected: Any) -> None:
    """A JSON object or array arrives decoded; any other text exactly as sent; binary as bytes."""
    eio, app = make_app()
    recorder = Recorder(eio)
    async with eio, open_websocket(app) as ws:
        await ws_handshake(ws)
        await ws.send(frame)
        await recorder.message_received.wait()
    assert [data for _, data in recorder.messages] == [expected]
    assert type(recorder.messages[0][1]) is type(expected)


@pytest.mark.parametrize("async_handlers", [True, False])
async def test_failing_message_handler_is_logged_and_harms_nothing(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture, async_handlers: bool
) -> None:
    """A handler that raises is logged; its session and every other session go on."""
    eio, app = make_app(async_handlers=async_handlers)
    handled: list[tuple[str, Any]] = []

    @eio.on("message")
    async def message(sid: str, data: Any) -> None:
        if data == "boom":
            raise RuntimeError("handler bug")
        handled.append((sid, data))
        await eio.send(sid, f"echo {data}")

    async with eio, open_websocket(app) as ws1, open_websocket(app) as ws2:
        sid1 = (await ws_handshake(ws1))["sid"]
        sid2 = (await ws_handshake(ws2))["sid"]
        await ws1.send("4boom")
        await ws1.send("4after")
        await ws2.send("4other")
        assert await ws1.receive() == "4echo after"
        assert await ws2.receive() == "4echo other"
        assert eio.transport(sid1) == "websocket"
    assert sorted(handled) == sorted([(sid1, "after"), (sid2, "other")])
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    assert "handler bug" in str(errors[0].exc_info[1])


async def test_async_handlers_a_waiting_handler_does_not_hold_up_the_next_or_the_pongs(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """async_handlers=True: a handler that waits (here, past the ping timeout) lets the messages
    behind it be handled at once, in their order, and does not stop the reader: pongs keep the
    session alive."""
    eio, app = make_app(async_handlers=True, ping_interval=5, ping_timeout=2)
    recorder = Recorder(eio)
    handled: list[tuple[float, Any]] = []

    @eio.on("message")
    async def message(sid: str, data: Any) -> None:
        if data == "slow":
            await trio.sleep(30)
        handled.append((trio.current_time(), data))

    async with eio, open_websocket(app) as ws:
        sid = (await ws_handshake(ws))["sid"]
        for text in ("slow", "a", "b", "c"):
            await ws.send("4" + text)
        for expected_ping_at in (5, 10, 15, 20, 25, 30):
            assert await ws.receive() == "2"
            assert trio.current_time() == expected_ping_at
            await ws.send("3")
        await trio.testing.wait_all_tasks_blocked()
        assert eio.transport(sid) == "websocket"
        assert recorder.disconnects == []
    assert handled == [(0, "a"), (0, "b"), (0, "c"), (30, "slow")]


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_async_handlers_a_handler_waiting_for_the_clients_next_message_does_not_deadlock(
    autojump_clock: trio.testing.MockClock, transport: str
) -> None:
    """A request/response built on Engine.IO: the handler of "ask" waits for the same client's
    "answer", which a handler of that client must deliver. One handler at a time would wait
    forever (python-engineio runs each message in its own task; so must this, when one waits)."""
    eio, app = make_app(async_handlers=True)
    answers: dict[str, trio.MemorySendChannel[Any]] = {}
    replies: list[Any] = []

    @eio.on("message")
    async def message(sid: str, data: Any) -> None:
        if data == "ask":
            send, receive = trio.open_memory_channel[Any](1)
            answers[sid] = send
            replies.append(await receive.receive())
            await eio.send(sid, "got it")
        else:
            await answers[sid].send(data)

    async with eio, open_client(app) as client:
        await client.connect(BASE_URL, transports=[transport])
        await client.send("ask")
        await client.send("42")
        with trio.fail_after(5):
            assert await client.receive() == "got it"
    assert replies == ["42"]


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_async_handlers_the_disconnect_handler_comes_after_the_last_messages_handlers(
    autojump_clock: trio.testing.MockClock, transport: str
) -> None:
    """A client sends, then leaves: its message handlers finish before its disconnect handler
    runs (python-socketio's disconnect logic relies on it), but one that never ends delays the
    disconnect handler by close_timeout at most."""
    eio, app = make_app(async_handlers=True, close_timeout=5)
    events: list[tuple[float, str]] = []

    @eio.on("message")
    async def message(sid: str, data: Any) -> None:
        await trio.sleep(2 if data == "slow" else 1000)
        events.append((trio.current_time(), data))

    @eio.on("disconnect")
    def disconnect(sid: str) -> None:
        events.append((trio.current_time(), "disconnect"))

    async with eio, open_client(app) as client:
        await client.connect(BASE_URL, transports=[transport])
        await client.send("slow")
        await trio.testing.wait_all_tasks_blocked()
        start = trio.current_time()
        await client.disconnect()
        await trio.sleep(10)
    assert [name for _, name in events] == ["slow", "disconnect"]
    assert events[0][0] <= events[1][0]
    # A handler that never ends: the disconnect handler runs close_timeout after the close.
    events.clear()
    eio, app = make_app(async_handlers=True, close_timeout=5)
    eio.on("message", message)
    eio.on("disconnect", disconnect)
    async with eio, open_client(app) as client:
        await client.connect(BASE_URL, transports=[transport])
        await client.send("forever")
        await trio.testing.wait_all_tasks_blocked()
        start = trio.current_time()
        await client.disconnect()
        await trio.sleep(10)
    assert events == [(start + 5, "disconnect")]


async def test_async_handlers_quick_handlers_of_one_client_run_in_arrival_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Handlers that pass checkpoints without waiting (sends, a checkpoint) keep strict order:
    no message overtakes another, and no extra task is started for them."""
    eio, app = make_app(async_handlers=True)
    handled: list[Any] = []

    @eio.on("message")
    async def message(sid: str, data: Any) -> None:
        handled.append(("start", data))
        await trio.lowlevel.checkpoint()
        await eio.send(sid, data)
        handled.append(("end", data))

    async with eio, open_websocket(app) as ws:
        await ws_handshake(ws)
        for index in range(200):
            await ws.send(f"4m{index}")
        echoes = [await ws.receive() for _ in range(200)]
    assert echoes == [f"4m{index}" for index in range(200)]
    assert handled == [(edge, f"m{index}") for index in range(200) for edge in ("start", "end")]


async def test_async_handlers_false_runs_the_handler_inline(autojump_clock: trio.testing.MockClock) -> None:
    """async_handlers=False: the handler runs in the request, so a POST is answered after it returns."""
    for async_handlers, answered_at in ((False, 7), (True, 0)):
        eio, app = make_app(async_handlers=async_handlers)

        @eio.on("message")
        async def message(sid: str, data: Any) -> None:
            await trio.sleep(7)

        async with eio, open_http_client(app) as http:
            poller = Poller(http)
            await poller.handshake()
            start = trio.current_time()
            await poller.post(Packet(PacketType.MESSAGE, "x"))
            assert trio.current_time() - start == answered_at, async_handlers


@pytest.mark.parametrize("async_handlers", [True, False])
async def test_a_handler_may_disconnect_its_own_client(
    autojump_clock: trio.testing.MockClock, async_handlers: bool
) -> None:
    """``await eio.disconnect(sid)`` from the message handler of that sid returns (no deadlock), and
    the client gets its CLOSE, over websocket and polling alike."""
    eio, app = make_app(async_handlers=async_handlers)
    recorder = Recorder(eio)
    returned: list[str] = []

    @eio.on("message")
    async def message(sid: str, data: Any) -> None:
        await eio.disconnect(sid)
        returned.append(sid)

    async with eio, open_http_client(app) as http, open_websocket(app) as ws:
        ws_sid = (await ws_handshake(ws))["sid"]
        await ws.send("4bye")
        assert await ws.receive() == "1"
        assert await ws.wait_closed() == 1000
        poller = Poller(http)
        await poller.handshake()
        await poller.post(Packet(PacketType.MESSAGE, "bye"))
        assert await poller.get() == [Packet(PacketType.CLOSE)]
        await trio.testing.wait_all_tasks_blocked()
        assert trio.current_time() == 0
    assert returned == [ws_sid, poller.sid]
    assert recorder.disconnects == [(ws_sid, "server disconnect"), (poller.sid, "server disconnect")]


async def test_a_full_handler_backlog_slows_the_reader_and_drops_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """async_handlers=True with handlers that wait and a small buffer: at most 32 of one client's
    handlers wait at once, the rest queue, the reader waits for room instead of dropping; every
    message is handled, each started in arrival order."""
    eio, app = make_app(outbound_buffer_size=2, ping_interval=1000)
    started: list[Any] = []
    handled: list[tuple[float, Any]] = []
    running = peak = 0

    @eio.on("message")
    async def message(sid: str, data: Any) -> None:
        nonlocal running, peak
        started.append(data)
        running += 1
        peak = max(peak, running)
        await trio.sleep(10)
        running -= 1
        handled.append((trio.current_time(), data))

    async with eio, open_websocket(app) as ws:
        await ws_handshake(ws)
        for i in range(70):
            await ws.send(f"4{i}")
        await trio.sleep(100)
    assert started == [str(i) for i in range(70)]
    assert peak == 32
    # Each in its wave of 32; one that finds no runner free may wait for the next look (0.2 s).
    assert sorted(data for _, data in handled) == sorted(str(i) for i in range(70))
    for finished_at, data in handled:
        wave_end = 10.0 * (1 + int(data) // 32)
        assert wave_end <= finished_at <= wave_end + 0.2, (data, finished_at)
