"""AsyncServer: python-engineio's ``AsyncServer`` API, run on Trio.

The server owns one nursery, opened by ``async with server:`` or by ASGI
lifespan (see :class:`~trio_engineio.ASGIApp`). Every session is a task group
inside it (see :mod:`trio_engineio._session`); requests arrive in hypercorn's
tasks through :meth:`AsyncServer.handle_request`.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import inspect
import json as stdlib_json
import logging
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType, TracebackType
from typing import Any, TypeVar, overload

import trio

from trio_engineio import _polling, _websocket
from trio_engineio._concurrency import AsyncHelpers, BackgroundTask, is_fatal, start_background_task
from trio_engineio._handlers import accepts_arguments, call_handler
from trio_engineio._http import (
    Headers,
    Receive,
    Scope,
    Send,
    cookie_header,
    cors_headers,
    origin_refused,
)
from trio_engineio._json import decode_message, message_payload
from trio_engineio._logging import LoggerLike, resolve_logger
from trio_engineio._requests import RequestRefused, checked_send
from trio_engineio._session import Session, SessionCallbacks, SessionConfig
from trio_engineio.exceptions import (
    CloseReason,
    LocalProtocolError,
    NotRunningError,
    SocketIsClosedError,
)
from trio_engineio.packet import PacketLike, to_protocol_packet
from trio_engineio.protocol import (
    ErrorCode,
    Packet,
    PacketType,
    Transport,
    check_sendable,
    open_packet,
)

__all__ = ["AsyncServer"]

_asgi_app_class: Callable[..., Any] | None = None
""":class:`~trio_engineio.ASGIApp`, registered by :mod:`trio_engineio.asgi` when it is imported (as
``import trio_engineio`` does), so that :meth:`AsyncServer.attach` needs no import of the layer above."""

_default_logger = logging.getLogger("trio_engineio.server")
_Handler = TypeVar("_Handler", bound=Callable[..., Any])
_EVENTS = ("connect", "disconnect", "message")
_HOOK_EVENTS = ("initial_headers", "headers", "connection_error")
"""Events of engine.io's server that python-engineio lacks; :meth:`AsyncServer.on` takes them too."""
_NOT_RUNNING = (
    "the AsyncServer is not running: serve it through trio_engineio.ASGIApp (ASGI lifespan starts it), "
    "or run it inside a Trio program with `async with server:`"
)


class AsyncServer(AsyncHelpers):
    """An Engine.IO v4 server for Trio, with python-engineio's ``AsyncServer`` API.

    Args:
        async_mode: ``None`` or ``'asgi'``, the only mode.
        ping_interval: seconds between pings, or ``(interval, grace)``; the
            handshake advertises ``interval + grace`` so clients allow for it.
        ping_timeout: seconds a client has to answer a ping.
        max_http_buffer_size: the largest POST body or websocket message, in bytes.
        allow_upgrades: whether polling clients may upgrade to websocket.
        http_compression: compress polling responses the client accepts compressed.
        compression_threshold: the smallest body, in bytes, worth compressing.
        cookie: the name of the sid cookie set on the polling handshake, or a
            dict of cookie attributes (``name``, ``path``, ``SameSite``, ...).
        cors_allowed_origins: ``None`` (same origin only), ``'*'``, an origin,
            a list of origins, or ``callable(origin[, environ]) -> bool``;
            ``[]`` turns CORS handling off.
        cors_credentials: send ``Access-Control-Allow-Credentials: true``.
        logger: ``True`` to log at INFO, ``False`` for errors only (both to the
            ``trio_engineio.server`` logger), or a logger to log to: a
            :class:`logging.Logger`, a :class:`logging.LoggerAdapter`, a structlog
            logger, any object with ``debug``, ``info``, ``warning``, ``error`` and
            ``exception`` methods (anything else is a ``TypeError``).
        json: a module with ``dumps``/``loads`` used by this server only.
        async_handlers: run message handlers beside the transport's reader, so a
            slow handler does not hold up reading (pongs keep the session alive).
            One client's handlers start in arrival order and run one at a time
            while they do not wait; a handler that waits (for I/O, a lock, that
            client's next message) lets the next ones run beside it, at most 32
            at once per client (see "Events" in the server guide). ``False``
            runs handlers inline in the transport's reader, which is faster.
        monitor_clients: accepted for compatibility; every session always has
            its own heartbeat timer.
        transports: the allowed transports (default both).
        upgrade_timeout: seconds a websocket has to complete an upgrade.
        outbound_buffer_size: packets a session buffers for its client before
            ``send`` waits (backpressure).
        max_packets_per_poll: most packets in one polling response (python-engineio's
            client rejects more than 16); the client polls again for the rest.
        max_packets_per_post: most packets one polling POST may carry; a POST with
            more is answered 400 and its session closed, before any packet is
            decoded (so a body of tiny packets costs almost nothing to refuse).
            The official JS client batches everything it has buffered, up to
            ``max_http_buffer_size`` bytes, so keep this well above its bursts.
        close_timeout: seconds a server close waits for its CLOSE packet to reach
            a polling client before the session is dropped.
        allow_request: ``callable(environ)``, plain or async, asked about every
            handshake (polling and websocket) before a session exists, as engine.io's
            ``allowRequest``: ``True`` or ``None`` lets the request through; ``False``
            refuses it with 403 and ``{"code":4,"message":"Forbidden"}``; a string
            refuses it with that string as the message; anything else refuses it, and
            so does an exception (logged). A refusal also fires ``connection_error``.
        websocket_compression: ``False`` refuses the permessage-deflate extension that
            websocket clients offer (engine.io's ``perMessageDeflate: false``, its
            default): no CPU spent compressing each message. It takes effect under
            hypercorn's Trio worker, which otherwise always accepts the offer; other ASGI
            servers decide themselves (uvicorn: ``--ws-per-message-deflate false``).

    Raises:
        ValueError: an invalid ``async_mode`` or ``transports``, or a buffer or
            packet limit below 1.
        TypeError: an unknown keyword argument.

    Example::

        eio = trio_engineio.AsyncServer(async_mode="asgi", cors_allowed_origins="*")

        @eio.on("message")
        async def message(sid, data):
            await eio.send(sid, data)
    """

    reason = CloseReason
    """The disconnect reasons (``AsyncServer.reason.PING_TIMEOUT``, ...)."""

    event_names = _EVENTS
    """python-engineio's events: ``('connect', 'disconnect', 'message')``. :meth:`on` also
    accepts engine.io's ``'initial_headers'``, ``'headers'`` and ``'connection_error'``."""

    def __init__(
        self,
        async_mode: str | None = None,
        ping_interval: float | tuple[float, float] = 25,
        ping_timeout: float = 20,
        max_http_buffer_size: int = 1_000_000,
        allow_upgrades: bool = True,
        http_compression: bool = True,
        compression_threshold: int = 1024,
        cookie: str | dict[str, Any] | None = None,
        cors_allowed_origins: str | Sequence[str] | Callable[..., bool] | None = None,
        cors_credentials: bool = True,
        logger: bool | LoggerLike = False,
        json: Any = None,
        async_handlers: bool = True,
        monitor_clients: bool | None = None,
        transports: str | Iterable[str] | None = None,
        *,
        upgrade_timeout: float = 10,
        outbound_buffer_size: int = 1024,
        max_packets_per_poll: int = 16,
        max_packets_per_post: int = 1024,
        close_timeout: float = 5,
        allow_request: Callable[[dict[str, Any]], Any] | None = None,
        websocket_compression: bool = True,
    ) -> None:
        if async_mode not in (None, "asgi"):
            raise ValueError(f"invalid async_mode {async_mode!r}: trio_engineio only supports 'asgi'")
        self.async_mode = "asgi"
        if isinstance(ping_interval, tuple):
            self.ping_interval, self.ping_interval_grace_period = ping_interval
        else:
            self.ping_interval, self.ping_interval_grace_period = ping_interval, 0
        self.ping_timeout = ping_timeout
        self.max_http_buffer_size = max_http_buffer_size
        self.allow_upgrades = allow_upgrades
        self.http_compression = http_compression
        self.compression_threshold = compression_threshold
        self.cookie = cookie
        self.cors_allowed_origins = cors_allowed_origins
        self.cors_credentials = cors_credentials
        self.async_handlers = async_handlers
        self.monitor_clients = monitor_clients
        self.upgrade_timeout = upgrade_timeout
        if outbound_buffer_size < 1 or max_packets_per_poll < 1 or max_packets_per_post < 1:
            raise ValueError("outbound_buffer_size, max_packets_per_poll and max_packets_per_post must be at least 1")
        self.outbound_buffer_size = outbound_buffer_size
        self.max_packets_per_poll = max_packets_per_poll
        self.max_packets_per_post = max_packets_per_post
        self.close_timeout = close_timeout
        self.allow_request = allow_request
        self.websocket_compression = websocket_compression
        self._json: Any = json if json is not None else stdlib_json
        self.logger: LoggerLike = resolve_logger(logger, _default_logger)
        if transports is None:
            self.transports = [Transport.POLLING, Transport.WEBSOCKET]
        else:
            names = [transports] if isinstance(transports, str) else list(transports)
            self.transports = [Transport(name) for name in names if name in ("polling", "websocket")]
            if not self.transports:
                raise ValueError(f"no valid transports in {transports!r}: use 'polling' and/or 'websocket'")
        self.handlers: dict[str, Callable[..., Any]] = {}
        self._sessions: dict[str, Session] = {}
        self._callbacks: SessionCallbacks | None = None
        self._shared_session_config: SessionConfig | None = None
        self._nursery: trio.Nursery | None = None
        self._nursery_manager: contextlib.AbstractAsyncContextManager[trio.Nursery] | None = None
        self._background_tasks: set[BackgroundTask] = set()
        self._sequence_number = 0
        # ASGIApp(hypercorn_fast_path=...) sets it; see trio_engineio._hypercorn.
        self._hypercorn_fast_path = True
        self._shutting_down = False

    # -- the server's nursery --------------------------------------------------

    async def __aenter__(self) -> AsyncServer:
        """Open the server's nursery; sessions and background tasks live in it.

        Use it where no ASGI lifespan runs (tests, or code calling
        :meth:`handle_request` itself); under hypercorn, :class:`~trio_engineio.ASGIApp`'s
        lifespan does it.

        Returns:
            The server.

        Raises:
            RuntimeError: the server is already running.

        Example::

            async with eio, trio_engineio.testing.open_client(eio) as client:
                await client.connect(trio_engineio.testing.BASE_URL)
        """
        await trio.lowlevel.checkpoint()  # opening a nursery is none
        if self._nursery is not None:
            raise RuntimeError("this AsyncServer is already running")
        manager = trio.open_nursery()
        self._shutting_down = False
        self._nursery = await manager.__aenter__()
        self._nursery_manager = manager
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        """Shut down gracefully (see :meth:`shutdown`) and close the nursery.

        If the block raised, the sessions are cancelled at once instead.

        Args:
            exc_type: the exception type, if the block raised.
            exc_value: the exception, if the block raised.
            traceback: its traceback.

        Returns:
            Whatever the nursery returns (the exception is not swallowed).

        Example::

            async with eio:
                ...
            # every session closed, every background task ended
        """
        manager, nursery = self._nursery_manager, self._nursery
        assert manager is not None
        assert nursery is not None
        try:
            if exc_type is None:
                await self.shutdown()
            nursery.cancel_scope.cancel()
        finally:
            self._nursery = self._nursery_manager = None
            result = await manager.__aexit__(exc_type, exc_value, traceback)
        return result

    @property
    def sockets(self) -> Mapping[str, object]:
        """The open sessions by sid, read-only, like python-engineio's ``sockets`` dict.

        For ``sid in eio.sockets``, ``len(eio.sockets)`` and iterating over the
        sids; the values are internal objects, not public API. A session is in
        it from its handshake (the ``connect`` handler already sees it) until it
        has closed.

        Example::

            print(len(eio.sockets), "clients")
        """
        return MappingProxyType(self._sessions)

    @property
    def running(self) -> bool:
        """Whether the server's nursery is open (by lifespan or ``async with``).

        Example::

            async with trio_engineio.testing.open_lifespan(app):
                assert eio.running
        """
        return self._nursery is not None

    def _require_nursery(self) -> trio.Nursery:
        if self._nursery is None:
            raise NotRunningError(_NOT_RUNNING)
        return self._nursery

    # -- python-engineio's API ---------------------------------------------------

    def is_asyncio_based(self) -> bool:
        """``False``: this server is Trio-based (python-engineio's ``AsyncServer`` answers ``True``).

        Returns:
            ``False``.

        Example::

            assert not eio.is_asyncio_based()
        """
        return False

    def async_modes(self) -> list[str]:
        """The supported async modes.

        Returns:
            ``['asgi']``.

        Example::

            assert eio.async_modes() == ["asgi"]
        """
        return ["asgi"]

    @overload
    def on(self, event: str) -> Callable[[_Handler], _Handler]: ...
    @overload
    def on(self, event: str, handler: _Handler) -> None: ...
    def on(self, event: str, handler: _Handler | None = None) -> Callable[[_Handler], _Handler] | None:
        """Register an event handler, as a decorator or a call.

        python-engineio's events (:attr:`event_names`):

        * ``'connect'`` (``sid, environ``; return ``False`` to refuse);
        * ``'message'`` (``sid, data``);
        * ``'disconnect'`` (``sid, reason, description``, or ``sid, reason``, or just
          ``sid``: the handler's signature decides; ``description`` says why in words,
          ``''`` when there is nothing to add).

        engine.io's server events, which python-engineio lacks:

        * ``'initial_headers'`` (``headers, environ``): add response headers to a
          handshake (the polling handshake's response, a websocket's ``101``) by
          setting keys of the ``dict`` ``headers`` (a value is a ``str``, or a list of
          them for a repeated header);
        * ``'headers'`` (``headers, environ``): the same for every polling response
          (GET, POST, the handshake after ``initial_headers``) and every accepted
          websocket. A header set here replaces the server's header of that name;
          refusals get none;
        * ``'connection_error'`` (``environ, code, message``): a request was refused
          (any 4xx answer with a ``{"code", "message"}`` JSON body, ``allow_request``
          refusals included; not a refusal by your ``connect`` handler, which knows).
          ``code`` is a :class:`~trio_engineio.protocol.ErrorCode` (an ``int``).

        A handler that raises is logged; the request goes on (a refusal is still sent).

        Args:
            event: the event's name.
            handler: the handler, sync or async; omit it to use ``on`` as a decorator.

        Raises:
            ValueError: an unknown event name.

        Example::

            @eio.on("connect")
            async def connect(sid, environ):
                return environ.get("HTTP_AUTHORIZATION") == "secret"

            @eio.on("initial_headers")
            def initial_headers(headers, environ):
                headers["X-Served-By"] = "node-7"

            @eio.on("connection_error")
            def connection_error(environ, code, message):
                print(environ["REMOTE_ADDR"], code, message)
        """
        if event not in _EVENTS and event not in _HOOK_EVENTS:
            raise ValueError(f"invalid event {event!r}: use one of {', '.join(_EVENTS + _HOOK_EVENTS)}")

        def set_handler(handler: _Handler) -> _Handler:
            self.handlers[event] = handler
            return handler

        if handler is None:
            return set_handler
        set_handler(handler)
        return None

    async def send(self, sid: str, data: str | bytes | dict[str, Any] | list[Any]) -> None:
        """Send a message to a client.

        Waits while the session's outbound buffer is full (``outbound_buffer_size``
        packets). An unknown or closed sid is logged and ignored, as in
        python-engineio.

        Args:
            sid: the recipient's session id.
            data: ``str`` (a text message), ``bytes`` (binary), or a ``dict`` /
                ``list`` (sent as JSON text).

        Raises:
            LocalProtocolError: a ``str`` (or JSON text) with a lone surrogate, which
                has no UTF-8 encoding; python-engineio fails later, while writing.
            TypeError: a ``dict``/``list`` the JSON module cannot serialise.

        Example::

            await eio.send(sid, "hello")
            await eio.send(sid, b"\\x00\\x01")  # binary
            await eio.send(sid, {"type": "welcome", "sid": sid})  # JSON text
        """
        try:
            packet = self._message_packet(data)
        except Exception:
            await trio.lowlevel.checkpoint()  # refused, yet a checkpoint (see send_packet)
            raise
        await self.send_packet(sid, packet)

    def _message_packet(self, data: str | bytes | dict[str, Any] | list[Any]) -> Packet:
        """The MESSAGE packet carrying ``data`` (see :meth:`send`), checked sendable."""
        return Packet(PacketType.MESSAGE, message_payload(self._json, data))

    def send_nowait(self, sid: str, data: str | bytes | dict[str, Any] | list[Any]) -> None:
        """Queue a message for a client without waiting, or raise :class:`~trio_engineio.QueueFull`.

        The non-waiting :meth:`send`, for a loop over many clients that one slow client must
        not hold up: where ``send`` would wait for room in the session's outbound buffer
        (``outbound_buffer_size`` packets), this raises ``QueueFull`` and queues nothing, and
        the application decides (skip this message, disconnect the client). Every message it
        accepted is delivered, in order with the session's other messages: it never goes
        ahead of a ``send`` that is waiting for room. It always queues, and the session's
        writer (websocket) or the client's next GET (polling) sends the message. While an
        upgrade is under way it behaves as ``send`` does: it goes past the bound rather than
        fail (see :doc:`server`). An unknown or closed sid is logged and ignored, as by
        ``send``. It is not a checkpoint: a loop calling only this never lets other tasks run.

        Args:
            sid: the recipient's session id.
            data: ``str`` (a text message), ``bytes`` (binary), or a ``dict`` /
                ``list`` (sent as JSON text).

        Raises:
            QueueFull: the session's outbound buffer is full; the message was not queued.
            LocalProtocolError: a ``str`` (or JSON text) with a lone surrogate, which
                has no UTF-8 encoding.
            TypeError: a ``dict``/``list`` the JSON module cannot serialise.

        Example::

            for sid in list(eio.sockets):
                try:
                    eio.send_nowait(sid, message)
                except trio_engineio.QueueFull:
                    await eio.disconnect(sid)  # or skip this client this time
            await trio.lowlevel.checkpoint()
        """
        packet = self._message_packet(data)
        session = self._sessions.get(sid)
        if session is None:
            self.logger.warning("Cannot send to sid %s", sid)
            return
        try:
            session.send_packet_nowait(packet)
        except SocketIsClosedError:
            self.logger.warning("Cannot send to sid %s: the session is closed", sid)

    async def send_packet(self, sid: str, pkt: Packet | PacketLike) -> None:
        """Send a raw packet to a client.

        The packet is a :class:`trio_engineio.protocol.Packet`, or a python-engineio
        style packet object: :class:`trio_engineio.packet.Packet`, or python-engineio's
        own ``engineio.packet.Packet`` (as python-socketio sends), or anything with
        ``packet_type`` and ``data`` attributes; ``dict``/``list`` data is sent as JSON
        text, encoded with this server's ``json`` module. Like :meth:`send`, it waits
        while the outbound buffer is full, and an unknown or closed sid is logged and
        ignored. A packet that cannot be sent is refused here, before anything is
        queued: the session carries on.

        Args:
            sid: the recipient's session id.
            pkt: the packet.

        Raises:
            TypeError: ``pkt`` is not a packet, or its data is of a type that cannot
                be sent (see :func:`~trio_engineio.packet.to_protocol_packet`).
            LocalProtocolError: the packet cannot be encoded: an unknown packet type,
                binary data on a control packet, text with a lone surrogate (see
                :func:`~trio_engineio.protocol.packet.check_sendable`).

        Example::

            from trio_engineio.protocol import Packet, PacketType

            await eio.send_packet(sid, Packet(PacketType.MESSAGE, "raw text"))

            from trio_engineio import packet  # python-engineio's way

            await eio.send_packet(sid, packet.Packet(packet.MESSAGE, "raw text"))
        """
        # A checkpoint on every path (Trio's rule; an app looping over a gone sid must not
        # freeze the server): a cancel point before the packet is queued or written, so that
        # Cancelled means it was not sent, and after it a scheduling point unless the session
        # reached one. A websocket write from this task often reaches none (WebSocketWriter).
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            if not isinstance(pkt, Packet):
                pkt = to_protocol_packet(pkt, self._json)
            check_sendable(pkt)
        except (LocalProtocolError, TypeError):
            await trio.lowlevel.cancel_shielded_checkpoint()
            raise
        session = self._sessions.get(sid)
        if session is None:
            self.logger.warning("Cannot send to sid %s", sid)
        elif session.machine.is_closed:
            self.logger.warning("Cannot send to sid %s: the session is closed", sid)
        else:
            try:
                if await session.send_packet(pkt):
                    return
            except SocketIsClosedError:
                # It closed while this send waited for room: a scheduling point was reached.
                self.logger.warning("Cannot send to sid %s: the session is closed", sid)
                return
        await trio.lowlevel.cancel_shielded_checkpoint()

    def _get_session_object(self, sid: str) -> Session:
        session = self._sessions.get(sid)
        if session is None or session.machine.is_closed:
            raise KeyError("Session not found")
        return session

    async def get_session(self, sid: str) -> dict[str, Any]:
        """The user session dict of a client.

        Args:
            sid: the session id.

        Returns:
            The dict itself (changes to it are kept; :meth:`session` reads better).

        Raises:
            KeyError: no such session, or it has closed.

        Example::

            user = (await eio.get_session(sid)).get("user")
        """
        await trio.lowlevel.checkpoint()
        return self._get_session_object(sid).user_session

    async def save_session(self, sid: str, session: dict[str, Any]) -> None:
        """Replace the user session dict of a client.

        Args:
            sid: the session id.
            session: the new dict.

        Raises:
            KeyError: no such session, or it has closed.

        Example::

            await eio.save_session(sid, {"user": "alice"})
        """
        await trio.lowlevel.checkpoint()  # before the change: Cancelled means not saved
        self._get_session_object(sid).user_session = session

    @contextlib.asynccontextmanager
    async def session(self, sid: str) -> Any:
        """An async context manager over the user session; saved on exit.

        If the session ends while the block runs, nothing is saved and no error is
        raised.

        Args:
            sid: the session id.

        Yields:
            The user session dict.

        Raises:
            KeyError: on entry, no such session (or it has closed).

        Example::

            async with eio.session(sid) as session:
                session["count"] = session.get("count", 0) + 1
        """
        user_session = await self.get_session(sid)
        try:
            yield user_session
        finally:
            # Saved even when the block raises, as python-engineio does; shielded, so that the
            # save's checkpoint cannot turn the block's exception into Cancelled (or skip the save).
            with trio.CancelScope(shield=True), contextlib.suppress(KeyError):
                await self.save_session(sid, user_session)

    def transport(self, sid: str) -> str:
        """The name of a client's transport.

        Args:
            sid: the session id.

        Returns:
            ``'polling'`` or ``'websocket'`` (after an upgrade, ``'websocket'``).

        Raises:
            KeyError: no such session, or it has closed.

        Example::

            if eio.transport(sid) == "polling":
                ...
        """
        return self._get_session_object(sid).machine.transport.value

    async def disconnect(self, sid: str | None = None) -> None:
        """Close one client's session (its CLOSE packet is delivered), or all of them.

        Returns once the ``disconnect`` handlers have run (reason
        ``SERVER_DISCONNECT``); it never waits for a client that does not poll
        again. An unknown sid, or no clients at all, is not an error.

        Args:
            sid: the session to close; ``None`` closes every session.

        Example::

            await eio.disconnect(sid)
            await eio.disconnect()  # everyone
        """
        if sid is None:
            if self._sessions:
                async with trio.open_nursery() as nursery:  # waiting for its children: a checkpoint
                    for each in list(self._sessions):
                        nursery.start_soon(self.disconnect, each)
                return
        else:
            session = self._sessions.get(sid)
            if session is not None and await session.close(CloseReason.SERVER_DISCONNECT, "disconnect() was called"):
                await session.wait_disconnect_handled()  # a checkpoint, even when already handled
                return
        # Nobody to close, or closed already: still a checkpoint (Trio's rule).
        await trio.lowlevel.checkpoint()

    def _closing_connections(self) -> bool:
        # While shutting down, a client must not send its next poll on a connection the ASGI
        # server is about to close: hypercorn's trio worker, shutting down, closes keep-alive
        # connections after their response, and a request that arrived first leaves the
        # connection waiting (h11 PAUSED) until its graceful_timeout.
        return self._shutting_down

    async def shutdown(self) -> None:
        """Close every session gracefully and stop background tasks.

        Each client gets its CLOSE packet (within ``close_timeout``), the
        ``disconnect`` handlers run, then background tasks are cancelled. It
        returns within about ``close_timeout`` seconds plus handler time. Lifespan
        shutdown and the end of ``async with`` call it; call it yourself to close
        the sessions before the ASGI server stops (see the server guide's
        "Shutting down under hypercorn").

        Example::

            async def shutdown_trigger():
                await stop_requested.wait()
                await eio.shutdown()  # before hypercorn's graceful wait

            await hypercorn.trio.serve(app, config, shutdown_trigger=shutdown_trigger)
        """
        self.logger.info("trio_engineio server is shutting down")
        if not self._shutting_down:
            self._shutting_down = True
            deadline = trio.current_time() + self.close_timeout  # for all of it
            await self.disconnect()
            with trio.move_on_at(deadline):
                while self._sessions:
                    await next(iter(self._sessions.values())).wait_finished()
        else:
            # A second call (lifespan shutdown after hypercorn's graceful wait, while the first
            # still waits): every session was told already, and the ASGI server has cut its
            # connections, so no CLOSE can still be delivered: waiting again would only delay exit.
            await trio.lowlevel.checkpoint()
        for session in list(self._sessions.values()):
            session.cancel()
        for task in list(self._background_tasks):
            task.cancel()

    def start_background_task(self, target: Callable[..., Any], *args: Any, **kwargs: Any) -> BackgroundTask:
        """Run ``target(*args, **kwargs)`` in the server's nursery.

        An exception it raises is logged and kept in the handle.

        Args:
            target: an async function.
            args: its positional arguments.
            kwargs: its keyword arguments.

        Returns:
            A :class:`~trio_engineio._concurrency.BackgroundTask`: ``await`` it for
            the result, ``cancel()`` it to stop it. :meth:`shutdown` cancels it.

        Raises:
            EngineIOError: the server is not running.

        Example::

            async def ticker(sid):
                while True:
                    await eio.send(sid, "tick")
                    await trio.sleep(1)

            task = eio.start_background_task(ticker, sid)
            ...
            task.cancel()
        """
        handle = start_background_task(self._require_nursery(), self.logger, target, *args, **kwargs)
        self._background_tasks.add(handle)
        self._require_nursery().start_soon(self._forget_task, handle)
        return handle

    async def _forget_task(self, handle: BackgroundTask) -> None:
        await handle._done.wait()
        self._background_tasks.discard(handle)

    def generate_id(self) -> str:
        """A new session id: 20 URL-safe characters, random (from :mod:`secrets`) plus a counter.

        Override it to make your own ids; they must be unique and URL-safe.

        Returns:
            The id.

        Example::

            sid = eio.generate_id()  # e.g. '_cnoNbs-JmZ69okPAAAB'
        """
        self._sequence_number = (self._sequence_number + 1) & 0xFFFFFF
        raw = secrets.token_bytes(12) + self._sequence_number.to_bytes(3, "big")
        return base64.urlsafe_b64encode(raw).decode("ascii")

    def attach(self, app: Any, engineio_path: str = "engine.io") -> Any:
        """Wrap an ASGI app so that Engine.IO is served beside it.

        Args:
            app: the ASGI app that gets every other request (and the lifespan events).
            engineio_path: the Engine.IO path.

        Returns:
            An :class:`~trio_engineio.ASGIApp` routing ``/engineio_path/`` here
            and everything else to ``app``.

        Example::

            app = eio.attach(starlette_app)  # ASGIApp(eio, other_asgi_app=starlette_app)
        """
        # Importing any module of the package imports trio_engineio, which imports asgi.
        assert _asgi_app_class is not None, "trio_engineio.asgi registers ASGIApp when imported"
        return _asgi_app_class(self, other_asgi_app=app, engineio_path=engineio_path)

    # -- handlers ------------------------------------------------------------------

    async def _call_handler(self, event: str, *args: Any) -> Any:
        handler = self.handlers.get(event)
        if handler is None:
            return None
        return await call_handler(handler, *args)

    # A handler's exception, even a BaseException that is not fatal (see is_fatal), is
    # logged and ends there: it must not reach the ASGI server nor the server's nursery.

    async def _trigger_connect(self, sid: str, environ: dict[str, Any]) -> Any:
        try:
            return await self._call_handler("connect", sid, environ)
        except BaseException as exc:
            if is_fatal(exc):
                raise
            self.logger.exception("connect handler error")
            return False

    async def _trigger_message(self, sid: str, data: Any) -> None:
        try:
            await self._call_handler("message", sid, data)
        except BaseException as exc:
            if is_fatal(exc):
                raise
            self.logger.exception("message handler error")

    async def _trigger_disconnect(self, sid: str, reason: CloseReason | None, description: str = "") -> None:
        handler = self.handlers.get("disconnect")
        if handler is None:
            return
        try:
            if accepts_arguments(handler, 3):
                # engine.io's close event: the reason and a description (our log line's detail).
                result = handler(sid, (reason or CloseReason.TRANSPORT_CLOSE).value, description)
            elif accepts_arguments(handler, 2, unknown=True):
                result = handler(sid, reason.value if reason else CloseReason.TRANSPORT_CLOSE.value)
            else:
                result = handler(sid)
            if inspect.isawaitable(result):
                await result
        except BaseException as exc:
            if is_fatal(exc):
                raise
            self.logger.exception("disconnect handler error")

    async def _trigger_connection_error(self, environ: dict[str, Any], code: ErrorCode, message: str) -> None:
        """engine.io's ``connection_error``: a request is being refused (the refusal goes on regardless)."""
        try:
            await self._call_handler("connection_error", environ, code, message)
        except BaseException as exc:
            if is_fatal(exc):
                raise
            self.logger.exception("connection_error handler error")

    async def _hook_headers(self, environ: dict[str, Any], *, initial: bool) -> Headers:
        """The headers the ``initial_headers`` (a handshake) and ``headers`` handlers set.

        Each handler fills the same ``dict``; one that raises is logged, and what it had set
        stays. A header that cannot be sent (not latin-1, a line break) is logged and left out.
        """
        handlers = self.handlers
        if "headers" not in handlers and not (initial and "initial_headers" in handlers):
            return []
        headers: dict[str, Any] = {}
        for event in ("initial_headers", "headers") if initial else ("headers",):
            try:
                await self._call_handler(event, headers, environ)
            except BaseException as exc:
                if is_fatal(exc):
                    raise
                self.logger.exception("%s handler error", event)
        raw: Headers = []
        for name, value in headers.items():
            for each in value if isinstance(value, list | tuple) else (value,):
                try:
                    header = (str(name).strip().lower().encode("latin-1"), str(each).encode("latin-1"))
                except UnicodeEncodeError:
                    header = (b"", b"")
                if (
                    not header[0]
                    or b":" in header[0]
                    or header[0] == b"content-length"  # the server's own
                    or any(byte in b"\r\n\0" for byte in header[0] + header[1])
                ):
                    self.logger.error("a headers handler set the header %r: %r, which cannot be sent", name, each)
                    continue
                raw.append(header)
        return raw

    def _session_config(self) -> SessionConfig:
        # Read when each session opens: a setting changed later applies to new sessions. Sessions
        # opened under the same settings share one object (each keeps it as long as it lives).
        config = SessionConfig(
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
            upgrade_timeout=self.upgrade_timeout,
            close_timeout=self.close_timeout,
            outbound_buffer_size=self.outbound_buffer_size,
            max_packets_per_poll=self.max_packets_per_poll,
            max_http_buffer_size=self.max_http_buffer_size,
            async_handlers=self.async_handlers,
        )
        shared = self._shared_session_config
        if shared is None or shared != config:
            self._shared_session_config = shared = config
        return shared

    def _session_callbacks(self) -> SessionCallbacks:
        # One object shared by every session of this server.
        if self._callbacks is None:
            self._callbacks = SessionCallbacks(
                message=self._trigger_message,
                disconnect=self._trigger_disconnect,
                finished=self._forget,
                decode=functools.partial(decode_message, self._json),
                logger=self.logger,
            )
        return self._callbacks

    def _forget(self, session: Session) -> None:
        if self._sessions.get(session.sid) is session:
            del self._sessions[session.sid]

    # -- requests --------------------------------------------------------------------

    async def handle_request(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI ``http`` or ``websocket`` request for Engine.IO.

        :class:`~trio_engineio.ASGIApp` calls it for requests under its
        ``engineio_path``; call it yourself to route requests with your own ASGI
        code. Nothing a client sends makes this raise: bad requests are answered with
        400 and a JSON body, bad packets close that client's session, and an
        error from the ASGI server's ``send`` (ASGI lets servers raise once the
        client has gone) ends the request as a client that went away.

        Args:
            scope: the ASGI ``http`` or ``websocket`` scope.
            receive: the ASGI receive callable.
            send: the ASGI send callable.

        Raises:
            EngineIOError: the server is not running (see :class:`AsyncServer`).

        Example::

            async def app(scope, receive, send):  # a hand-written router
                if scope["type"] != "lifespan" and scope["path"].startswith("/engine.io/"):
                    await eio.handle_request(scope, receive, send)
        """
        if self._nursery is None:
            await trio.lowlevel.checkpoint()
            self._require_nursery()  # raises
        try:
            if scope["type"] == "websocket":
                await _websocket.handle_websocket(self, scope, receive, send)
            else:
                await _polling.handle_http(self, scope, receive, checked_send(send, self._closing_connections))
        except SocketIsClosedError as exc:
            self.logger.info("the client went away before its response: %r", exc.__cause__)

    def _origin_refused(self, environ: dict[str, Any]) -> bool:
        return origin_refused(self.cors_allowed_origins, environ, self.logger)

    def _cors_headers(self, environ: dict[str, Any]) -> Headers:
        return cors_headers(self.cors_allowed_origins, self.cors_credentials, environ, self.logger)

    def _cookie_header(self, sid: str) -> Headers:
        return cookie_header(self.cookie, sid)

    async def _check_allow_request(self, environ: dict[str, Any]) -> None:
        """Ask ``allow_request`` about a handshake.

        Raises:
            HandshakeError: it refused (FORBIDDEN, 403; see :func:`~trio_engineio._requests.refusal_message`).
        """
        hook = self.allow_request
        if hook is None:
            return
        try:
            result = hook(environ)
            if inspect.isawaitable(result):
                result = await result
        except BaseException as exc:
            if is_fatal(exc):
                raise
            self.logger.exception("allow_request raised: the request is refused")
            result = False
        if result is None or result is True:
            return
        message = result if isinstance(result, str) and result else ErrorCode.FORBIDDEN.message
        raise RequestRefused(message)

    def _open_packet(self, sid: str, transport: Transport) -> Packet:
        upgrades = (
            [Transport.WEBSOCKET]
            if (transport is Transport.POLLING and self.allow_upgrades and Transport.WEBSOCKET in self.transports)
            else []
        )
        return open_packet(
            sid,
            upgrades=upgrades,
            ping_interval_ms=int((self.ping_interval + self.ping_interval_grace_period) * 1000),
            ping_timeout_ms=int(self.ping_timeout * 1000),
            max_payload=self.max_http_buffer_size,
        )

    async def _open_session(self, transport: Transport, environ: dict[str, Any]) -> Session | None:
        """Start a session and run the connect handler; ``None`` if it refused."""
        sid = self.generate_id()
        session = Session(self._session_config(), self._session_callbacks(), sid, transport)
        # start_soon, not start: the session starts what needs its nursery once it runs
        # (nursery.start costs a nursery of its own and several task steps per handshake).
        self._require_nursery().start_soon(session.run)
        self._sessions[sid] = session
        result = await self._trigger_connect(sid, environ)
        if result is not None and result is not True:
            await session.close(CloseReason.TRANSPORT_CLOSE, "refused by the connect handler")
            await session.wait_finished()  # gone from eio.sockets before the client hears of it
            environ["trio_engineio.refusal"] = result
            return None
        session.connected = True
        return session

    # -- websocket -------------------------------------------------------------------
