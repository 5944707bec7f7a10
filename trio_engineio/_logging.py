"""The ``logger=`` argument of the server and the client, read as python-engineio reads it.

``True`` or ``False`` choose the default logger (``trio_engineio.server`` or
``trio_engineio.client``); any other object is the logger, as long as it has
the methods the library calls: a :class:`logging.Logger`, a
:class:`logging.LoggerAdapter`, a structlog logger.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol, cast

__all__ = ["LOGGER_METHODS", "LoggerLike", "given_logger", "resolve_logger"]

LOGGER_METHODS = ("debug", "info", "warning", "error", "exception")
"""The methods a ``logger=`` object must have: those the library calls."""


class LoggerLike(Protocol):
    """What the library needs of a logger: ``logging.Logger``'s five reporting methods."""

    def debug(self, msg: str, /, *args: Any) -> object: ...

    def info(self, msg: str, /, *args: Any) -> object: ...

    def warning(self, msg: str, /, *args: Any) -> object: ...

    def error(self, msg: str, /, *args: Any) -> object: ...

    def exception(self, msg: str, /, *args: Any) -> object: ...


def given_logger(logger: object) -> LoggerLike | None:
    """The logger given as ``logger=``, or ``None`` when the default one is asked for.

    Args:
        logger: ``True``, ``False``, ``None`` (the default logger) or a logger.

    Returns:
        The logger, or ``None`` for ``True``, ``False`` and ``None``.

    Raises:
        TypeError: an object without one of :data:`LOGGER_METHODS` (python-engineio
            would take it and fail at its first log line).
    """
    if logger is None or isinstance(logger, bool):
        return None
    missing = [name for name in LOGGER_METHODS if not callable(getattr(logger, name, None))]
    if missing:
        raise TypeError(
            f"logger must be True, False or a logger with the methods {', '.join(LOGGER_METHODS)};"
            f" {logger!r} has no {', '.join(missing)}"
        )
    return cast(LoggerLike, logger)


def resolve_logger(logger: object, default: logging.Logger) -> LoggerLike:
    """The logger the server or the client logs to, set up as python-engineio sets it up.

    A logger object is used as it is. ``True`` or ``False`` choose ``default``: if its level
    is not set, INFO for ``True`` and ERROR for ``False``; and ``True`` with no handler
    configured anywhere adds a stream handler, so that it shows something without any
    logging setup.

    Raises:
        TypeError: see :func:`given_logger`.
    """
    given = given_logger(logger)
    if given is not None:
        return given
    if default.level == logging.NOTSET:
        default.setLevel(logging.INFO if logger else logging.ERROR)
    if logger is True and not default.hasHandlers():
        default.addHandler(logging.StreamHandler())
    return default
