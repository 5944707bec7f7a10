"""trio_engineio: Engine.IO v4 server and client for Trio.

A python-engineio user changes the import and keeps the code::

    import trio_engineio

    eio = trio_engineio.AsyncServer(async_mode="asgi")
    app = trio_engineio.ASGIApp(eio)
"""

from trio_engineio import exceptions
from trio_engineio.asgi import ASGIApp
from trio_engineio.client import AsyncClient
from trio_engineio.exceptions import (
    CloseReason,
    ConnectionError,
    ContentTooLongError,
    EngineIOError,
    LocalProtocolError,
    ProtocolError,
    QueueEmpty,
    QueueFull,
    RemoteProtocolError,
    SocketIsClosedError,
    UnknownPacketError,
)
from trio_engineio.server import AsyncServer

__version__ = "0.1.0"

__all__ = [
    "ASGIApp",
    "AsyncClient",
    "AsyncServer",
    "CloseReason",
    "ConnectionError",
    "ContentTooLongError",
    "EngineIOError",
    "LocalProtocolError",
    "ProtocolError",
    "QueueEmpty",
    "QueueFull",
    "RemoteProtocolError",
    "SocketIsClosedError",
    "UnknownPacketError",
    "__version__",
    "exceptions",
]
