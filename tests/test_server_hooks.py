"""engine.io's server hooks that python-engineio lacks, in memory, on virtual time.

``allow_request`` (engine.io's ``allowRequest``), the ``initial_headers`` / ``headers`` events,
the ``connection_error`` event, and the close description given to three-argument
``disconnect`` handlers. ``websocket_compression=False`` needs a real hypercorn: see
``tests/integration/test_hypercorn.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.lowlevel
import trio.testing
from server_helpers import Poller, Recorder, make_app, ws_handshake

from trio_engineio import AsyncServer
from trio_engineio.protocol import ErrorCode, Packet, PacketType
from trio_engineio.testing import WebSocketRejected, open_websocket

FORBIDDEN = {"code": 4, "message": "Forbidden"}


# -- allow_request ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("verdict", "body"),
    [
        (False, FORBIDDEN),
        ("banned until tomorrow", {"code": 4, "message": "banned until tomorrow"}),
        ("", FORBIDDEN),
        (0, FORBIDDEN),  # anything but True or None refuses
        (RuntimeError("hook bug"), FORBIDDEN),  # a hook that raises refuses (and is logged)
    ],
    ids=["False", "a message", "empty message", "0", "raises"],
)
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_allow_request_refuses_handshakes_with_403(
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
    verdict: Any,
    body: dict[str, Any],
    is_async: bool,
) -> None:
    """A refusal is answered 403 with the reference server's JSON body, over polling and websocket,
    before any session exists: the connect handler never runs."""
    seen: list[dict[str, Any]] = []

    def decide(environ: dict[str, Any]) -> Any:
        seen.append(environ)
        if isinstance(verdict, Exception):
            raise verdict
        return verdict

    async def decide_async(environ: dict[str, Any]) -> Any:
        await trio.sleep(1)
        return decide(environ)

    eio, app = make_app(allow_request=decide_async if is_async else decide)
    recorder = Recorder(eio)
    async with eio, Poller.open(app) as poller:
        response = await poller.http.get("/engine.io/", params={"EIO": "4", "transport": "polling"})
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/json"
        assert response.json() == body

        with pytest.raises(WebSocketRejected) as refused:
            async with open_websocket(app, headers={"Authorization": "Bearer nope"}):
                pytest.fail("the websocket was accepted")
        assert refused.value.status_code == 403
        assert refused.value.error_body == body

    assert recorder.connects == []
    assert eio.sockets == {}
    assert [environ["REQUEST_METHOD"] for environ in seen] == ["GET", "GET"]
    assert seen[1]["HTTP_AUTHORIZATION"] == "Bearer nope"
    assert ("allow_request raised" in caplog.text) == isinstance(verdict, Exception)


@pytest.mark.parametrize("verdict", [True, None])
async def test_allow_request_lets_handshakes_through_and_is_asked_only_then(
    autojump_clock: trio.testing.MockClock, verdict: bool | None
) -> None:
    """``True`` or ``None`` lets a handshake through; requests of an existing session (GET, POST,
    the upgrade's websocket) are not asked about, as in engine.io."""
    asked: list[str] = []

    async def allow_request(environ: dict[str, Any]) -> bool | None:
        asked.append(environ["QUERY_STRING"])
        return verdict

    eio, app = make_app(allow_request=allow_request)
    recorder = Recorder(eio)
    async with eio, Poller.open(app) as poller:
        await poller.handshake()
        await poller.post(Packet(PacketType.MESSAGE, "hi"))
        await eio.send(poller.sid, "back")
        assert await poller.get() == [Packet(PacketType.MESSAGE, "back")]
        async with poller.open_probe() as probe:
            await probe.upgrade()
        async with open_websocket(app) as ws:
            await ws_handshake(ws)
    assert len(asked) == 2
    assert all("sid=" not in query for query in asked)
    assert len(recorder.connects) == 2


# -- initial_headers and headers ----------------------------------------------------------------


async def test_header_handlers_add_and_replace_polling_response_headers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``initial_headers`` adds to the handshake's response only, ``headers`` to every polling
    response (after ``initial_headers`` on the handshake, in the same dict); a header set there
    replaces the server's own, a list repeats it; refusals get none."""
    calls: list[tuple[str, str]] = []
    eio, app = make_app()

    @eio.on("initial_headers")
    def initial_headers(headers: dict[str, Any], environ: dict[str, Any]) -> None:
        calls.append(("initial_headers", environ["REQUEST_METHOD"]))
        headers["X-Initial"] = "yes"
        headers["Set-Cookie"] = ["a=1", "b=2"]

    @eio.on("headers")
    async def every_response(headers: dict[str, Any], environ: dict[str, Any]) -> None:
        calls.append(("headers", environ["REQUEST_METHOD"]))
        headers["X-Seen-Initial"] = headers.get("X-Initial", "no")
        headers["Cache-Control"] = "private"

    async with eio, Poller.open(app) as poller:
        await poller.handshake()
        handshake = poller.handshake_response
        assert handshake is not None
        assert handshake.headers["x-initial"] == "yes"
        assert handshake.headers["x-seen-initial"] == "yes"
        assert handshake.headers.get_list("set-cookie") == ["a=1", "b=2"]
        assert handshake.headers.get_list("cache-control") == ["private"]  # replaced, not added

        posted = await poller.post_response("4hello")
        assert (posted.status_code, posted.headers["x-seen-initial"]) == (200, "no")
        assert "x-initial" not in posted.headers
        await eio.send(poller.sid, "x")
        polled = await poller.get_response()
        assert (polled.status_code, polled.headers["x-seen-initial"]) == (200, "no")
        assert polled.headers.get_list("cache-control") == ["private"]
        assert polled.headers["content-type"] == "text/plain; charset=UTF-8"

        refused = await poller.http.get("/engine.io/", params={"EIO": "4", "transport": "polling", "sid": "nope"})
        assert refused.status_code == 400
        assert "x-seen-initial" not in refused.headers

    assert calls == [
        ("initial_headers", "GET"),
        ("headers", "GET"),
        ("headers", "POST"),
        ("headers", "GET"),
    ]


async def test_header_handlers_add_websocket_accept_headers(autojump_clock: trio.testing.MockClock) -> None:
    """A websocket handshake's accept carries both handlers' headers; an upgrade's websocket
    (a session exists) only ``headers``'."""
    eio, app = make_app()

    @eio.on("initial_headers")
    def initial_headers(headers: dict[str, Any], environ: dict[str, Any]) -> None:
        headers["X-Initial"] = "yes"

    @eio.on("headers")
    def every_response(headers: dict[str, Any], environ: dict[str, Any]) -> None:
        headers["X-Transport"] = environ["QUERY_STRING"].split("transport=")[1].split("&")[0]

    async with eio:
        async with open_websocket(app) as ws:
            await ws_handshake(ws)
            assert ws.accept_headers == [(b"x-initial", b"yes"), (b"x-transport", b"websocket")]
        async with Poller.open(app) as poller:
            await poller.handshake()
            async with open_websocket(app, query={"EIO": "4", "transport": "websocket", "sid": poller.sid}) as probe:
                assert probe.accept_headers == [(b"x-transport", b"websocket")]


async def test_a_failing_header_handler_is_logged_and_the_response_goes_out(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A handler that raises is logged, and what it set before stays; a header that cannot be sent
    (a line break, a Content-Length of its own) is logged and left out."""
    eio, app = make_app()

    @eio.on("headers")
    def every_response(headers: dict[str, Any], environ: dict[str, Any]) -> None:
        headers["X-Before"] = "kept"
        headers["X-Injected"] = "a\r\nSet-Cookie: evil=1"
        headers["Content-Length"] = "1"
        raise ValueError("handler bug")

    async with eio, Poller.open(app) as poller:
        await poller.handshake()
        response = poller.handshake_response
        assert response is not None
        assert response.headers["x-before"] == "kept"
        assert "x-injected" not in response.headers
        assert "set-cookie" not in response.headers
        assert response.text.startswith("0{")  # the right Content-Length: the whole OPEN packet
    assert "headers handler error" in caplog.text
    assert "cannot be sent" in caplog.text


# -- connection_error ---------------------------------------------------------------------------


async def test_connection_error_reports_every_refused_request(autojump_clock: trio.testing.MockClock) -> None:
    """Each refused request fires ``connection_error(environ, code, message)`` with the code and
    message of its JSON body; a refusal by the connect handler does not (the application knows)."""
    errors: list[tuple[str, int, str]] = []
    eio, app = make_app(allow_request=lambda environ: "HTTP_X_BANNED" not in environ or "banned")

    @eio.on("connection_error")
    async def connection_error(environ: dict[str, Any], code: ErrorCode, message: str) -> None:
        await trio.lowlevel.checkpoint()
        errors.append((environ["QUERY_STRING"], code, message))

    @eio.on("connect")
    def connect(sid: str, environ: dict[str, Any]) -> bool:
        return "HTTP_X_REFUSE" not in environ

    async with eio, Poller.open(app) as poller:
        http = poller.http
        polling = {"EIO": "4", "transport": "polling"}
        assert (await http.get("/engine.io/", params={**polling, "EIO": "3"})).status_code == 400
        assert (await http.get("/engine.io/", params={**polling, "sid": "x"})).status_code == 400
        refused = await http.get("/engine.io/", params=polling, headers={"X-Banned": "1"})
        assert refused.status_code == 403
        with pytest.raises(WebSocketRejected):
            async with open_websocket(app, query={"EIO": "4", "transport": "websocket", "sid": "y"}):
                pass
        with pytest.raises(WebSocketRejected):
            async with open_websocket(app, headers={"X-Banned": "1"}):
                pass
        unauthorized = await http.get("/engine.io/", params=polling, headers={"X-Refuse": "1"})
        assert unauthorized.status_code == 401
    assert errors == [
        ("EIO=3&transport=polling", ErrorCode.UNSUPPORTED_PROTOCOL_VERSION, "Unsupported protocol version"),
        ("EIO=4&transport=polling&sid=x", ErrorCode.UNKNOWN_SID, "Session ID unknown"),
        ("EIO=4&transport=polling", ErrorCode.FORBIDDEN, "banned"),
        ("EIO=4&transport=websocket&sid=y", ErrorCode.UNKNOWN_SID, "Session ID unknown"),
        ("EIO=4&transport=websocket", ErrorCode.FORBIDDEN, "banned"),
    ]
    assert all(type(code) is ErrorCode for _, code, _ in errors)


async def test_a_failing_connection_error_handler_does_not_break_the_refusal(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    eio, app = make_app()

    @eio.on("connection_error")
    def connection_error(environ: dict[str, Any], code: ErrorCode, message: str) -> None:
        raise RuntimeError("handler bug")

    async with eio, Poller.open(app) as poller:
        response = await poller.http.get("/engine.io/", params={"EIO": "4", "transport": "polling", "sid": "x"})
        assert (response.status_code, response.json()) == (400, {"code": 1, "message": "Session ID unknown"})
        with pytest.raises(WebSocketRejected) as refused:
            async with open_websocket(app, query={"EIO": "4", "transport": "websocket", "sid": "x"}):
                pass
        assert refused.value.status_code == 400
    assert caplog.text.count("connection_error handler error") == 2


def test_unknown_events_are_still_refused() -> None:
    eio = AsyncServer()
    for event in ("initial_headers", "headers", "connection_error"):
        eio.on(event, print)
    with pytest.raises(ValueError, match="connection_error"):
        eio.on("connection", print)
    # python-engineio's list is unchanged (python-socketio reads it).
    assert AsyncServer.event_names == ("connect", "disconnect", "message")


# -- the close description ----------------------------------------------------------------------


async def test_disconnect_handlers_of_one_two_and_three_arguments(autojump_clock: trio.testing.MockClock) -> None:
    """A three-argument ``disconnect`` handler also gets the description (engine.io's close
    event's second argument); one- and two-argument handlers work as before."""
    seen: list[tuple[Any, ...]] = []

    def one(sid: str) -> None:
        seen.append((sid,))

    def two(sid: str, reason: str) -> None:
        seen.append((sid, reason))

    async def three(sid: str, reason: str, description: str) -> None:
        seen.append((sid, reason, description))

    def variadic(*args: Any) -> None:
        seen.append(args)

    for handler in (one, two, three, variadic):
        seen.clear()
        eio, app = make_app(ping_interval=5, ping_timeout=2)
        eio.on("disconnect", handler)
        async with eio, Poller.open(app) as poller:
            await poller.handshake()
            await poller.post(Packet(PacketType.CLOSE))
            await trio.testing.wait_all_tasks_blocked()
            sid = poller.sid
            await poller.handshake()
            await trio.sleep(8)  # no PONG: the ping timeout is at 7 s
        expected: list[tuple[Any, ...]] = [
            (sid, "client disconnect", "the client sent CLOSE"),
            (poller.sid, "ping timeout", "no PONG within 2 s"),
        ]
        assert seen == [args[: len(seen[0])] for args in expected], handler


async def test_a_failing_three_argument_disconnect_handler_is_logged(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    eio, app = make_app()

    @eio.on("disconnect")
    def disconnect(sid: str, reason: str, description: str) -> None:
        raise RuntimeError(description)

    async with eio, Poller.open(app) as poller:
        await poller.handshake()
        await poller.post(Packet(PacketType.CLOSE))
        await trio.testing.wait_all_tasks_blocked()
        assert eio.sockets == {}
    assert "disconnect handler error" in caplog.text
