"""python-engineio parity in behaviour: code written for python-engineio that used to break here.

:mod:`test_compat` compares names and signatures by introspection; this suite runs
what python-engineio's users (and python-socketio) do with the objects they get:
the background task handle used as an ``asyncio.Task``, ``create_event()`` and
``create_queue()`` used as asyncio's, a ``logger=`` that is not a
``logging.Logger``, ``ConnectionError``'s ``args``, exceptions made without a
message, and an ``ASGIApp`` mounted at the root. Where Trio makes asyncio's answer
wrong, the test pins the Trio answer that ``docs/migrating.rst`` documents.

Everything runs in memory on ``autojump_clock``.
"""

from __future__ import annotations

import contextvars
import gc
import logging
import weakref
from typing import Any

import engineio
import pytest
import trio
import trio.testing

import trio_engineio
from trio_engineio import (
    ASGIApp,
    AsyncClient,
    AsyncServer,
    ContentTooLongError,
    InvalidStateError,
    RemoteProtocolError,
    TaskCancelledError,
    UnknownPacketError,
)
from trio_engineio._concurrency import BackgroundTask
from trio_engineio.testing import BASE_URL, open_client, open_http_client, open_websocket

# -- the background task handle, as an asyncio.Task --------------------------------------------


async def answer() -> int:
    await trio.sleep(1)
    return 42


async def fail() -> None:
    await trio.sleep(1)
    raise RuntimeError("boom")


async def test_a_task_answers_asyncio_tasks_questions_at_each_stage(autojump_clock: trio.testing.MockClock) -> None:
    async with AsyncServer() as eio:
        task = eio.start_background_task(answer)
        assert task.get_name() == "answer"
        assert not task.done()
        assert not task.cancelled()  # a method, as asyncio's: the property used to be always truthy when called
        with pytest.raises(InvalidStateError):
            task.result()
        with pytest.raises(InvalidStateError):
            task.exception()
        await trio.sleep(1)
        await trio.testing.wait_all_tasks_blocked()  # it woke at the same instant
        assert task.done()
        assert not task.cancelled()
        assert task.result() == 42
        assert task.exception() is None
        assert task.cancel() is False  # done: nothing to cancel


async def test_a_failed_task_keeps_its_exception_for_every_question(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with AsyncServer() as eio:
        task = eio.start_background_task(fail)
        await trio.sleep(1)
        await trio.testing.wait_all_tasks_blocked()
        error = task.exception()
        assert isinstance(error, RuntimeError)
        with pytest.raises(RuntimeError, match="boom") as raised:
            task.result()
        assert raised.value is error
    assert "background task fail raised" in caplog.text


async def test_awaiting_a_task_twice_gives_the_same_answer(autojump_clock: trio.testing.MockClock) -> None:
    """It raised ``outcome.AlreadyUsedError`` the second time."""
    async with AsyncServer() as eio:
        done = eio.start_background_task(answer)
        failed = eio.start_background_task(fail)
        assert await done == 42
        assert await done == 42
        assert await done.wait() == 42
        for _ in range(3):
            with pytest.raises(RuntimeError, match="boom"):
                await failed


async def test_a_cancelled_task_returns_none_when_awaited_and_raises_from_result(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with AsyncServer() as eio:
        task = eio.start_background_task(trio.sleep_forever)
        await trio.sleep(1)
        assert task.cancel("not needed") is True
        assert task.cancel() is True  # still pending: asyncio says True again
        assert await task is None  # the Trio answer (asyncio raises CancelledError)
        assert await task is None
        assert task.cancelled()
        assert task.cancel() is False
        with pytest.raises(TaskCancelledError, match="not needed"):
            task.result()
        with pytest.raises(TaskCancelledError):
            task.exception()
        assert trio.current_time() == 1


async def test_a_task_cancelled_before_it_starts_never_runs(autojump_clock: trio.testing.MockClock) -> None:
    ran: list[str] = []

    async def work() -> None:
        ran.append("ran")  # no checkpoint before this: only not starting can keep it from running

    async with AsyncServer() as eio:
        task = eio.start_background_task(work)
        task.cancel()
        assert await task is None
        assert task.cancelled()
    assert ran == []


async def test_shutdown_cancels_tasks_and_runs_their_callbacks(autojump_clock: trio.testing.MockClock) -> None:
    seen: list[bool] = []
    async with AsyncServer() as eio:
        task = eio.start_background_task(trio.sleep_forever)
        task.add_done_callback(lambda task: seen.append(task.cancelled()))
    await trio.testing.wait_all_tasks_blocked()
    assert task.cancelled()
    assert seen == [True]


async def test_python_socketios_pattern_drops_each_task_when_it_ends(autojump_clock: trio.testing.MockClock) -> None:
    """python-socketio keeps each handler's task in a set until ``add_done_callback(set.discard)``."""
    running: set[BackgroundTask] = set()
    async with AsyncServer() as eio:
        for _ in range(3):
            task = eio.start_background_task(answer)
            running.add(task)
            task.add_done_callback(running.discard)
        await trio.sleep(1)
        await trio.testing.wait_all_tasks_blocked()
        assert running == set()


async def test_done_callbacks_run_soon_once_each_in_order_with_the_task(
    autojump_clock: trio.testing.MockClock,
) -> None:
    calls: list[tuple[str, BackgroundTask]] = []
    async with AsyncServer() as eio:
        task = eio.start_background_task(answer)
        task.add_done_callback(lambda t: calls.append(("first", t)))
        task.add_done_callback(lambda t: calls.append(("second", t)))
        await task
        await trio.testing.wait_all_tasks_blocked()
        assert calls == [("first", task), ("second", task)]
        task.add_done_callback(lambda t: calls.append(("late", t)))
        assert calls[-1][0] == "second"  # never inside add_done_callback, as in asyncio
        await trio.testing.wait_all_tasks_blocked()
        assert calls[-1] == ("late", task)  # soon: Trio's run_sync_soon, asyncio's call_soon
        await trio.sleep(5)
        assert len(calls) == 3  # each once


async def test_a_task_keeps_no_reference_to_its_callbacks_once_they_ran(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """No leak: a finished task that is kept (python-socketio keeps them) holds nothing of its callbacks."""

    class Callback:
        def __init__(self) -> None:
            self.calls = 0

        def __call__(self, task: BackgroundTask) -> None:
            self.calls += 1

    async with AsyncServer() as eio:
        task = eio.start_background_task(answer)
        before, after = Callback(), Callback()
        task.add_done_callback(before)
        refs = [weakref.ref(before)]
        await task
        task.add_done_callback(after)
        refs.append(weakref.ref(after))
        await trio.testing.wait_all_tasks_blocked()
        assert (before.calls, after.calls) == (1, 1)
        del before, after
        gc.collect()
        assert [ref() for ref in refs] == [None, None]
        assert task.result() == 42


async def test_remove_done_callback_counts_and_unregisters(autojump_clock: trio.testing.MockClock) -> None:
    calls: list[str] = []

    def report(task: BackgroundTask) -> None:
        calls.append("report")

    async with AsyncServer() as eio:
        task = eio.start_background_task(answer)
        task.add_done_callback(report)
        task.add_done_callback(report)
        task.add_done_callback(lambda t: calls.append("other"))
        assert task.remove_done_callback(report) == 2
        assert task.remove_done_callback(report) == 0
        await task
        await trio.testing.wait_all_tasks_blocked()
    assert calls == ["other"]


async def test_a_failing_callback_is_logged_and_harms_nothing(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []

    def broken(task: BackgroundTask) -> None:
        raise ValueError("callback bug")

    async with AsyncServer() as eio:
        task = eio.start_background_task(answer)
        task.add_done_callback(broken)
        task.add_done_callback(lambda t: calls.append("next"))
        await task
        await trio.testing.wait_all_tasks_blocked()
        assert calls == ["next"]
        assert eio.running
    assert "done callback" in caplog.text
    assert "callback bug" in caplog.text


async def test_callbacks_run_in_the_context_of_their_registration(autojump_clock: trio.testing.MockClock) -> None:
    request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="none")
    seen: list[str] = []
    async with AsyncServer() as eio:
        task = eio.start_background_task(answer)
        request_id.set("r-1")
        task.add_done_callback(lambda t: seen.append(request_id.get()))
        chosen = contextvars.copy_context()
        chosen.run(request_id.set, "r-2")
        task.add_done_callback(lambda t: seen.append(request_id.get()), context=chosen)
        await task
        await trio.testing.wait_all_tasks_blocked()
    assert seen == ["r-1", "r-2"]


async def test_the_clients_background_tasks_are_the_same_handles(autojump_clock: trio.testing.MockClock) -> None:
    seen: list[int] = []
    async with AsyncClient() as client:
        task = client.start_background_task(answer)
        task.add_done_callback(lambda t: seen.append(t.result()))
        assert await task == 42
        await trio.testing.wait_all_tasks_blocked()
    assert seen == [42]


# -- create_event(), as an asyncio.Event ----------------------------------------------------------


async def test_the_event_can_be_cleared_and_wait_returns_true(autojump_clock: trio.testing.MockClock) -> None:
    event = AsyncServer().create_event()
    woken: list[float] = []

    async def waiter() -> None:
        assert await event.wait() is True
        woken.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.sleep(1)
        event.set()
        event.clear()  # the waiter was woken by set(): clear() does not take that back
        await trio.testing.wait_all_tasks_blocked()
        assert woken == [1]
        assert not event.is_set()
        nursery.start_soon(waiter)
        await trio.sleep(1)
        assert woken == [1]  # cleared: waits again
        event.set()
    assert woken == [1, 2]
    assert event.is_set()
    assert await event.wait() is True


# -- create_queue(), as an asyncio.Queue -------------------------------------------------------------


async def test_the_queue_has_full(autojump_clock: trio.testing.MockClock) -> None:
    bounded = AsyncServer().create_queue(2)
    unbounded = AsyncServer().create_queue()
    for item in range(2):
        assert not bounded.full()
        bounded.put_nowait(item)
        unbounded.put_nowait(item)
    assert bounded.full()
    assert not unbounded.full()


async def test_join_waits_until_every_item_is_marked_done(autojump_clock: trio.testing.MockClock) -> None:
    queue = AsyncClient().create_queue()
    await queue.join()  # nothing unfinished: returns at once
    processed: list[tuple[str, float]] = []

    async def worker() -> None:
        while True:
            item = await queue.get()
            await trio.sleep(1)
            processed.append((item, trio.current_time()))
            queue.task_done()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(worker)
        for item in "abc":
            await queue.put(item)
        await queue.join()
        assert trio.current_time() == 3
        assert processed == [("a", 1), ("b", 2), ("c", 3)]
        nursery.cancel_scope.cancel()
    with pytest.raises(ValueError, match="too many times"):
        queue.task_done()


async def test_put_waits_for_room_and_get_for_an_item(autojump_clock: trio.testing.MockClock) -> None:
    queue = AsyncServer().create_queue(1)
    got: list[tuple[str, float]] = []

    async def consumer() -> None:
        for _ in range(3):
            await trio.sleep(1)
            got.append((await queue.get(), trio.current_time()))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consumer)
        for item in "xyz":
            await queue.put(item)
        assert trio.current_time() == 2  # "z" waited for the room "y" left at 2
    assert got == [("x", 1), ("y", 2), ("z", 3)]


async def test_a_cancelled_get_or_put_loses_nothing(autojump_clock: trio.testing.MockClock) -> None:
    queue = AsyncServer().create_queue(1)
    with trio.move_on_after(1):
        await queue.get()
    queue.put_nowait("kept")
    with trio.move_on_after(1):
        await queue.put("never")
    assert queue.qsize() == 1
    assert await queue.get() == "kept"
    assert queue.empty()


# -- logger= ---------------------------------------------------------------------------------------


class StructlogLike:
    """A logger that is not a ``logging.Logger``: structlog's shape (methods, no level)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def _log(self, level: str, msg: str, *args: Any, **kwargs: Any) -> None:
        self.events.append((level, msg % args if args else msg))

    def debug(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self._log("debug", msg, *args, **kwargs)

    def info(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self._log("info", msg, *args, **kwargs)

    def warning(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self._log("warning", msg, *args, **kwargs)

    def error(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self._log("error", msg, *args, **kwargs)

    def exception(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self._log("exception", msg, *args, **kwargs)


async def test_the_server_logs_to_a_logger_that_is_not_a_logging_logger(autojump_clock: trio.testing.MockClock) -> None:
    logger = StructlogLike()
    eio = AsyncServer(logger=logger)
    assert eio.logger is logger
    async with eio:
        await eio.send("no-such-sid", "x")
        task = eio.start_background_task(fail)
        with pytest.raises(RuntimeError):
            await task
    assert ("warning", "Cannot send to sid no-such-sid") in logger.events
    assert ("exception", "background task fail raised") in logger.events


async def test_the_server_logs_through_a_logger_adapter(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    adapter = logging.LoggerAdapter(logging.getLogger("myapp.engineio"), {"tenant": "acme"})
    eio = AsyncServer(logger=adapter)
    assert eio.logger is adapter
    async with eio:
        await eio.send("no-such-sid", "x")
    [record] = [record for record in caplog.records if record.name == "myapp.engineio"]
    assert record.getMessage() == "Cannot send to sid no-such-sid"
    assert record.tenant == "acme"  # type: ignore[attr-defined]  # the adapter's extra


async def test_the_client_logs_to_a_logger_that_is_not_a_logging_logger(
    autojump_clock: trio.testing.MockClock,
) -> None:
    logger = StructlogLike()
    eio = AsyncServer()
    async with eio, open_client(eio, logger=logger) as client:
        assert client.logger is logger
        await client.connect(BASE_URL, transports=["websocket"])
        await client.disconnect()
    assert any(level == "info" for level, _ in logger.events)


@pytest.mark.parametrize("cls", [AsyncServer, AsyncClient])
def test_a_logger_without_the_logging_methods_is_a_type_error(cls: type[Any]) -> None:
    with pytest.raises(TypeError, match="has no debug, info, warning, error, exception"):
        cls(logger=print)
    with pytest.raises(TypeError, match="logger must be"):
        cls(logger="trio_engineio")


def test_true_and_false_choose_the_trio_engineio_loggers() -> None:
    """Renamed from ``engineio.server``/``engineio.client`` on purpose (see docs/migrating.rst)."""
    assert AsyncServer(logger=False).logger is logging.getLogger("trio_engineio.server")
    assert AsyncClient(logger=False).logger is logging.getLogger("trio_engineio.client")


# -- exceptions --------------------------------------------------------------------------------------


def test_connection_error_takes_the_body_second_as_python_engineio_raises_it() -> None:
    body = {"code": 4, "message": "Forbidden"}
    theirs = engineio.exceptions.ConnectionError("Unexpected status code 403 in server response", body)
    ours = trio_engineio.ConnectionError("Unexpected status code 403 in server response", body)
    assert ours.args == theirs.args
    assert ours.args[1] is body
    assert ours.error_body is body
    assert str(ours) == "Unexpected status code 403 in server response"
    assert trio_engineio.ConnectionError("Connection error").args == ("Connection error",)
    assert trio_engineio.ConnectionError("refused", None, status_code=401).args == ("refused", None)
    assert trio_engineio.ConnectionError().args == ("",)


async def test_a_refused_connect_puts_the_servers_body_in_args_1(autojump_clock: trio.testing.MockClock) -> None:
    """python-socketio reads ``exc.args[1]`` for its ``connect_error`` event."""
    eio = AsyncServer()
    eio.on("connect", lambda sid, environ: False)
    async with eio, open_client(eio) as client:
        with pytest.raises(trio_engineio.ConnectionError) as refused:
            await client.connect(BASE_URL)
    assert refused.value.status_code == 401
    assert len(refused.value.args) == 2
    assert refused.value.args[1] == refused.value.error_body is not None


@pytest.mark.parametrize("cls", [UnknownPacketError, ContentTooLongError])
def test_protocol_errors_can_be_raised_without_a_message(cls: type[RemoteProtocolError]) -> None:
    with pytest.raises(cls) as raised:
        raise cls()
    assert str(raised.value) == raised.value.message == cls.default_message != ""
    assert isinstance(raised.value, RemoteProtocolError)
    assert str(cls("mine")) == "mine"


def test_content_too_long_without_a_message_keeps_its_status() -> None:
    assert ContentTooLongError().http_status == 413
    assert UnknownPacketError().http_status == 400


# -- ASGIApp(engineio_path=...) ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["", "/", "engine.io", "/engine.io", "engine.io/", "/engine.io/", "/sio/", "a/b"])
def test_engineio_path_is_normalised_as_python_engineio_does(path: str) -> None:
    eio = AsyncServer()
    assert ASGIApp(eio, engineio_path=path).engineio_path == engineio.ASGIApp(None, engineio_path=path).engineio_path


@pytest.mark.parametrize("path", ["", "/"])
async def test_an_app_at_the_root_routes_every_request_to_the_server(
    autojump_clock: trio.testing.MockClock, path: str
) -> None:
    """It normalised to ``'//'`` and every request was a 404."""
    eio = AsyncServer()
    app = ASGIApp(eio, engineio_path=path)
    async with eio, open_http_client(app) as http:
        for url in ("/", "/anything/"):
            response = await http.get(url, params={"EIO": "4", "transport": "polling"})
            assert response.status_code == 200, url
            assert response.text.startswith("0{")
        async with open_websocket(app, path="/") as ws:
            opened = await ws.receive()
            assert isinstance(opened, str)
            assert opened.startswith("0{")
        async with open_client(app) as client:
            await client.connect(BASE_URL, engineio_path=path)
            assert client.sid is not None
