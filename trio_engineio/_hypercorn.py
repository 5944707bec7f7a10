"""Everything trio_engineio knows about hypercorn's trio worker, in one place.

Three things, each version-gated and each with a switch:

* **Worker fixes** (:func:`install_worker_fixes`). hypercorn 0.18's ``TCPServer._close``
  calls ``stream.send_eof()`` outside the connection's ``send_lock``. ``send_eof`` holds
  the stream's send-conflict detector across a checkpoint, so a reader task answering
  the client's close frame (or a ping) under ``send_lock`` at that moment gets
  ``trio.BusyResourceError``, which nothing in hypercorn catches: it ends the whole
  worker. Crossing closes are ordinary (client and server reach their ping timeouts
  together when a server is busy). The fix runs ``send_eof`` under ``send_lock``; and,
  for this whole class of bug, an exception escaping one connection's handler ends
  that connection (logged) instead of the worker. Both patch hypercorn's
  ``TCPServer`` class, so they protect every app the worker serves: that is the point.
  Off with ``ASGIApp(..., hypercorn_worker_fixes=False)`` or
  ``TRIO_ENGINEIO_HYPERCORN_FIXES=0``. The upstream report is ``docs/hypercorn.rst``.

* **The websocket fast path** (:func:`fast_websocket_writer`, :func:`waiting_message_taker`).
  hypercorn's per-message path costs several Trio scheduling points (a ``trio.Lock``,
  a shielded cancel scope, ``send_all``'s checkpoint, a checkpoint in every
  ``receive()`` even when a message waits). For one of *our* websocket connections,
  when no one else is writing, a frame is serialised with the connection's own
  wsproto object and written with one non-blocking ``send()``; a partial write is
  finished through hypercorn's own locked path, so bytes never interleave. Anything
  unexpected (TLS, HTTP/2, a closing connection, the lock held, an unknown hypercorn)
  takes the ordinary ``await send({...})``. It touches only our own connections.
  Off with ``ASGIApp(..., hypercorn_fast_path=False)`` or
  ``TRIO_ENGINEIO_HYPERCORN_FAST_PATH=0``.

* **Refusing permessage-deflate** (:func:`refuse_websocket_compression`), for
  ``AsyncServer(websocket_compression=False)``: hypercorn accepts the extension whenever a
  client offers it, and ASGI has no way to decline one.

Anything unrecognised means plain ASGI, silently correct.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
import struct
import sys
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

import trio

from trio_engineio._http import Message, Receive, Send

if sys.version_info < (3, 11):  # pragma: no cover - the backport trio itself depends on
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

__all__ = [
    "FAST_PATH_ENV",
    "connection_aborter",
    "FIXES_ENV",
    "VERIFIED_VERSIONS",
    "WorkerFixes",
    "env_switch",
    "flush_after_disconnect",
    "fast_websocket_writer",
    "hypercorn_version",
    "install_worker_fixes",
    "is_trio_worker_send",
    "limit_message_size",
    "refuse_websocket_compression",
    "uninstall_worker_fixes",
    "waiting_message_taker",
    "worker_fixes",
    "worker_terminated",
]

VERIFIED_VERSIONS = ("0.17.", "0.18.")
"""hypercorn versions (prefixes) whose trio worker internals this module was verified on."""
FIXES_ENV = "TRIO_ENGINEIO_HYPERCORN_FIXES"
FAST_PATH_ENV = "TRIO_ENGINEIO_HYPERCORN_FAST_PATH"

Writer = Callable[[str | bytes], Awaitable[bool]]
"""Writes one websocket message; returns whether it surely reached a Trio scheduling point."""


def env_switch(name: str) -> bool:
    """Whether the environment leaves a switch on (anything but ``0``/``false``/``no``/``off``)."""
    return os.environ.get(name, "1").strip().lower() not in ("0", "false", "no", "off")


@functools.cache
def hypercorn_version() -> str | None:
    """The installed hypercorn's version, or ``None`` when it is not installed.

    Read once per process: reading package metadata parses files (about 0.5 ms), and the
    websocket fast path asks for every websocket (it was a quarter of a handshake's CPU).
    """
    from importlib import metadata

    try:
        return metadata.version("hypercorn")
    except metadata.PackageNotFoundError:
        return None


def _verified(version: str | None) -> bool:
    return version is not None and version.startswith(VERIFIED_VERSIONS)


def is_trio_worker_send(send: Callable[..., Any]) -> bool:
    """Whether an ASGI ``send`` callable comes from hypercorn's trio worker (lifespan or request)."""
    owner = getattr(send, "__self__", None)
    module = type(owner).__module__ if owner is not None else ""
    # Requests are served by hypercorn.protocol (shared by both workers); lifespan by the
    # worker's own module. trio_engineio runs on Trio, so hypercorn.protocol means the trio worker.
    return module.startswith(("hypercorn.trio.", "hypercorn.protocol."))


# -- worker fixes --------------------------------------------------------------------------


class WorkerFixes:
    """The state of the worker fixes in this process (see the module docstring).

    Attributes:
        active: the fixes are installed on hypercorn's ``TCPServer``.
        reason: why they are not, when they are not.
        contained: exceptions that escaped one connection and were kept from the worker.
    """

    def __init__(self) -> None:
        self.active = False
        self.reason = "not installed yet"
        self.contained = 0
        self.original_close: Callable[..., Awaitable[None]] | None = None
        self.original_run: Callable[..., Awaitable[None]] | None = None


worker_fixes = WorkerFixes()
_logger = logging.getLogger("hypercorn.error")
"""hypercorn's own error log: these lines belong beside its "Running on", at its --log-level."""


def _tcp_server_class() -> Any:
    module = sys.modules.get("hypercorn.trio.tcp_server")
    return getattr(module, "TCPServer", None)


def _close_is_patchable(tcp_server: Any) -> str | None:
    """``None`` when ``TCPServer`` looks as verified; otherwise what differs."""
    close = getattr(tcp_server, "_close", None)
    run = getattr(tcp_server, "run", None)
    code = getattr(close, "__code__", None)
    if code is None or run is None:
        return "TCPServer has no _close/run"
    if "send_eof" not in code.co_names or "aclose" not in code.co_names:
        return "TCPServer._close no longer calls stream.send_eof() and stream.aclose()"
    init_names = getattr(getattr(tcp_server, "__init__", None), "__code__", None)
    if init_names is None or "send_lock" not in init_names.co_names:
        return "TCPServer has no send_lock"
    return None


async def _locked_close(self: Any) -> None:
    """hypercorn's ``TCPServer._close`` with ``send_eof`` under ``send_lock``.

    A task already holding the lock (hypercorn closes from inside a failed send)
    sends EOF directly. A lock held by a write to a peer that does not read
    (hypercorn's sends are shielded) is waited for at most a second: then the EOF
    is skipped, and ``aclose`` ends that write too.
    """
    lock: trio.Lock = self.send_lock
    stream = self.stream
    try:
        if lock.statistics().owner is trio.lowlevel.current_task():
            await stream.send_eof()
        else:
            with trio.move_on_after(1.0):
                async with lock:
                    await stream.send_eof()
    except (trio.BrokenResourceError, AttributeError, trio.BusyResourceError, trio.ClosedResourceError):
        pass  # gone already, or a TLS stream (no send_eof): nothing to do, as hypercorn says
    finally:
        await stream.aclose()


async def _contained_run(self: Any) -> None:
    """hypercorn's ``TCPServer.run``, where one connection's failure ends that connection only."""
    original = worker_fixes.original_run
    assert original is not None
    try:
        await original(self)
    except BaseException as exc:
        if isinstance(exc, BaseExceptionGroup):
            cancelled, others = exc.split((trio.Cancelled, KeyboardInterrupt, SystemExit, MemoryError))
        elif isinstance(exc, Exception):
            cancelled, others = None, exc
        else:
            raise
        if others is None:
            raise
        worker_fixes.contained += 1
        _logger.error("one connection failed inside hypercorn's trio worker; the worker goes on", exc_info=others)
        if cancelled is not None:
            raise cancelled from None


def install_worker_fixes(
    enabled: bool = True, logger: logging.Logger | None = None, *, send: Send | None = None
) -> WorkerFixes:
    """Install the worker fixes on hypercorn's trio ``TCPServer`` (idempotent).

    Called by :class:`~trio_engineio.ASGIApp` when it starts inside hypercorn's trio
    worker. Logs once, at INFO, whether they are active.

    Args:
        enabled: ``False`` (or ``TRIO_ENGINEIO_HYPERCORN_FIXES=0``) leaves hypercorn as it is.
        logger: where the startup line goes (default: hypercorn's error log, ``hypercorn.error``).
        send: the ASGI ``send`` of the worker: its ``config`` sets up hypercorn's error log
            (lazily created, and lifespan startup comes before hypercorn's first line).

    Returns:
        The process-wide :data:`worker_fixes` state.
    """
    log = logger or _logger
    # Reading hypercorn's Config.log creates it, and with it the handlers of hypercorn.error.
    getattr(getattr(getattr(send, "__self__", None), "config", None), "log", None)
    if worker_fixes.active:
        return worker_fixes
    tcp_server = _tcp_server_class()
    version = hypercorn_version()
    if not (enabled and env_switch(FIXES_ENV)):
        reason = "turned off"
    elif tcp_server is None:
        reason = "hypercorn's trio worker is not loaded"
    elif not _verified(version):
        reason = f"hypercorn {version} is not a verified version ({', '.join(VERIFIED_VERSIONS)}x)"
    else:
        reason = _close_is_patchable(tcp_server) or ""
    if reason:
        if worker_fixes.reason != reason:
            log.warning("hypercorn trio worker fixes NOT active: %s", reason)
        worker_fixes.reason = reason
        return worker_fixes
    worker_fixes.original_close = tcp_server._close
    worker_fixes.original_run = tcp_server.run
    tcp_server._close = _locked_close
    tcp_server.run = _contained_run
    worker_fixes.active = True
    worker_fixes.reason = ""
    log.info("hypercorn %s trio worker: close-race and connection-containment fixes active", version)
    return worker_fixes


def uninstall_worker_fixes() -> None:
    """Put hypercorn's ``TCPServer`` back as it was (for tests and benchmarks)."""
    tcp_server = _tcp_server_class()
    if worker_fixes.active and tcp_server is not None:
        tcp_server._close = worker_fixes.original_close
        tcp_server.run = worker_fixes.original_run
    worker_fixes.active = False
    worker_fixes.reason = "uninstalled"


# -- the websocket fast path -------------------------------------------------------------


def waiting_message_taker(receive: Receive) -> Callable[[], Message] | None:
    """What takes a message hypercorn has already queued for the app, with no scheduling point.

    hypercorn's trio worker hands the app ``MemoryReceiveChannel.receive``; its
    ``receive_nowait`` returns a message that is already there, or raises
    ``trio.WouldBlock``. The caller still checkpoints elsewhere (every public call does);
    this only removes the one per message. ``None`` for any other ASGI server.
    """
    channel = getattr(receive, "__self__", None)
    if type(channel) is not trio.MemoryReceiveChannel:
        return None
    take: Callable[[], Message] = channel.receive_nowait
    return take


class _HypercornTypes(NamedTuple):
    """The hypercorn and wsproto types the fast path checks for and uses."""

    RawData: Any
    H11Protocol: Any
    connected: Any  # ASGIWebsocketState.CONNECTED
    WSStream: Any
    TCPServer: Any
    open_state: Any  # wsproto's ConnectionState.OPEN
    BytesMessage: Any
    TextMessage: Any


@functools.cache
def _hypercorn_types() -> _HypercornTypes | None:
    """Imported once per process (an import statement per websocket was a measurable share of a handshake)."""
    try:
        from hypercorn.events import RawData
        from hypercorn.protocol.h11 import H11Protocol
        from hypercorn.protocol.ws_stream import ASGIWebsocketState, WSStream
        from hypercorn.trio.tcp_server import TCPServer
        from wsproto.connection import ConnectionState
        from wsproto.events import BytesMessage, TextMessage
    except ImportError:
        return None
    return _HypercornTypes(
        RawData,
        H11Protocol,
        ASGIWebsocketState.CONNECTED,
        WSStream,
        TCPServer,
        ConnectionState.OPEN,
        BytesMessage,
        TextMessage,
    )


def fast_websocket_writer(send: Send, enabled: bool = True) -> Writer | None:
    """A writer of websocket messages straight to hypercorn's socket, or ``None`` to use ``send``.

    Recognised: hypercorn's ``WSStream`` over HTTP/1.1 (``H11Protocol``) on a trio
    ``TCPServer`` with a plain (not TLS) ``SocketStream``, in a verified hypercorn.

    Args:
        send: the ASGI ``send`` of a websocket scope, after ``websocket.accept``.
        enabled: ``False`` (or ``TRIO_ENGINEIO_HYPERCORN_FAST_PATH=0``) returns ``None``.

    Returns:
        ``write(frame)``: raises whatever ``send`` raises once the socket is gone, and
        returns whether it surely reached a scheduling point: ``False`` when the frame went
        out in one ``send()`` (the common case), so the caller adds the checkpoint.
    """
    if not (enabled and env_switch(FAST_PATH_ENV)):
        return None
    types = _hypercorn_types()
    if types is None:
        return None
    ws_stream: Any = getattr(send, "__self__", None)
    if type(ws_stream) is not types.WSStream or not _verified(hypercorn_version()):
        return None
    h11_protocol: Any = getattr(ws_stream.send, "__self__", None)
    if type(h11_protocol) is not types.H11Protocol:
        return None  # HTTP/2 websockets: hypercorn's path
    tcp_server = getattr(h11_protocol.send, "__self__", None)
    stream: object = getattr(tcp_server, "stream", None)
    if not isinstance(tcp_server, types.TCPServer) or type(stream) is not trio.SocketStream:
        return None  # TLS: hypercorn's path
    raw_socket = getattr(stream.socket, "_sock", None)
    if not isinstance(raw_socket, socket.socket):
        return None
    return _FastWriter(send, ws_stream, tcp_server, raw_socket, types)


class _FastWriter:
    """:func:`fast_websocket_writer`'s writer: an object with slots rather than a closure (it
    lives as long as its websocket, and a closure over this much is a dozen cells)."""

    __slots__ = ("_connection", "_lock", "_protocol_send", "_raw_send", "_send", "_types", "_ws_stream")

    def __init__(self, send: Send, ws_stream: Any, tcp_server: Any, raw_socket: socket.socket, types: _HypercornTypes):
        self._send = send
        self._ws_stream = ws_stream
        self._connection = ws_stream.connection
        self._lock: trio.Lock = tcp_server.send_lock
        self._raw_send = raw_socket.send
        self._protocol_send = tcp_server.protocol_send
        self._types = types

    async def __call__(self, frame: str | bytes) -> bool:
        ws_stream = self._ws_stream
        connection = self._connection
        types = self._types
        if (
            self._lock.locked()
            or ws_stream.closed
            or ws_stream.state is not types.connected
            or connection.state is not types.open_state
        ):
            # Someone else is writing (their bytes first), or the connection is closing:
            # hypercorn's own path orders, drops or refuses it as it always does. A dropped
            # frame returns without a scheduling point.
            if type(frame) is str:
                await self._send({"type": "websocket.send", "text": frame})
            else:
                await self._send({"type": "websocket.send", "bytes": frame})
            return False
        event = types.TextMessage(data=frame) if isinstance(frame, str) else types.BytesMessage(data=frame)
        data = connection.send(event)
        try:
            sent = self._raw_send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            sent = 0  # broken: hypercorn's send_all below sees it and closes as it always does
        if sent < len(data):
            # The rest goes through hypercorn's locked send, which no one can take before
            # us (nothing yielded since the lock was seen free), so no bytes interleave; the
            # shield keeps a cancellation from cutting a frame in half.
            with trio.CancelScope(shield=True):
                await self._protocol_send(types.RawData(data=data[sent:]))
            return True  # protocol_send took the send lock: a scheduling point
        return False


def connection_aborter(send: Send) -> Callable[[], None] | None:
    """A function that aborts the TCP connection under an ASGI websocket, or ``None``.

    hypercorn's trio worker writes under a shielded cancel scope: a write to a peer
    that does not read cannot be cancelled, and holds the connection's ``send_lock``
    for as long as the peer wants. Closing the socket (with a reset, so that no
    unread data keeps the kernel busy) wakes that write with an error, which
    hypercorn handles as a closed connection. Works with TLS too.

    Args:
        send: the ASGI ``send`` of a websocket scope under hypercorn's trio worker.

    Returns:
        ``abort()``, idempotent and synchronous; ``None`` for any other server.
    """
    owner = getattr(send, "__self__", None)
    protocol = getattr(getattr(owner, "send", None), "__self__", None)
    tcp_server = getattr(getattr(protocol, "send", None), "__self__", None)
    if type(tcp_server).__module__ != "hypercorn.trio.tcp_server":
        return None
    stream = getattr(tcp_server, "stream", None)
    stream = getattr(stream, "transport_stream", stream)  # under TLS, the socket stream beneath
    trio_socket = getattr(stream, "socket", None)
    if not isinstance(trio_socket, trio.socket.SocketType):
        return None

    def abort() -> None:
        if trio_socket.fileno() == -1:
            return  # closed already
        with contextlib.suppress(OSError):
            trio_socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        trio_socket.close()  # trio wakes every task waiting on it (notify_closing)

    return abort


async def flush_after_disconnect(receive: Receive) -> None:
    """After ``websocket.disconnect``, take what hypercorn's reader still hands over.

    The disconnect can come from another task (a write that failed makes hypercorn
    close the stream) while hypercorn's reader is still delivering the messages of a
    chunk it had read: blocked on the full queue of an app that has returned, it
    would wait forever. Those messages are dropped (the session is over) until the
    reader has nothing left to deliver. Only the current chunk can follow: hypercorn
    ignores new data once the stream is closed.
    """
    channel = getattr(receive, "__self__", None)
    if type(channel) is not trio.MemoryReceiveChannel:
        await trio.lowlevel.checkpoint()
        return
    quiet = 0
    while quiet < 2:
        try:
            while True:
                channel.receive_nowait()
        except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
            pass
        # A reader woken by the room just made runs in the next batch, maybe after us:
        # only two quiet scheduling rounds in a row say it has nothing left to deliver.
        await trio.lowlevel.checkpoint()
        statistics = channel.statistics()
        quiet = 0 if statistics.current_buffer_used or statistics.tasks_waiting_send else quiet + 1


def limit_message_size(send: Send, limit: int) -> Callable[[], bool] | None:
    """Make hypercorn refuse, as its bytes arrive, a websocket message longer than ``limit``.

    hypercorn buffers a whole message up to its ``websocket_max_message_size`` (16 MiB by
    default) before the app sees any of it; our ``max_http_buffer_size`` would then be
    checked too late. This lowers that one connection's buffer limit (never another
    app's): hypercorn closes with 1009 as soon as the message grows past it. hypercorn
    counts text in characters, so a text message may reach 4 x ``limit`` bytes before it
    is refused here; our own check, in bytes, still applies once it is whole.

    Returns:
        ``oversized()``: whether hypercorn refused a message for its size (it then hands
        the app only ``websocket.disconnect``, with code 1006); ``None`` when this is not
        hypercorn's websocket, left alone.
    """
    buffer: Any = getattr(getattr(send, "__self__", None), "buffer", None)
    if type(buffer).__module__ != "hypercorn.protocol.ws_stream" or not isinstance(
        getattr(buffer, "max_length", None), int
    ):
        return None
    buffer.max_length = min(buffer.max_length, limit)

    def oversized() -> bool:
        # hypercorn stops at FrameTooLargeError without clearing the buffer.
        return bool(buffer.length > buffer.max_length)

    return oversized


def refuse_websocket_compression(send: Send) -> bool:
    """Make hypercorn accept this websocket without permessage-deflate, whatever the client offers.

    hypercorn's ``WSStream`` keeps the client's handshake (``Handshake``); on the app's
    ``websocket.accept`` it negotiates the offered extensions against wsproto's
    ``PerMessageDeflate``, which it always supports. Removing the offer from that
    handshake before the accept leaves the ``101`` without ``permessage-deflate`` in
    ``Sec-WebSocket-Extensions``, and the extension disabled: no frame is compressed.

    Args:
        send: the ASGI ``send`` of a websocket scope, before ``websocket.accept``.

    Returns:
        Whether the offer is gone (or there was none); ``False`` for any other ASGI server
        (which decides itself: uvicorn's ``--ws-per-message-deflate false``), an unverified
        hypercorn, or a websocket already accepted.
    """
    ws_stream = getattr(send, "__self__", None)
    handshake: Any = getattr(ws_stream, "handshake", None)
    if (
        type(ws_stream).__module__ != "hypercorn.protocol.ws_stream"
        or type(handshake).__name__ != "Handshake"
        or getattr(handshake, "accepted", True) is not False
        or not _verified(hypercorn_version())
    ):
        return False
    offers = getattr(handshake, "extensions", None)
    if offers:
        kept = [offer for offer in offers if offer.split(";", 1)[0].strip().lower() != "permessage-deflate"]
        handshake.extensions = kept or None
    return True


def worker_terminated(send: Send) -> Callable[[], Awaitable[None]] | None:
    """``wait()`` for hypercorn's trio worker to start shutting down, or ``None``.

    On SIGTERM (or its shutdown trigger) hypercorn's trio worker sets its
    ``WorkerContext.terminated``, stops accepting connections, and gives the open
    ones ``graceful_timeout`` seconds before it cuts them; ASGI lifespan shutdown
    comes only after that. Waiting on it lets the Engine.IO server close its sessions
    while the connections can still carry the CLOSE packets.

    Args:
        send: the ASGI ``send`` of a request (lifespan's has no worker context).
    """
    context = getattr(getattr(send, "__self__", None), "context", None)
    terminated = getattr(context, "terminated", None)
    wait = getattr(terminated, "wait", None)
    if type(context).__module__ != "hypercorn.trio.worker_context" or wait is None:
        return None
    wait_terminated: Callable[[], Awaitable[None]] = wait
    return wait_terminated
