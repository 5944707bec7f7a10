"""Trio's rule: every public ``async`` function is a checkpoint, on every path.

A checkpoint is a cancel point and a scheduling point. A call that returns early
without one (a send to a sid that is gone, say) lets an application loop such as
``while True: await eio.send(gone, x)`` hold the run loop forever: no other task,
no session and no request of the whole server runs again. So every path of every
public coroutine is checked here with ``trio.testing.assert_checkpoints()``, the
ones that raise included (``pytest.raises`` inside it, so the block still ends
normally and is checked).

Requests handled by :class:`~trio_engineio.ASGIApp` rely on the ASGI server's
``receive`` and ``send`` for their checkpoints, as Trio's rule lets them; they are
driven here by memory channels, which checkpoint as hypercorn's do. A websocket
``send`` is the exception: a write may complete without a scheduling point (the
hypercorn fast path; hypercorn's ``send`` on a closed stream), so
:meth:`AsyncServer.send` guarantees its own, and
:func:`test_send_costs_exactly_one_scheduling_point` counts it.

Everything runs in memory on ``autojump_clock``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import AsyncIterator, Callable, MutableMapping
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from server_helpers import Poller, make_app, ws_handshake

import trio_engineio
from trio_engineio import ASGIApp, AsyncClient, AsyncServer, EngineIOError, SocketIsClosedError
from trio_engineio._http import Send
from trio_engineio.exceptions import ConnectionError, LocalProtocolError
from trio_engineio.protocol import Packet, PacketType
from trio_engineio.testing import BASE_URL, WebSocketSession, open_client, open_websocket

Message = MutableMapping[str, Any]
checkpoints = trio.testing.assert_checkpoints


def schedule_points() -> int:
    """The scheduling points this task has passed: Trio's own count, the one that
    ``trio.testing.assert_checkpoints`` reads (a private attribute, hence only in tests)."""
    return trio.lowlevel.current_task()._schedule_points


def instant_websocket_writer(send: Send, enabled: bool = True) -> Callable[[str | bytes], Any]:
    """A stand-in for hypercorn's fast path on the in-memory driver: each frame is
    written with ``send_nowait``, so the write completes without a scheduling point."""
    channel = send.__self__  # type: ignore[attr-defined]  # the driver's MemorySendChannel.send
    assert type(channel) is trio.MemorySendChannel

    async def write(frame: str | bytes) -> bool:
        channel.send_nowait({"type": "websocket.send", "text" if isinstance(frame, str) else "bytes": frame})
        return False

    return write


@pytest.fixture
def instant_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Websocket writes that never yield, as hypercorn's fast path's."""
    monkeypatch.setattr(trio_engineio._hypercorn, "fast_websocket_writer", instant_websocket_writer)


# -- a server with a session in every state ---------------------------------------------


@dataclasses.dataclass
class Running:
    """A running server and its sessions: one per state a sid can be in."""

    eio: AsyncServer
    websocket: WebSocketSession
    open_sid: str
    """An open websocket session."""
    polling_sid: str
    """An open polling session (a send queues the packet)."""
    closed_sid: str
    """A closed session not forgotten yet: its disconnect handler is still running."""
    gone_sid: str = "no-such-sid"
    """A sid the server does not know (never was, or forgotten)."""


@contextlib.asynccontextmanager
async def running_server(**options: Any) -> AsyncIterator[Running]:
    """A server with an open websocket session, an open polling session and a closed one."""
    eio, app = make_app(**options)
    release = trio.Event()
    held: set[str] = set()

    @eio.on("disconnect")
    async def hold(sid: str) -> None:
        if sid in held:
            await release.wait()

    async with eio, Poller.open(app) as poller, open_websocket(app) as ws, open_websocket(app) as leaving:
        open_sid = (await ws_handshake(ws))["sid"]
        closed_sid = (await ws_handshake(leaving))["sid"]
        held.add(closed_sid)
        await poller.handshake()
        await leaving.close()
        await trio.testing.wait_all_tasks_blocked()
        assert eio._sessions[closed_sid].machine.is_closed
        try:
            yield Running(eio, ws, open_sid, poller.sid, closed_sid)
        finally:
            release.set()


SIDS = ["open_sid", "polling_sid", "closed_sid", "gone_sid"]


# -- AsyncServer ---------------------------------------------------------------------------


@pytest.mark.parametrize("which", SIDS)
@pytest.mark.parametrize("data", ["text", b"binary", {"json": True}])
async def test_send_is_a_checkpoint_whatever_the_sid(
    autojump_clock: trio.testing.MockClock, which: str, data: Any
) -> None:
    async with running_server() as server:
        with checkpoints():
            await server.eio.send(getattr(server, which), data)


@pytest.mark.parametrize("which", SIDS)
async def test_send_packet_is_a_checkpoint_whatever_the_sid(autojump_clock: trio.testing.MockClock, which: str) -> None:
    async with running_server() as server:
        with checkpoints():
            await server.eio.send_packet(getattr(server, which), Packet(PacketType.MESSAGE, "x"))


@pytest.mark.parametrize("which", SIDS)
async def test_a_refused_send_is_a_checkpoint(autojump_clock: trio.testing.MockClock, which: str) -> None:
    async with running_server() as server:
        sid = getattr(server, which)
        with checkpoints(), pytest.raises(LocalProtocolError):
            await server.eio.send(sid, "\ud800")
        with checkpoints(), pytest.raises(TypeError):
            await server.eio.send(sid, {"not json": object()})
        with checkpoints(), pytest.raises(LocalProtocolError):
            await server.eio.send_packet(sid, Packet(PacketType.PING, b"binary"))


async def test_send_is_a_checkpoint_with_instant_websocket_writes(
    autojump_clock: trio.testing.MockClock, instant_writes: None
) -> None:
    async with running_server() as server:
        with checkpoints():
            await server.eio.send(server.open_sid, "fast")
        assert await server.websocket.receive() == "4fast"


async def test_send_is_a_checkpoint_when_the_server_is_not_running() -> None:
    eio = AsyncServer()
    with checkpoints():
        await eio.send("no-such-sid", "x")


async def test_send_costs_exactly_one_scheduling_point(
    autojump_clock: trio.testing.MockClock, instant_writes: None
) -> None:
    """One when the session reached none (a write that did not yield, a sid that is gone),
    none added when it did (queueing on a memory channel is one)."""
    async with running_server() as server:
        for sid in (server.open_sid, server.polling_sid, server.closed_sid, server.gone_sid):
            before = schedule_points()
            await server.eio.send(sid, "x")
            assert schedule_points() - before == 1, sid
        assert await server.websocket.receive() == "4x"


async def test_a_send_through_the_asgi_servers_send_costs_one_scheduling_point(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The ASGI server's ``send`` (here a memory channel, as hypercorn's with the fast path off)
    yields when it writes: that is the send's scheduling point, no second one is added (a task
    step per message)."""
    async with running_server() as server:
        before = schedule_points()
        await server.eio.send(server.open_sid, "x")
        assert schedule_points() - before == 1
        assert await server.websocket.receive() == "4x"


async def test_a_cancelled_send_sends_nothing(autojump_clock: trio.testing.MockClock, instant_writes: None) -> None:
    """The cancel point comes before the write: Cancelled means the message was not sent."""
    async with running_server() as server:
        with trio.CancelScope() as scope:
            scope.cancel()
            await server.eio.send(server.open_sid, "never")
        assert scope.cancelled_caught
        await server.eio.send(server.open_sid, "sent")
        assert await server.websocket.receive() == "4sent"


@pytest.mark.parametrize("which", SIDS)
async def test_user_session_calls_are_checkpoints(autojump_clock: trio.testing.MockClock, which: str) -> None:
    async with running_server() as server:
        eio, sid = server.eio, getattr(server, which)
        if which in ("open_sid", "polling_sid"):
            with checkpoints():
                await eio.save_session(sid, {"user": "ada"})
            with checkpoints():
                assert await eio.get_session(sid) == {"user": "ada"}
            with checkpoints():
                async with eio.session(sid) as session:
                    session["visits"] = 1
            assert await eio.get_session(sid) == {"user": "ada", "visits": 1}
        else:
            with checkpoints(), pytest.raises(KeyError):
                await eio.save_session(sid, {})
            with checkpoints(), pytest.raises(KeyError):
                await eio.get_session(sid)
            with checkpoints(), pytest.raises(KeyError):
                async with eio.session(sid):
                    pass  # pragma: no cover


async def test_session_context_saves_even_when_its_block_is_cancelled(autojump_clock: trio.testing.MockClock) -> None:
    """The save on exit is shielded: its checkpoint neither skips it nor replaces the block's exception."""
    async with running_server() as server:
        eio, sid = server.eio, server.open_sid
        replaced: dict[str, Any] = {}

        async def save_session(sid: str, session: dict[str, Any]) -> None:
            await trio.lowlevel.checkpoint()
            replaced.update(session)

        eio.save_session = save_session  # type: ignore[method-assign]
        with trio.CancelScope() as scope:
            async with eio.session(sid) as session:
                session["seen"] = True
                scope.cancel()
                await trio.lowlevel.checkpoint()
        assert scope.cancelled_caught
        assert replaced == {"seen": True}

        async def fail_in_a_cancelled_block() -> None:
            with trio.CancelScope() as scope:
                async with eio.session(sid):
                    scope.cancel()
                    raise ValueError("mine")

        with pytest.raises(ValueError, match="mine"):
            await fail_in_a_cancelled_block()


@pytest.mark.parametrize("which", [*SIDS, None])
async def test_disconnect_is_a_checkpoint(autojump_clock: trio.testing.MockClock, which: str | None) -> None:
    async with running_server() as server:
        sid = None if which is None else getattr(server, which)
        with checkpoints():
            await server.eio.disconnect(sid)
        with checkpoints():
            await server.eio.disconnect(sid)  # again: nothing left to close


async def test_disconnect_and_shutdown_are_checkpoints_with_no_sessions(autojump_clock: trio.testing.MockClock) -> None:
    eio = AsyncServer()
    with checkpoints():
        await eio.disconnect()
    with checkpoints():
        await eio.shutdown()  # not running: nothing to do, still a checkpoint
    async with eio:
        with checkpoints():
            await eio.disconnect()
        with checkpoints():
            await eio.disconnect("no-such-sid")
        with checkpoints():
            await eio.shutdown()


async def test_shutdown_with_sessions_is_a_checkpoint(autojump_clock: trio.testing.MockClock) -> None:
    async with running_server() as server:
        with checkpoints():
            await server.eio.shutdown()


async def test_entering_and_leaving_the_server_are_checkpoints(autojump_clock: trio.testing.MockClock) -> None:
    eio = AsyncServer()
    with checkpoints():
        async with eio:
            with checkpoints(), pytest.raises(RuntimeError, match="already running"):
                await eio.__aenter__()
    with checkpoints():
        await eio.__aenter__()
    with checkpoints():
        await eio.__aexit__(None, None, None)  # no session: nothing to wait for, still a checkpoint
    with checkpoints(), pytest.RaisesGroup(ZeroDivisionError):
        async with eio:
            raise ZeroDivisionError


async def test_handle_request_without_a_running_server_is_a_checkpoint() -> None:
    eio = AsyncServer()
    with checkpoints(), pytest.raises(EngineIOError):
        await eio.handle_request({"type": "http"}, _never_receive, _never_send)


# -- the async helpers (server and client) -------------------------------------------------


@pytest.mark.parametrize("helpers", [AsyncServer, AsyncClient])
async def test_sleep_is_a_checkpoint(autojump_clock: trio.testing.MockClock, helpers: type[Any]) -> None:
    eio = helpers()
    with checkpoints():
        await eio.sleep()
    with checkpoints():
        await eio.sleep(1.5)
    with checkpoints(), pytest.raises(ValueError, match="non-negative"):
        await eio.sleep(-1)
    with checkpoints(), pytest.raises(ValueError, match="NaN"):
        await eio.sleep(math.nan)
    assert trio.current_time() == 1.5


async def call_soon(function: Callable[[], object]) -> None:
    """Call ``function`` from another task, once the caller waits."""
    await trio.testing.wait_all_tasks_blocked()
    function()


async def test_queue_and_event_calls_are_checkpoints(autojump_clock: trio.testing.MockClock) -> None:
    eio = AsyncServer()
    queue = eio.create_queue(1)
    with checkpoints():
        await queue.put("a")  # room
    with checkpoints():
        assert await queue.get() == "a"  # an item waiting
    event = eio.create_event()
    event.set()
    with checkpoints():
        await event.wait()  # already set
    async with trio.open_nursery() as nursery:
        nursery.start_soon(queue.put, "b")
        with checkpoints():
            assert await queue.get() == "b"  # had to wait
    queue.put_nowait("c")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(queue.get)
        with checkpoints():
            await queue.put("d")  # full: had to wait for room
    assert queue.get_nowait() == "d"
    for _ in "abcd":
        queue.task_done()
    with checkpoints():
        await queue.join()  # nothing unfinished
    queue.put_nowait("e")
    assert queue.get_nowait() == "e"
    async with trio.open_nursery() as nursery:
        nursery.start_soon(call_soon, queue.task_done)
        with checkpoints():
            await queue.join()  # had to wait for task_done
    event.clear()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(call_soon, event.set)
        with checkpoints():
            assert await event.wait() is True  # cleared: had to wait


async def test_background_task_handles_are_checkpoints(autojump_clock: trio.testing.MockClock) -> None:
    async def fail() -> None:
        raise RuntimeError("boom")

    async def answer() -> int:
        return 42

    eio = AsyncServer()
    async with eio:
        done = eio.start_background_task(answer)
        failed = eio.start_background_task(fail)
        cancelled = eio.start_background_task(trio.sleep_forever)
        await trio.testing.wait_all_tasks_blocked()
        cancelled.cancel()
        await trio.testing.wait_all_tasks_blocked()
        assert done.done()
        assert failed.done()
        assert cancelled.done()
        for _ in range(2):  # awaiting again gives the same answer, and is a checkpoint again
            with checkpoints():
                assert await done == 42
            with checkpoints(), pytest.raises(RuntimeError, match="boom"):
                await failed.wait()
            with checkpoints():
                assert await cancelled is None
        pending = eio.start_background_task(trio.sleep, 1)
        with checkpoints():
            assert await pending is None  # had to wait


# -- AsyncClient ---------------------------------------------------------------------------


async def test_client_calls_before_connecting_are_checkpoints(autojump_clock: trio.testing.MockClock) -> None:
    client = AsyncClient()
    with checkpoints(), pytest.raises(RuntimeError):
        await client.connect(BASE_URL)  # outside `async with client:`
    with checkpoints(), pytest.raises(SocketIsClosedError):
        await client.send("x")
    with checkpoints(), pytest.raises(SocketIsClosedError):
        await client.receive()
    with checkpoints():
        await client.wait()
    with checkpoints():
        await client.disconnect()
    with checkpoints():
        async with client:
            with checkpoints(), pytest.raises(RuntimeError, match="already open"):
                await client.__aenter__()
            with checkpoints(), pytest.raises(ValueError, match="scheme"):
                await client.connect("ftp://testserver")
            with checkpoints(), pytest.raises(ValueError, match="No valid transports"):
                await client.connect(BASE_URL, transports=["carrier-pigeon"])


async def test_client_calls_while_connected_are_checkpoints(autojump_clock: trio.testing.MockClock) -> None:
    eio = AsyncServer()

    @eio.on("message")
    async def echo(sid: str, data: Any) -> None:
        await eio.send(sid, data)

    async with eio, open_client(eio) as client:
        with checkpoints():
            await client.connect(BASE_URL, transports=["websocket"])
        with checkpoints(), pytest.raises(ValueError, match="disconnected state"):
            await client.connect(BASE_URL)
        with checkpoints(), pytest.raises(TypeError):
            await client.send(object())  # type: ignore[arg-type]
        with checkpoints(), pytest.raises(LocalProtocolError):
            await client.send("\ud800")
        with checkpoints():
            await client.send("hello")
        await trio.testing.wait_all_tasks_blocked()
        with checkpoints():
            assert await client.receive() == "hello"  # waiting already
        with checkpoints():
            await client.disconnect()
        with checkpoints():
            await client.wait()  # over already
        with checkpoints(), pytest.raises(SocketIsClosedError):
            await client.receive()  # ended, and every message received
        with checkpoints(), pytest.raises(SocketIsClosedError):
            await client.send("too late")


async def test_a_refused_connect_is_a_checkpoint(autojump_clock: trio.testing.MockClock) -> None:
    eio = AsyncServer()
    eio.on("connect", lambda sid, environ: False)
    async with eio, open_client(eio) as client:
        with checkpoints(), pytest.raises(ConnectionError):
            await client.connect(BASE_URL)


async def test_client_disconnect_from_its_own_handler_is_a_checkpoint(autojump_clock: trio.testing.MockClock) -> None:
    """Called from a handler of the connection it ends, disconnect cannot wait: it still checkpoints."""
    eio = AsyncServer()
    checked: list[str] = []
    async with eio, open_client(eio) as client:

        @client.on("message")
        async def on_message(data: Any) -> None:
            with checkpoints():
                await client.disconnect()
            checked.append(data)

        await client.connect(BASE_URL, transports=["websocket"])
        await eio.send(next(iter(eio.sockets)), "bye")
        await client.wait()
    assert checked == ["bye"]


async def test_client_send_in_a_loop_lets_other_tasks_run(autojump_clock: trio.testing.MockClock) -> None:
    eio = AsyncServer()
    async with eio, open_client(eio) as client:
        await client.connect(BASE_URL, transports=["websocket"])
        turns = 0

        async def other() -> None:
            nonlocal turns
            while True:
                turns += 1
                await trio.lowlevel.checkpoint()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(other)
            for _ in range(100):
                await client.send("x")
            assert turns >= 99
            nursery.cancel_scope.cancel()


# -- ASGIApp -------------------------------------------------------------------------------


async def _never_receive() -> Message:
    raise AssertionError("not expected to receive")  # pragma: no cover


async def _never_send(message: Message) -> None:
    raise AssertionError("not expected to send")  # pragma: no cover


async def call(app: ASGIApp, scope: dict[str, Any], *messages: Message) -> list[Message]:
    """Call the app in this task, as a Trio ASGI server does: ``receive`` and ``send``
    are memory channels (each call a checkpoint, as hypercorn's)."""
    to_app, receive = trio.open_memory_channel[Message](math.inf)
    for message in messages:
        to_app.send_nowait(message)
    send, from_app = trio.open_memory_channel[Message](math.inf)
    await app(scope, receive.receive, send.send)
    send.close()
    return [message async for message in from_app]


def http_scope(path: str) -> dict[str, Any]:
    return {"type": "http", "method": "GET", "path": path, "query_string": b"", "headers": [], "root_path": ""}


async def test_asgi_app_routes_are_checkpoints(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<p>hi</p>")
    eio = AsyncServer()
    app = ASGIApp(eio, static_files={"/": str(tmp_path / "index.html")})
    request = {"type": "http.request", "body": b"", "more_body": False}
    with checkpoints():
        sent = await call(app, http_scope("/elsewhere"), request)
    assert sent[0]["status"] == 404
    with checkpoints():
        sent = await call(app, http_scope("/"), request)
    assert sent[0]["status"] == 200
    with checkpoints():
        sent = await call(app, {**http_scope("/elsewhere"), "type": "websocket"}, {"type": "websocket.connect"})
    assert sent == [{"type": "websocket.close", "code": 1000}]
    with checkpoints(), pytest.raises(EngineIOError):
        await call(app, http_scope("/engine.io/"), request)  # the server is not running
    to_app, receive = trio.open_memory_channel[Message](math.inf)
    send, from_app = trio.open_memory_channel[Message](math.inf)
    with checkpoints():
        await app.not_found(receive.receive, send.send)
    with checkpoints():
        await app.serve_static_file(
            {"filename": str(tmp_path / "gone.html"), "content_type": "text/html"}, receive.receive, send.send
        )
    send.close()
    assert [m["status"] async for m in from_app if m["type"] == "http.response.start"] == [404, 404]
    to_app.close()


async def test_asgi_lifespan_is_a_checkpoint(autojump_clock: trio.testing.MockClock) -> None:
    eio = AsyncServer()
    app = ASGIApp(eio)
    lifespan = {"type": "lifespan", "asgi": {"version": "3.0"}}
    with checkpoints():
        sent = await call(app, lifespan, {"type": "lifespan.startup"}, {"type": "lifespan.shutdown"})
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    async with eio:
        with checkpoints(), pytest.raises(RuntimeError, match="already running"):
            await call(app, lifespan, {"type": "lifespan.startup"})


# -- the regression: an application loop over a sid that is gone -------------------------------


@pytest.mark.parametrize("which", ["gone_sid", "closed_sid", "open_sid"])
async def test_sending_in_a_loop_to_any_sid_does_not_starve_the_server(
    autojump_clock: trio.testing.MockClock, instant_writes: None, which: str
) -> None:
    """``while True: await eio.send(gone, x)`` used to hold the run loop: nothing else ran again.

    The open session's writes complete without yielding (as hypercorn's fast path's do).
    """
    async with running_server() as server:
        sid = getattr(server, which)
        index = -1
        other_ran_at: list[int] = []

        async def other() -> None:
            other_ran_at.append(index)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(other)
            for index in range(10_000):  # noqa: B007  # other() reads it
                await server.eio.send(sid, "x")
        # It runs in the batch after the first send's scheduling point, which Trio may order
        # after this task's next step: during send 0 or send 1, not after 10,000 of them.
        assert other_ran_at in ([0], [1]), "the other task did not run during the loop"
