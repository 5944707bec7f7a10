"""Trio versions of python-engineio's async helpers: background tasks, queues, events.

python-engineio hands out ``asyncio`` objects from ``start_background_task``,
``create_queue`` and ``create_event``; these are their Trio counterparts, with
the same method names, so handler code written against python-engineio runs.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import outcome
import trio

from trio_engineio.exceptions import QueueEmpty, QueueFull

__all__ = ["AsyncHelpers", "BackgroundTask", "Queue", "is_fatal", "start_background_task"]

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


class BackgroundTask:
    """A handle on a task started with ``start_background_task``.

    ``await handle`` waits for the task and returns its result (or raises its
    exception); ``handle.cancel()`` cancels it, after which awaiting it
    returns ``None``.

    Example::

        task = eio.start_background_task(ticker, sid)
        ...
        task.cancel()
        await task
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._scope = trio.CancelScope()
        self._done = trio.Event()
        self._outcome: outcome.Outcome[Any] | None = None

    def cancel(self) -> None:
        """Cancel the task (no effect once it has finished).

        Cancellation is delivered at the task's next checkpoint; :meth:`wait` then
        returns ``None``.

        Example::

            task.cancel()
            assert await task is None
        """
        self._scope.cancel()

    def done(self) -> bool:
        """Whether the task has finished (returned, raised, or was cancelled).

        Returns:
            ``True`` once the task is over.

        Example::

            if not task.done():
                task.cancel()
        """
        return self._done.is_set()

    @property
    def cancelled(self) -> bool:
        """Whether the task ended by cancellation (:meth:`cancel`, or the server shutting down).

        Example::

            task.cancel()
            await task
            assert task.cancelled
        """
        # Not just cancelled_caught: when shutdown cancels the task and the server's
        # nursery in the same instant, the outer scope is the one that catches it.
        return self._scope.cancelled_caught or (self._done.is_set() and self._outcome is None)

    async def wait(self) -> Any:
        """Wait for the task to finish.

        ``await task`` does the same.

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
        if self._outcome is None:
            return None
        return self._outcome.unwrap()

    def __await__(self) -> Any:
        """``await task`` is ``await task.wait()``.

        Example::

            result = await eio.start_background_task(compute, 42)
        """
        return self.wait().__await__()

    async def _run(self, target: Callable[..., Awaitable[Any]], args: tuple[Any, ...], logger: logging.Logger) -> None:
        try:
            with self._scope:
                try:
                    self._outcome = outcome.Value(await target(*args))
                except BaseException as exc:
                    if is_fatal(exc):
                        raise
                    # Logged because nobody may ever await the handle; kept for whoever does.
                    logger.exception("background task %s raised", self.name)
                    self._outcome = outcome.Error(exc)
        finally:
            self._done.set()


def start_background_task(
    nursery: trio.Nursery,
    logger: logging.Logger,
    target: Callable[..., Awaitable[Any]],
    *args: Any,
    **kwargs: Any,
) -> BackgroundTask:
    """Run ``target(*args, **kwargs)`` in ``nursery``; return its handle."""

    async def call(*call_args: Any) -> Any:
        return await target(*call_args, **kwargs)

    handle = BackgroundTask(getattr(target, "__qualname__", repr(target)))
    nursery.start_soon(handle._run, call, args, logger, name=handle.name)
    return handle


class Queue(Generic[T]):
    """A FIFO queue on a Trio memory channel, with ``asyncio.Queue``'s method names.

    Args:
        maxsize: the most items it holds; ``0`` or less means unbounded, as in asyncio.

    Example::

        queue = eio.create_queue()
        await queue.put("x")
        assert await queue.get() == "x"
    """

    def __init__(self, maxsize: int = 0) -> None:
        self.maxsize = maxsize
        buffer: float = maxsize if maxsize > 0 else math.inf
        self._send, self._receive = trio.open_memory_channel[T](buffer)

    async def put(self, item: T) -> None:
        """Add an item, waiting while the queue is full.

        Args:
            item: the item.

        Example::

            await queue.put({"job": 1})
        """
        await self._send.send(item)

    def put_nowait(self, item: T) -> None:
        """Add an item without waiting.

        Args:
            item: the item.

        Raises:
            QueueFull: the queue is full.

        Example::

            queue.put_nowait("x")
        """
        try:
            self._send.send_nowait(item)
        except trio.WouldBlock:
            raise QueueFull("the queue is full") from None

    async def get(self) -> T:
        """Remove and return the oldest item, waiting while the queue is empty.

        Returns:
            The item.

        Example::

            item = await queue.get()
        """
        return await self._receive.receive()

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
        try:
            return self._receive.receive_nowait()
        except trio.WouldBlock:
            raise QueueEmpty("the queue is empty") from None

    def qsize(self) -> int:
        """The number of items waiting.

        Returns:
            The count.

        Example::

            queue.put_nowait("x")
            assert queue.qsize() == 1
        """
        return self._send.statistics().current_buffer_used

    def empty(self) -> bool:
        """Whether no item is waiting.

        Returns:
            ``True`` when :meth:`qsize` is 0.

        Example::

            while not queue.empty():
                handle(queue.get_nowait())
        """
        return self.qsize() == 0


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

    def create_event(self) -> trio.Event:
        """Create an event.

        Returns:
            A ``trio.Event`` (``set()``, ``is_set()``, ``await wait()``).

        Example::

            ready = eio.create_event()
            ready.set()
            await ready.wait()
        """
        return trio.Event()
