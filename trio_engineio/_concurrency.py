"""Trio versions of python-engineio's async helpers: background tasks, queues, events.

python-engineio hands out ``asyncio`` objects from ``start_background_task``,
``create_queue`` and ``create_event``; these are their Trio counterparts, with
the same method names, so handler code written against python-engineio runs.
"""

from __future__ import annotations

import collections
import contextvars
import enum
from collections.abc import Awaitable, Callable, Generator
from typing import Any, Generic, Literal, TypeVar

import outcome
import trio

from trio_engineio._logging import LoggerLike
from trio_engineio.exceptions import InvalidStateError, QueueEmpty, QueueFull, TaskCancelledError

__all__ = ["AsyncHelpers", "BackgroundTask", "Event", "Queue", "is_fatal", "start_background_task"]

T = TypeVar("T")

_FATAL = (KeyboardInterrupt, SystemExit, GeneratorExit, trio.Cancelled)


def is_fatal(exc: BaseException) -> bool:
    """Whether an exception raised by user code (a handler, a background task) must propagate.

    ``KeyboardInterrupt``, ``SystemExit``, ``GeneratorExit`` and ``trio.Cancelled`` (or a
    group holding one) go on up, as asyncio lets them; anything else, even another
    ``BaseException`` subclass, is logged and contained by the caller, so that one
    faulty handler cannot take the server (every session) or the client down.
    """
    if isinstance(exc, _FATAL):
        return True
    if isinstance(exc, Exception):
        return False  # an ExceptionGroup only ever holds Exceptions
    inner = getattr(exc, "exceptions", None)  # a BaseExceptionGroup (or its backport before 3.11)
    return isinstance(inner, tuple) and any(is_fatal(each) for each in inner)


class _TaskState(enum.Enum):
    PENDING = "pending"
    FINISHED = "finished"
    CANCELLED = "cancelled"


DoneCallback = Callable[["BackgroundTask"], object]
"""A callback of :meth:`BackgroundTask.add_done_callback`: called with the task."""


class BackgroundTask:
    """A handle on a task started with ``start_background_task``, with ``asyncio.Task``'s methods.

    ``await task`` waits for the task and returns its result (or raises its
    exception), as often as you like; after :meth:`cancel` it returns ``None``.
    :meth:`done`, :meth:`cancelled`, :meth:`result`, :meth:`exception`,
    :meth:`add_done_callback` and :meth:`remove_done_callback` mean what they mean
    on an ``asyncio.Task``, so code written for python-engineio (python-socketio's
    ``task.add_done_callback(tasks.discard)``) runs unchanged. Two differences, because
    this is Trio: a cancelled task's :meth:`result` raises
    :class:`~trio_engineio.TaskCancelledError` (not ``asyncio.CancelledError``), and
    ``await task`` returns ``None`` for it instead of raising.

    The task runs in the nursery of the server or client that started it; that
    nursery, not this handle, keeps it alive, and cancels it when it closes.

    Example::

        task = eio.start_background_task(ticker, sid)
        task.add_done_callback(lambda task: print("ticker over"))
        ...
        task.cancel()
        await task
        assert task.cancelled()
    """

    def __init__(self, name: str, logger: LoggerLike) -> None:
        self.name = name
        self._logger = logger
        self._scope = trio.CancelScope()
        self._done = trio.Event()
        self._state = _TaskState.PENDING
        self._cancel_requested = False
        self._cancel_message: str | None = None
        # How the function ended, once it has. Read through .value / .error, never unwrap():
        # an Outcome unwraps once, and this one is read by every await and result() call.
        self._outcome: outcome.Outcome[Any] | None = None
        self._callbacks: list[tuple[DoneCallback, contextvars.Context]] = []
        self._token = trio.lowlevel.current_trio_token()

    def __repr__(self) -> str:
        return f"<BackgroundTask {self.name!r} {self._state.value}>"

    def get_name(self) -> str:
        """The task's name: its function's qualified name (``asyncio.Task.get_name``).

        Returns:
            The name.

        Example::

            assert eio.start_background_task(ticker, sid).get_name() == "ticker"
        """
        return self.name

    def cancel(self, msg: str | None = None) -> bool:
        """Request cancellation of the task, as ``asyncio.Task.cancel`` does.

        Cancellation is delivered at the task's next checkpoint (a task cancelled
        before it started never runs); ``await task`` then returns ``None`` and
        :meth:`cancelled` is ``True``.

        Args:
            msg: a message for the :class:`~trio_engineio.TaskCancelledError` that
                :meth:`result` will raise.

        Returns:
            ``False`` if the task is already done (nothing to cancel), else ``True``.

        Example::

            if task.cancel():
                assert await task is None
        """
        if self._done.is_set():
            return False
        self._cancel_requested = True
        if msg is not None:
            self._cancel_message = msg
        self._scope.cancel()
        return True

    def done(self) -> bool:
        """Whether the task has finished (returned, raised, or was cancelled).

        Returns:
            ``True`` once the task is over.

        Example::

            if not task.done():
                task.cancel()
        """
        return self._done.is_set()

    def cancelled(self) -> bool:
        """Whether the task ended by cancellation (:meth:`cancel`, or the server or client closing).

        A method, as on an ``asyncio.Task``.

        Returns:
            ``True`` if it was cancelled.

        Example::

            task.cancel()
            await task
            assert task.cancelled()
        """
        return self._state is _TaskState.CANCELLED

    def result(self) -> Any:
        """The task's result, without waiting (``asyncio.Task.result``).

        Returns:
            What the task's function returned.

        Raises:
            TaskCancelledError: the task was cancelled.
            InvalidStateError: the task has not finished.
            Exception: whatever the task's function raised.

        Example::

            if task.done() and not task.cancelled() and task.exception() is None:
                print(task.result())
        """
        self._check_finished()
        if isinstance(self._outcome, outcome.Error):
            raise self._outcome.error
        return self._outcome.value if isinstance(self._outcome, outcome.Value) else None

    def exception(self) -> BaseException | None:
        """The exception the task raised, or ``None`` (``asyncio.Task.exception``).

        Returns:
            The exception, or ``None`` if the task returned.

        Raises:
            TaskCancelledError: the task was cancelled.
            InvalidStateError: the task has not finished.

        Example::

            task.add_done_callback(lambda t: t.cancelled() or print(t.exception()))
        """
        self._check_finished()
        return self._outcome.error if isinstance(self._outcome, outcome.Error) else None

    def add_done_callback(self, fn: DoneCallback, *, context: contextvars.Context | None = None) -> None:
        """Call ``fn(task)`` once the task is done, as ``asyncio.Task.add_done_callback`` does.

        The callback is scheduled when the task finishes (at once if it already has),
        runs soon after in the Trio run loop, never inside this call, in the
        ``contextvars`` context current here (or ``context``), and is then dropped,
        so the task keeps no reference to it. One that raises is logged.

        Args:
            fn: a plain (not async) callable taking the task.
            context: the context to run it in.

        Example::

            running = set()
            task = eio.start_background_task(job)
            running.add(task)
            task.add_done_callback(running.discard)  # python-socketio's way
        """
        if context is None:
            context = contextvars.copy_context()
        if self._done.is_set():
            self._token.run_sync_soon(self._call_back, fn, context)
        else:
            self._callbacks.append((fn, context))

    def remove_done_callback(self, fn: DoneCallback) -> int:
        """Remove every registration of ``fn`` not yet scheduled (``asyncio.Task.remove_done_callback``).

        Args:
            fn: the callback.

        Returns:
            How many were removed.

        Example::

            task.add_done_callback(report)
            assert task.remove_done_callback(report) == 1
        """
        kept = [(callback, context) for callback, context in self._callbacks if callback != fn]
        removed = len(self._callbacks) - len(kept)
        self._callbacks = kept
        return removed

    async def wait(self) -> Any:
        """Wait for the task to finish.

        ``await task`` does the same; both may be repeated, and give the same answer.

        Returns:
            What the task's function returned, or ``None`` if it was cancelled.

        Raises:
            Exception: whatever the task's function raised (it was logged when it
                happened, since nobody may ever wait for the task).

        Example::

            task = eio.start_background_task(compute, 42)
            result = await task.wait()  # or: await task
        """
        await self._done.wait()
        if self._state is _TaskState.CANCELLED:
            return None
        return self.result()

    def __await__(self) -> Generator[Any, None, Any]:
        """``await task`` is ``await task.wait()``.

        Example::

            result = await eio.start_background_task(compute, 42)
        """
        return self.wait().__await__()

    def _check_finished(self) -> None:
        if self._state is _TaskState.CANCELLED:
            raise TaskCancelledError(self._cancel_message or f"background task {self.name} was cancelled")
        if self._state is _TaskState.PENDING:
            raise InvalidStateError(f"background task {self.name} has not finished")

    async def _run(self, target: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> None:
        try:
            with self._scope:
                if self._cancel_requested:
                    return  # cancelled before it started: as in asyncio, it never runs
                try:
                    self._outcome = outcome.Value(await target(*args))
                except BaseException as exc:
                    if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                        self._outcome = outcome.Error(exc)  # recorded, then propagated, as asyncio does
                        self._state = _TaskState.FINISHED
                    if is_fatal(exc):
                        raise
                    # Logged because nobody may ever await the handle; kept for whoever does.
                    self._logger.exception("background task %s raised", self.name)
                    self._outcome = outcome.Error(exc)
                self._state = _TaskState.FINISHED
        finally:
            if self._state is _TaskState.PENDING:  # cancelled: by cancel() or by its nursery
                self._state = _TaskState.CANCELLED
            self._done.set()
            callbacks, self._callbacks = self._callbacks, []
            for fn, context in callbacks:
                self._token.run_sync_soon(self._call_back, fn, context)

    def _call_back(self, fn: DoneCallback, context: contextvars.Context) -> None:
        # Run by Trio's run loop, where an exception would crash the whole run: log it instead.
        try:
            context.run(fn, self)
        except BaseException as exc:
            if is_fatal(exc):
                raise
            self._logger.exception("done callback %r of background task %s raised", fn, self.name)


def start_background_task(
    nursery: trio.Nursery,
    logger: LoggerLike,
    target: Callable[..., Awaitable[Any]],
    *args: Any,
    **kwargs: Any,
) -> BackgroundTask:
    """Run ``target(*args, **kwargs)`` in ``nursery``; return its handle."""

    async def call(*call_args: Any) -> Any:
        return await target(*call_args, **kwargs)

    handle = BackgroundTask(getattr(target, "__qualname__", repr(target)), logger)
    nursery.start_soon(handle._run, call, args, name=handle.name)
    return handle


class Queue(Generic[T]):
    """A FIFO queue for Trio tasks with ``asyncio.Queue``'s methods and meanings.

    Besides ``put``/``get`` and their ``*_nowait`` forms, it counts unfinished
    items as asyncio's does: each put adds one, :meth:`task_done` removes one, and
    :meth:`join` waits until none is left.

    Args:
        maxsize: the most items it holds; ``0`` or less means unbounded, as in asyncio.

    Example::

        queue = eio.create_queue()
        await queue.put("x")
        assert await queue.get() == "x"
        queue.task_done()
        await queue.join()  # every item put was processed
    """

    def __init__(self, maxsize: int = 0) -> None:
        self.maxsize = maxsize
        self._items: collections.deque[T] = collections.deque()
        self._getters = trio.lowlevel.ParkingLot()
        self._putters = trio.lowlevel.ParkingLot()
        self._unfinished = 0
        self._finished = trio.Event()
        self._finished.set()

    def __repr__(self) -> str:
        return f"<Queue maxsize={self.maxsize} qsize={self.qsize()} unfinished={self._unfinished}>"

    async def put(self, item: T) -> None:
        """Add an item, waiting while the queue is full.

        Args:
            item: the item.

        Example::

            await queue.put({"job": 1})
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        while self.full():
            await self._putters.park()
        self.put_nowait(item)
        await trio.lowlevel.cancel_shielded_checkpoint()  # the item is in: a cancellation must not say otherwise

    def put_nowait(self, item: T) -> None:
        """Add an item without waiting.

        Args:
            item: the item.

        Raises:
            QueueFull: the queue is full.

        Example::

            queue.put_nowait("x")
        """
        if self.full():
            raise QueueFull("the queue is full")
        self._items.append(item)
        if self._unfinished == 0:
            self._finished = trio.Event()
        self._unfinished += 1
        self._getters.unpark()

    async def get(self) -> T:
        """Remove and return the oldest item, waiting while the queue is empty.

        Returns:
            The item.

        Example::

            item = await queue.get()
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        while not self._items:
            await self._getters.park()
        item = self.get_nowait()
        await trio.lowlevel.cancel_shielded_checkpoint()  # the item is out: it must reach the caller
        return item

    def get_nowait(self) -> T:
        """Remove and return the oldest item without waiting.

        Returns:
            The item.

        Raises:
            QueueEmpty: the queue is empty.

        Example::

            try:
                item = queue.get_nowait()
            except trio_engineio.QueueEmpty:
                item = None
        """
        if not self._items:
            raise QueueEmpty("the queue is empty")
        item = self._items.popleft()
        self._putters.unpark()
        return item

    def task_done(self) -> None:
        """Say that an item taken with :meth:`get` has been processed (``asyncio.Queue.task_done``).

        When every item ever put has been marked so, :meth:`join` returns.

        Raises:
            ValueError: called more times than items were put.

        Example::

            item = await queue.get()
            try:
                await process(item)
            finally:
                queue.task_done()
        """
        if self._unfinished <= 0:
            raise ValueError("task_done() called too many times")
        self._unfinished -= 1
        if self._unfinished == 0:
            self._finished.set()

    async def join(self) -> None:
        """Wait until every item put has been marked with :meth:`task_done` (``asyncio.Queue.join``).

        Returns at once (after a checkpoint) when nothing is unfinished.

        Example::

            for job in jobs:
                queue.put_nowait(job)
            await queue.join()  # the workers have processed them all
        """
        await self._finished.wait()

    def qsize(self) -> int:
        """The number of items waiting.

        Returns:
            The count.

        Example::

            queue.put_nowait("x")
            assert queue.qsize() == 1
        """
        return len(self._items)

    def empty(self) -> bool:
        """Whether no item is waiting.

        Returns:
            ``True`` when :meth:`qsize` is 0.

        Example::

            while not queue.empty():
                handle(queue.get_nowait())
        """
        return not self._items

    def full(self) -> bool:
        """Whether the queue holds ``maxsize`` items (never, for an unbounded queue).

        Returns:
            ``True`` when :meth:`put` would wait.

        Example::

            if not queue.full():
                queue.put_nowait("x")
        """
        return 0 < self.maxsize <= len(self._items)


class Event:
    """An event for Trio tasks with ``asyncio.Event``'s methods and meanings.

    Unlike ``trio.Event`` it can be reset with :meth:`clear`, and :meth:`wait`
    returns ``True``, as asyncio's does.

    Example::

        ready = eio.create_event()
        ready.set()
        assert await ready.wait() is True
        ready.clear()
        assert not ready.is_set()
    """

    def __init__(self) -> None:
        self._event = trio.Event()

    def __repr__(self) -> str:
        return f"<Event {'set' if self.is_set() else 'unset'}>"

    def is_set(self) -> bool:
        """Whether the event is set.

        Returns:
            ``True`` after :meth:`set`, until :meth:`clear`.

        Example::

            if not ready.is_set():
                await ready.wait()
        """
        return self._event.is_set()

    def set(self) -> None:
        """Set the event: every task waiting wakes up, and later waits return at once.

        Example::

            ready.set()
        """
        self._event.set()

    def clear(self) -> None:
        """Reset the event: later :meth:`wait` calls block until the next :meth:`set`.

        Tasks already woken by an earlier :meth:`set` are not affected.

        Example::

            ready.clear()
        """
        if self._event.is_set():
            self._event = trio.Event()

    async def wait(self) -> Literal[True]:
        """Wait until the event is set (a checkpoint even when it already is).

        Returns:
            ``True``, as ``asyncio.Event.wait`` does.

        Example::

            await ready.wait()
        """
        await self._event.wait()
        return True


class AsyncHelpers:
    """python-engineio's async helpers, shared by :class:`~trio_engineio.AsyncServer` and
    :class:`~trio_engineio.AsyncClient`: Trio versions with the same names.
    """

    async def sleep(self, seconds: float = 0) -> None:
        """Sleep: ``trio.sleep``, for code written against python-engineio.

        Args:
            seconds: how long.

        Example::

            await eio.sleep(1)
        """
        if not seconds >= 0:  # negative or NaN: trio.sleep raises before its checkpoint
            await trio.lowlevel.checkpoint()
        await trio.sleep(seconds)

    def create_queue(self, maxsize: int = 0) -> Queue[Any]:
        """A Trio-backed queue with ``asyncio.Queue``'s method names.

        Args:
            maxsize: the most items it holds; ``0`` (the default) for no limit.

        Returns:
            A :class:`Queue`.

        Example::

            queue = eio.create_queue()
            await queue.put("job")
            job = await queue.get()
        """
        return Queue(maxsize)

    def get_queue_empty_exception(self) -> type[QueueEmpty]:
        """The exception ``get_nowait`` raises on an empty queue from :meth:`create_queue`.

        Returns:
            :class:`~trio_engineio.exceptions.QueueEmpty`.

        Example::

            try:
                item = queue.get_nowait()
            except eio.get_queue_empty_exception():
                item = None
        """
        return QueueEmpty

    def create_event(self) -> Event:
        """Create an event with ``asyncio.Event``'s methods.

        Returns:
            An :class:`Event` (``set()``, ``clear()``, ``is_set()``, ``await wait()``).

        Example::

            ready = eio.create_event()
            ready.set()
            await ready.wait()
        """
        return Event()
