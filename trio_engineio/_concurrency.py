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

from trio_engineio.exceptions import QueueEmpty

__all__ = ["BackgroundTask", "Queue", "start_background_task"]

T = TypeVar("T")


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
        """Cancel the task (no effect once it has finished)."""
        self._scope.cancel()

    def done(self) -> bool:
        """Whether the task has finished."""
        return self._done.is_set()

    @property
    def cancelled(self) -> bool:
        """Whether the task ended by cancellation (:meth:`cancel`, or the server shutting down)."""
        # Not just cancelled_caught: when shutdown cancels the task and the server's
        # nursery in the same instant, the outer scope is the one that catches it.
        return self._scope.cancelled_caught or (self._done.is_set() and self._outcome is None)

    async def wait(self) -> Any:
        """Wait for the task; return its result or raise its exception."""
        await self._done.wait()
        if self._outcome is None:
            return None
        return self._outcome.unwrap()

    def __await__(self) -> Any:
        return self.wait().__await__()

    async def _run(self, target: Callable[..., Awaitable[Any]], args: tuple[Any, ...], logger: logging.Logger) -> None:
        try:
            with self._scope:
                try:
                    self._outcome = outcome.Value(await target(*args))
                except Exception as exc:
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
        """Add an item, waiting while the queue is full."""
        await self._send.send(item)

    def put_nowait(self, item: T) -> None:
        """Add an item.

        Raises:
            trio.WouldBlock: the queue is full.
        """
        self._send.send_nowait(item)

    async def get(self) -> T:
        """Remove and return the oldest item, waiting while the queue is empty."""
        return await self._receive.receive()

    def get_nowait(self) -> T:
        """Remove and return the oldest item.

        Raises:
            QueueEmpty: the queue is empty.
        """
        try:
            return self._receive.receive_nowait()
        except trio.WouldBlock:
            raise QueueEmpty("the queue is empty") from None

    def qsize(self) -> int:
        """The number of items waiting."""
        return self._send.statistics().current_buffer_used

    def empty(self) -> bool:
        """Whether no item is waiting."""
        return self.qsize() == 0
