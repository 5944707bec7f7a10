"""Calling the application's event handlers: shared by the server and the client.

Handlers may be plain functions or coroutine functions; python-engineio passes a
different number of arguments to some events depending on what the handler takes,
so the arity is read from the handler's signature (never by retrying on TypeError,
which would call it twice and hide its own bugs).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

__all__ = ["accepts_arguments", "call_handler"]


def accepts_arguments(handler: Callable[..., Any], count: int, *, unknown: bool = False) -> bool:
    """Whether ``handler`` takes ``count`` positional arguments.

    Args:
        handler: the callable.
        count: how many positional arguments it would be given.
        unknown: the answer when the signature cannot be read (some builtins).

    Example:
        >>> accepts_arguments(lambda sid, reason: None, 2)
        True
        >>> accepts_arguments(lambda sid: None, 2)
        False
    """
    try:
        signature = inspect.signature(handler)
    except (TypeError, ValueError):
        return unknown
    try:
        signature.bind(*range(count))
    except TypeError:
        return False
    return True


async def call_handler(handler: Callable[..., Any], *args: Any) -> Any:
    """Call a plain or async handler and return its result."""
    result = handler(*args)
    if inspect.isawaitable(result):
        result = await result
    return result
