"""trio_engineio: Engine.IO v4 server and client for Trio.

For a server run on Trio, a python-engineio user changes the import and keeps the code
(a client must also move into ``async with trio_engineio.AsyncClient() as client:``)::

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
    InvalidStateError,
    LocalProtocolError,
    NotRunningError,
    ProtocolError,
    QueueEmpty,
    QueueFull,
    RemoteProtocolError,
    SocketIsClosedError,
    TaskCancelledError,
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
    "InvalidStateError",
    "LocalProtocolError",
    "NotRunningError",
    "ProtocolError",
    "QueueEmpty",
    "QueueFull",
    "RemoteProtocolError",
    "SocketIsClosedError",
    "TaskCancelledError",
    "UnknownPacketError",
    "__version__",
    "exceptions",
]
