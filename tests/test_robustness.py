"""Nothing escapes into the ASGI server: hostile requests, hostile frames, hostile handlers.

The requirement: "no exception from a request, a bad packet or a user handler
escapes into the ASGI server; a failing handler is logged and harms no other
session". Each test feeds the app something odd and asserts that the request
ends normally (``app(scope, receive, send)`` returns) with the right answer.

Requests that need full control of the ASGI messages (no ``Host``, bytes that
are not UTF-8 in the query, an ASGI ``send`` that raises) are driven with the
raw callables of :func:`call_http` / :func:`call_websocket`; the rest go through
:mod:`trio_engineio.testing`. Everything runs in memory on ``autojump_clock``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import pytest
import trio
import trio.testing
from server_helpers import Poller, Recorder, make_app, ws_handshake

from trio_engineio import ASGIApp, AsyncServer
from trio_engineio._concurrency import is_fatal
from trio_engineio.exceptions import LocalProtocolError
from trio_engineio.protocol import Packet, PacketType
from trio_engineio.testing import open_websocket

Message = MutableMapping[str, Any]


class Boom(BaseException):
    """A ``BaseException`` that is not one of the fatal ones (see ``is_fatal``)."""


class ClientGone(OSError):
    """What an ASGI server may raise from ``send`` once the client has gone (the ASGI spec asks for an OSError)."""


def http_scope(method: str, query_string: bytes, headers: list[tuple[bytes, bytes]]) -> Message:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": "/engine.io/",
        "raw_path": b"/engine.io/",
        "root_path": "",
        "query_string": query_string,
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


def websocket_scope(query_string: bytes = b"EIO=4&transport=websocket", *, denial: bool = True) -> Message:
    return {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "scheme": "ws",
        "path": "/engine.io/",
        "raw_path": b"/engine.io/",
        "root_path": "",
        "query_string": query_string,
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "subprotocols": [],
        "extensions": {"websocket.http.response": {}} if denial else {},
    }


async def call_http(
    app: ASGIApp,
    method: str = "GET",
    query_string: bytes = b"EIO=4&transport=polling",
    headers: list[tuple[bytes, bytes]] | None = None,
    body: bytes = b"",
) -> tuple[int, bytes]:
    """Run one HTTP request through the raw ASGI callables; return its status and body."""
    sent: list[Message] = []
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> Message:
        if pending:
            return pending.pop()
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    default_headers = [(b"host", b"testserver")]
    await app(http_scope(method, query_string, default_headers if headers is None else headers), receive, send)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    return int(sent[0]["status"]), bytes(sent[1]["body"])


def send_raising(sent: list[Message]) -> Callable[[Message], Awaitable[None]]:
    """An ASGI ``send`` for a client that has gone: it records the message, then raises."""

    async def send(message: Message) -> None:
        sent.append(message)
        raise ClientGone("the client has gone")

    return send


def json_code(body: bytes) -> int:
    code: int = json.loads(body)["code"]
    return code


# -- odd requests --------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["PUT", "HEAD", "DELETE", "PATCH", "CONNECT", "TRACE", ""])
async def test_odd_methods_get_400_with_a_json_code(autojump_clock: trio.testing.MockClock, method: str) -> None:
    """A handshake by any method but GET is code 2; on a session, any method but GET and POST is code 3."""
    eio, app = make_app()
    async with eio:
        status, body = await call_http(app, method)
        assert (status, json_code(body)) == (400, 2)
        status, body = await call_http(app)
        sid = json.loads(body[1:])["sid"]
        status, body = await call_http(app, method, b"EIO=4&transport=polling&sid=" + sid.encode())
        assert (status, json_code(body)) == (400, 3)


@pytest.mark.parametrize(
    ("query_string", "headers", "status", "code"),
    [
        pytest.param(b"EIO=4&transport=polling", [], 200, None, id="no-host"),
        pytest.param(b"EIO=4&transport=polling", [(b"origin", b"http://a.example")], 400, 4, id="no-host-with-origin"),
        pytest.param(b"EIO=4&transport=polling&\xff\xfe=\xc3(", None, 200, None, id="query-not-utf8"),
        pytest.param(b"EIO=4&transport=polling&sid=\xff\xfe", None, 400, 1, id="sid-not-utf8"),
        pytest.param(b"EIO=4&transport=polling&sid=%ED%A0%80", None, 400, 1, id="sid-percent-encoded-surrogate"),
        pytest.param(b"EIO=4&transport=polling&" + b"a=b&" * 250_000, None, 200, None, id="query-1MB"),
        pytest.param(b"EIO=\xff&transport=polling", None, 400, 5, id="eio-not-utf8"),
        pytest.param(b"EIO=4&transport=\xff", None, 400, 0, id="transport-not-utf8"),
        pytest.param(b"EIO=4&transport=polling&j=abc", None, 400, 3, id="jsonp-j-letters"),
        pytest.param(b"EIO=4&transport=polling&j=-1", None, 400, 3, id="jsonp-j-negative"),
        pytest.param(b"EIO=4&transport=polling&j=", None, 400, 3, id="jsonp-j-empty"),
        pytest.param("EIO=4&transport=polling&j=\u0661".encode(), None, 400, 3, id="jsonp-j-arabic-digit"),
        pytest.param(b"EIO=4&transport=polling&j=%FF", None, 400, 3, id="jsonp-j-percent-ff"),
        pytest.param(b"EIO=4&transport=polling&j=" + b"9" * 5000, None, 200, None, id="jsonp-j-long"),
        pytest.param(
            b"EIO=4&transport=polling",
            [(b"host", b"t\xff"), (b"origin", b"http://t\xff"), (b"accept-encoding", b"gzip;q=nan, *;q=x")],
            200,
            None,
            id="headers-not-ascii",
        ),
    ],
)
async def test_odd_requests_are_answered_never_raised(
    autojump_clock: trio.testing.MockClock,
    query_string: bytes,
    headers: list[tuple[bytes, bytes]] | None,
    status: int,
    code: int | None,
) -> None:
    """Missing Host, bytes that are not UTF-8, a 1 MB query string, bad JSONP indexes: answered, never raised."""
    eio, app = make_app()
    async with eio:
        answer = await call_http(app, "GET", query_string, headers)
    assert answer[0] == status
    if code is not None:
        assert json_code(answer[1]) == code


# -- odd frames ----------------------------------------------------------------------------------


async def test_a_text_frame_with_a_lone_surrogate_over_the_limit_closes_with_1009(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The size check measures it (no UnicodeEncodeError escapes); over the limit it is a 1009 close."""
    eio, app = make_app(max_http_buffer_size=100)
    recorder = Recorder(eio)
    async with eio, open_websocket(app) as ws:
        await ws_handshake(ws)
        await ws.send("4" + "\ud800" * 40)  # 40 characters, 121 bytes (surrogatepass)
        assert await ws.wait_closed() == 1009
        await recorder.disconnected.wait()
    assert recorder.disconnects == [(recorder.connects[0], "transport error")]


async def test_binary_frames_of_every_size_up_to_the_limit(autojump_clock: trio.testing.MockClock) -> None:
    """0 to max_http_buffer_size bytes arrive as they are; one byte more closes with 1009."""
    eio, app = make_app(max_http_buffer_size=64)
    recorder = Recorder(eio)
    async with eio, open_websocket(app) as ws:
        await ws_handshake(ws)
        for size in range(65):
            await ws.send(bytes(range(size)))
        await trio.testing.wait_all_tasks_blocked()
        assert [data for _, data in recorder.messages] == [bytes(range(size)) for size in range(65)]
        await ws.send(bytes(65))
        assert await ws.wait_closed() == 1009


@pytest.mark.parametrize(
    "data", ["x\ud800", "\udfff", {"key": "\ud800"}, ["\ud800"]], ids=["str", "str-low", "dict", "list"]
)
@pytest.mark.parametrize("transport", ["polling", "websocket"])
async def test_sending_a_lone_surrogate_raises_at_send_and_the_session_goes_on(
    autojump_clock: trio.testing.MockClock, data: Any, transport: str
) -> None:
    """Text with no UTF-8 encoding is refused by ``send`` (it used to explode inside the next GET
    and lose the packets queued with it); what is sent before and after arrives."""
    eio, app = make_app()
    errors: list[BaseException] = []

    @eio.on("message")
    async def message(sid: str, _: Any) -> None:
        await eio.send(sid, "before")
        try:
            await eio.send(sid, data)
        except LocalProtocolError as exc:
            errors.append(exc)
        await eio.send(sid, "after")

    async with eio:
        if transport == "polling":
            async with Poller.open(app) as poller:
                await poller.handshake()
                await poller.post(Packet(PacketType.MESSAGE, "go"))
                received = await poller.get()
                if len(received) == 1:  # each send is a checkpoint: the GET may answer between them
                    received += await poller.get()
                assert received == [Packet(PacketType.MESSAGE, "before"), Packet(PacketType.MESSAGE, "after")]
        else:
            async with open_websocket(app) as ws:
                await ws_handshake(ws)
                await ws.send("4go")
                assert [await ws.receive(), await ws.receive()] == ["4before", "4after"]
    assert len(errors) == 1
    assert "lone surrogate" in str(errors[0])


async def test_send_packet_refuses_binary_on_a_control_packet(autojump_clock: trio.testing.MockClock) -> None:
    """Refused at ``send_packet``, not by the GET that would have encoded it."""
    eio, app = make_app()
    async with eio, Poller.open(app) as poller:
        await poller.handshake()
        with pytest.raises(LocalProtocolError, match="PING"):
            await eio.send_packet(poller.sid, Packet(PacketType.PING, b"x"))
        await eio.send(poller.sid, "fine")
        assert await poller.get() == [Packet(PacketType.MESSAGE, "fine")]


# -- hostile handlers ----------------------------------------------------------------------------


@pytest.mark.parametrize("async_handlers", [True, False])
@pytest.mark.parametrize("event", ["connect", "message", "disconnect"])
async def test_a_handler_raising_a_base_exception_harms_no_other_session(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture, event: str, async_handlers: bool
) -> None:
    """A BaseException that is not fatal (not KeyboardInterrupt, SystemExit, GeneratorExit, Cancelled)
    is logged like an Exception: it used to crash the server's nursery, and every session with it."""
    eio, app = make_app(async_handlers=async_handlers)
    victims: list[str] = []
    echoed = trio.Event()

    def handler(sid: str, *args: Any) -> None:
        if not victims:
            victims.append(sid)
            raise Boom(event)

    eio.on(event, handler)
    if event != "message":

        @eio.on("message")
        async def echo(sid: str, data: Any) -> None:
            await eio.send(sid, data)
            echoed.set()

    async with eio:
        async with Poller.open(app) as first:
            if event == "connect":
                status, _ = await call_http(app)
                assert status == 401  # a raising connect handler refuses
            else:
                await first.handshake()
                await first.post(Packet(PacketType.MESSAGE, "hello"))
                await first.post(Packet(PacketType.CLOSE))
        async with open_websocket(app) as ws:  # another session, after the failure: the server still runs
            await ws_handshake(ws)
            await ws.send("4still here")
            if event != "message":
                assert await ws.receive() == "4still here"
    assert f"{event} handler error" in caplog.text


async def test_a_background_task_raising_a_base_exception_is_logged_and_kept(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    eio = AsyncServer()

    async def task() -> None:
        raise Boom("background")

    async with eio:
        handle = eio.start_background_task(task)
        await trio.sleep(1)
        assert handle.done()
        with pytest.raises(Boom):
            await handle
        assert eio.running
    assert "background task" in caplog.text


async def test_is_fatal_lets_only_interrupts_exits_and_cancellation_through() -> None:
    """The line drawn by every handler and background task wrapper."""
    assert is_fatal(KeyboardInterrupt())
    assert is_fatal(SystemExit(1))
    assert is_fatal(GeneratorExit())
    assert not is_fatal(Boom())
    assert not is_fatal(ValueError())

    async def fail(exc: BaseException) -> None:
        raise exc

    caught: list[BaseException] = []
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(fail, ValueError())
            nursery.start_soon(fail, Boom())
    except BaseException as group:  # a BaseExceptionGroup (its backport before 3.11)
        caught.append(group)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(fail, ValueError())
            nursery.start_soon(fail, SystemExit(2))
    except BaseException as group:
        caught.append(group)
    with trio.CancelScope() as scope:
        try:
            scope.cancel()
            await trio.lowlevel.checkpoint()
        except BaseException as cancelled:
            caught.append(cancelled)
            raise
    assert [is_fatal(exc) for exc in caught] == [False, True, True]


# -- an ASGI send that raises, a client that leaves during the connect handler ----------------------


async def test_a_send_that_raises_on_the_handshake_ends_the_session_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The client left while the connect handler ran, and the server's ``send`` raises: the request
    ends normally, and the session (whose sid nobody will ever learn) closes at that instant."""
    eio, app = make_app()
    recorder = Recorder(eio)

    @eio.on("connect")
    async def slow_connect(sid: str, environ: dict[str, Any]) -> None:
        recorder.connects.append(sid)
        await trio.sleep(5)

    sent: list[Message] = []
    inbox: list[Message] = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> Message:
        # The server does not report the departure (the next test covers one that does).
        if inbox:
            return inbox.pop()
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async with eio:
        await app(http_scope("GET", b"EIO=4&transport=polling", [(b"host", b"t")]), receive, send_raising(sent))
        await recorder.disconnected.wait()
        assert trio.current_time() == 5
        assert recorder.disconnects == [(recorder.connects[0], "transport close")]
        await trio.testing.wait_all_tasks_blocked()
        assert dict(eio.sockets) == {}
    assert [m["type"] for m in sent] == ["http.response.start"]


async def test_a_send_that_raises_on_a_refusal_or_a_poll_ends_the_request(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A response that cannot be sent ends its request quietly, and the packets it carried are not
    lost: the next GET delivers them, first."""
    eio, app = make_app()
    async with eio, Poller.open(app) as poller:
        await poller.handshake()
        await eio.send(poller.sid, "kept for the next poll")

        async def receive() -> Message:
            await trio.sleep_forever()
            raise AssertionError("unreachable")

        for query in (b"EIO=3&transport=polling", f"EIO=4&transport=polling&sid={poller.sid}".encode()):
            sent: list[Message] = []
            await app(http_scope("GET", query, [(b"host", b"t")]), receive, send_raising(sent))
            assert [m["type"] for m in sent] == ["http.response.start"]
        await eio.send(poller.sid, "next")
        assert await poller.get() == [
            Packet(PacketType.MESSAGE, "kept for the next poll"),
            Packet(PacketType.MESSAGE, "next"),
        ]


@pytest.mark.parametrize("refused", [False, True])
async def test_a_websocket_client_gone_before_accept(autojump_clock: trio.testing.MockClock, refused: bool) -> None:
    """The connect handler is slow, the client leaves, and ``send`` raises (accept or refusal):
    the request ends normally; an accepted session closes with ``transport close`` at that instant."""
    eio, app = make_app()
    recorder = Recorder(eio)

    @eio.on("connect")
    async def slow_connect(sid: str, environ: dict[str, Any]) -> bool:
        recorder.connects.append(sid)
        await trio.sleep(5)
        return not refused

    inbox: list[Message] = [{"type": "websocket.disconnect", "code": 1001}, {"type": "websocket.connect"}]

    async def receive() -> Message:
        return inbox.pop() if inbox else {"type": "websocket.disconnect", "code": 1001}

    sent: list[Message] = []
    async with eio:
        await app(websocket_scope(), receive, send_raising(sent))
        assert trio.current_time() == 5
        await trio.testing.wait_all_tasks_blocked()
        assert recorder.disconnects == ([] if refused else [(recorder.connects[0], "transport close")])
        assert dict(eio.sockets) == {}
    assert [m["type"] for m in sent] == ["websocket.http.response.start" if refused else "websocket.accept"]


async def test_a_send_that_raises_on_a_probe_accept_leaves_the_session_polling(
    autojump_clock: trio.testing.MockClock,
) -> None:
    eio, app = make_app()
    async with eio, Poller.open(app) as poller:
        await poller.handshake()

        async def receive() -> Message:
            return {"type": "websocket.connect"}

        sent: list[Message] = []
        query = f"EIO=4&transport=websocket&sid={poller.sid}".encode()
        await app(websocket_scope(query), receive, send_raising(sent))
        assert [m["type"] for m in sent] == ["websocket.accept"]
        assert eio.transport(poller.sid) == "polling"
        await eio.send(poller.sid, "still polling")
        assert await poller.get() == [Packet(PacketType.MESSAGE, "still polling")]
        async with poller.open_probe() as probe:  # and a later upgrade still works
            await probe.upgrade()
        # (leaving the probe's block closed the upgraded websocket: the session is over)


async def test_an_unreadable_static_file_is_404(
    autojump_clock: trio.testing.MockClock,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Found, then unreadable (permissions, or deleted in between): 404, logged, nothing raised."""
    (tmp_path / "index.html").write_text("hi")
    eio = AsyncServer()
    app = ASGIApp(eio, static_files={"/": str(tmp_path / "index.html")})

    async def unreadable(self: trio.Path) -> bytes:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(trio.Path, "read_bytes", unreadable)
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = http_scope("GET", b"", [(b"host", b"t")])
    scope["path"] = "/"
    async with eio:
        await app(scope, receive, send)
    assert sent[0]["status"] == 404
    assert "cannot serve static file" in caplog.text


async def test_a_client_leaving_during_a_slow_connect_handler_ends_its_session_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With a server whose ``send`` does not raise (hypercorn's), a client that left during the
    connect handler still ends its session when the handler returns, not at its ping timeout."""
    eio, app = make_app()
    recorder = Recorder(eio)

    @eio.on("connect")
    async def slow_connect(sid: str, environ: dict[str, Any]) -> None:
        recorder.connects.append(sid)
        await trio.sleep(5)

    inbox: list[Message] = [{"type": "http.disconnect"}, {"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> Message:
        if inbox:
            return inbox.pop()
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async with eio:
        await app(http_scope("GET", b"EIO=4&transport=polling", [(b"host", b"t")]), receive, send)
        await recorder.disconnected.wait()
        assert trio.current_time() == 5
        assert recorder.disconnects == [(recorder.connects[0], "transport close")]
        await trio.testing.wait_all_tasks_blocked()
        assert dict(eio.sockets) == {}
    assert sent == []
