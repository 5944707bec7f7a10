"""The Engine.IO client for Trio, with python-engineio's ``AsyncClient`` API.

The client owns a nursery, opened by ``async with``; each connection runs in a
nursery of its own inside it (reader, writer, watchdog, upgrade and handler
tasks), so that after :meth:`AsyncClient.disconnect` returns, or the
``async with`` block ends, none of the connection's tasks remain::

    async with trio_engineio.AsyncClient() as client:
        await client.connect("http://localhost:5000")
        await client.send("hello")
        async for data in client:  # messages in order, until the connection ends
            print(data)

The protocol itself is :class:`~trio_engineio.protocol.client_session.ClientSession`;
this module only moves its packets with the transports of
:mod:`trio_engineio._transports` and calls the application's handlers.
"""

from __future__ import annotations

import inspect
import json as _stdlib_json
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, TypeVar, overload

import httpx
import trio

from trio_engineio._concurrency import AsyncHelpers, BackgroundTask, is_fatal
from trio_engineio._concurrency import start_background_task as _start_background_task
from trio_engineio._handlers import accepts_arguments, call_handler
from trio_engineio._json import decode_message, message_payload
from trio_engineio._logging import LoggerLike, resolve_logger
from trio_engineio._transports import (
    ClientWebSocket,
    PollingTransport,
    TrioWebSocketConnector,
    WebSocketConnector,
    engineio_url,
    make_ssl_context,
    split_websocket_options,
    timestamped,
    websocket_handshake_headers,
)
from trio_engineio.exceptions import (
    CloseReason,
    ConnectionError,
    EngineIOError,
    NotRunningError,
    SocketIsClosedError,
    WebSocketClosedError,
)
from trio_engineio.protocol.client_session import (
    ClientEvent,
    ClientSession,
    ClientState,
    UpgradeReady,
)
from trio_engineio.protocol.handshake import Transport
from trio_engineio.protocol.packet import decode_frame, encode_frame
from trio_engineio.protocol.server_session import MessageReceived, SessionClosed, UpgradeAbandoned

__all__ = ["AsyncClient", "ClientWebSocket", "WebSocketConnector"]

default_logger = logging.getLogger("trio_engineio.client")

_USAGE = (
    "the client has no nursery: use it as `async with trio_engineio.AsyncClient() as client: await client.connect(url)`"
)

_MESSAGE_BUFFER = 256
"""Received messages waiting for a consumer; when full, the client stops reading."""
_SEND_BUFFER = 256
"""Packets waiting to be written; when full, :meth:`AsyncClient.send` waits."""

_Handler = TypeVar("_Handler", bound=Callable[..., Any])


class AsyncClient(AsyncHelpers):
    """An Engine.IO v4 client for Trio: long-polling over httpx, websocket over trio-websocket.

    The arguments are python-engineio's, with its defaults; an unknown keyword
    is a ``TypeError``. Use the client as an async context manager: it owns
    the nursery its connections and background tasks run in.

    Args:
        logger: ``True`` to log the client's activity at INFO level to the
            ``trio_engineio.client`` logger, ``False`` to log only errors, or a
            logger to log to: a :class:`logging.Logger`, a :class:`logging.LoggerAdapter`,
            a structlog logger, any object with ``debug``, ``info``, ``warning``,
            ``error`` and ``exception`` methods (anything else is a ``TypeError``).
        json: a module with ``dumps`` and ``loads`` used to encode ``dict``/``list``
            messages and decode received text; this client's only (unlike
            python-engineio, not a process-wide setting).
        request_timeout: seconds each HTTP request (and websocket connect or
            close) may take; a long-polling GET may take ``pingInterval`` more.
        http_session: an ``httpx.AsyncClient`` to send requests with (never
            closed by this client; give it an ``httpx.ASGITransport`` to talk
            to an ASGI app in memory), or a callable returning one (or an
            awaitable of one). By default the client makes its own, which
            keeps cookies across requests and reconnections and is closed
            when the ``async with`` block ends.
        ssl_verify: ``False`` to accept any TLS certificate.
        handle_sigint: accepted for compatibility and ignored: this client
            never installs signal handlers (Trio delivers ``KeyboardInterrupt``).
        websocket_extra_options: ``headers`` to add to the websocket
            handshake, and trio-websocket options (``subprotocols``,
            ``message_queue_size``, ``max_message_size`` (16 MiB by default),
            ``receive_buffer_size``); another key is a ``TypeError``.
        timestamp_requests: add a cache-busting ``t`` parameter to each request.
        websocket_connector: where the client's websockets come from, as
            ``transport=`` is for ``httpx.AsyncClient`` (an addition to
            python-engineio's API): a :class:`~trio_engineio.client.WebSocketConnector`.
            By default trio-websocket over TCP or TLS. With a connector of
            your own, ``ssl_verify`` and the trio-websocket options of
            ``websocket_extra_options`` are not used (its ``headers`` are).
            :func:`trio_engineio.testing.open_client` gives the client one
            that reaches an ASGI app in memory.

    Example::

        client = trio_engineio.AsyncClient()

        @client.on("message")
        async def on_message(data):
            print("received", data)

        async with client:
            await client.connect("http://localhost:5000")
            await client.send({"hello": "world"})
            await client.wait()
    """

    reason = CloseReason
    """The disconnection reasons (``reason.CLIENT_DISCONNECT``, ``SERVER_DISCONNECT``,
    ``PING_TIMEOUT``, ``TRANSPORT_ERROR``), as python-engineio's ``AsyncClient.reason``."""

    event_names = ("connect", "disconnect", "message")
    """The events :meth:`on` accepts."""

    def __init__(
        self,
        logger: bool | LoggerLike = False,
        json: Any = None,
        request_timeout: float = 5,
        http_session: httpx.AsyncClient | Callable[[], httpx.AsyncClient | Awaitable[httpx.AsyncClient]] | None = None,
        ssl_verify: bool = True,
        handle_sigint: bool = True,
        websocket_extra_options: Mapping[str, Any] | None = None,
        timestamp_requests: bool = True,
        *,
        websocket_connector: WebSocketConnector | None = None,
    ) -> None:
        self.handlers: dict[str, Callable[..., Any]] = {}
        self.state = "disconnected"
        """``'disconnected'``, ``'connected'`` (from the handshake on, before the ``connect`` handler runs) or
        ``'disconnecting'`` (the connection is closing, its ``disconnect`` handler yet to run), as in
        python-engineio. Read it; the client sets it."""
        self.sid: str | None = None
        """The session id the server gave the connection, ``None`` when not connected. Read it; the client sets it."""
        self.ssl_verify = ssl_verify
        self.handle_sigint = handle_sigint  # kept for python-engineio code that reads it; never acted on
        self.request_timeout = request_timeout
        self.timestamp_requests = timestamp_requests
        self.websocket_extra_options: dict[str, Any] = dict(websocket_extra_options or {})
        split_websocket_options(self.websocket_extra_options)  # a wrong key fails here, not mid-upgrade
        self.websocket_connector = websocket_connector
        self._json: Any = json if json is not None else _stdlib_json
        self.logger: LoggerLike = resolve_logger(logger, default_logger)
        self._verbose = bool(logger)  # a logger object, or True
        self._http: httpx.AsyncClient | None = None
        self._http_factory: Callable[[], httpx.AsyncClient | Awaitable[httpx.AsyncClient]] | None = None
        if isinstance(http_session, httpx.AsyncClient):
            self._http = http_session
        elif http_session is not None:
            self._http_factory = http_session
        self._owns_http = False
        self._nursery: trio.Nursery | None = None
        self._nursery_manager: Any = None
        self._connection: _Connection | None = None
        self._last_connection: _Connection | None = None
        self._connecting = False

    # -- lifetime ------------------------------------------------------------

    async def __aenter__(self) -> AsyncClient:
        """Open the client's nursery.

        Returns:
            The client.

        Raises:
            RuntimeError: the client is already in use in another ``async with`` block.

        Example::

            async with trio_engineio.AsyncClient() as client:
                await client.connect(url)
        """
        await trio.lowlevel.checkpoint()  # opening a nursery is none
        if self._nursery is not None:
            raise RuntimeError("this AsyncClient is already open in an `async with` block")
        manager = trio.open_nursery()
        self._nursery = await manager.__aenter__()
        self._nursery_manager = manager
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        """Disconnect (gracefully unless the block raised), cancel the background tasks, close what the client owns.

        Args:
            exc_type: the exception type, if the block raised.
            exc: the exception, if the block raised.
            tb: its traceback.

        Returns:
            ``False``: an exception from the block propagates unchanged.

        Example::

            async with client:
                await client.connect(url)
            # disconnected; no task of the client remains
        """
        nursery, manager = self._nursery, self._nursery_manager
        assert nursery is not None
        try:
            await self.disconnect(abort=exc is not None)
        finally:
            nursery.cancel_scope.cancel()
            try:
                await manager.__aexit__(None, None, None)
            finally:
                self._nursery = None
                self._nursery_manager = None
                if self._owns_http and self._http is not None:
                    with trio.CancelScope(shield=True):
                        await self._http.aclose()
                    self._http = None
                    self._owns_http = False
        return False

    # -- python-engineio API -------------------------------------------------

    @overload
    def on(self, event: str, handler: None = None) -> Callable[[_Handler], _Handler]: ...

    @overload
    def on(self, event: str, handler: _Handler) -> None: ...

    def on(self, event: str, handler: _Handler | None = None) -> Callable[[_Handler], _Handler] | None:
        """Register an event handler, directly or as a decorator.

        Handlers may be plain functions or ``async`` functions:

        - ``connect()``: after the server accepted the connection, before
          :meth:`connect` returns; if it raises, :meth:`connect` raises
          :class:`~trio_engineio.exceptions.ConnectionError`.
        - ``message(data)``: each message, in order, one at a time (text as
          python-engineio delivers it, see :meth:`receive`; ``bytes`` for binary).
          While a handler runs no other message is handled; start a
          background task for long work.
        - ``disconnect(reason)``: once, when the connection ended, with a
          :attr:`reason` member (a handler taking no argument is also accepted).

        Args:
            event: ``'connect'``, ``'message'`` or ``'disconnect'``.
            handler: the handler; omit it to use ``on`` as a decorator.

        Returns:
            The decorator when ``handler`` is omitted, else ``None``.

        Raises:
            ValueError: an unknown event name.

        Example::

            @client.on("message")
            def on_message(data):
                print(data)
        """
        if event not in self.event_names:
            raise ValueError("Invalid event")

        def set_handler(handler: _Handler) -> _Handler:
            self.handlers[event] = handler
            return handler

        if handler is None:
            return set_handler
        set_handler(handler)
        return None

    async def connect(
        self,
        url: str,
        headers: Mapping[str, str] | None = None,
        transports: str | Iterable[str] | None = None,
        engineio_path: str = "engine.io",
    ) -> None:
        """Connect to an Engine.IO server.

        With both transports allowed (the default) the client connects by
        long-polling, then upgrades to a websocket in the background, as the
        reference client does; ``transports=['websocket']`` connects by
        websocket only.

        Args:
            url: the server's URL (``http``, ``https``, ``ws`` or ``wss``); its
                query string is sent with every request.
            headers: headers to send with every request and the websocket handshake.
            transports: ``'polling'``, ``'websocket'`` or a list of them; the
                first one is used to connect.
            engineio_path: the server's Engine.IO endpoint.

        Raises:
            RuntimeError: outside ``async with client:``.
            ValueError: already connected, no valid transport given, or the
                URL's scheme is not http, https, ws or wss.
            ConnectionError: the server could not be reached, refused the
                handshake (``status_code`` and ``error_body`` hold its HTTP
                status and JSON body), answered nonsense, or the ``connect``
                handler raised.

        Example::

            async with trio_engineio.AsyncClient() as client:
                await client.connect("http://localhost:5000", transports=["websocket"])
        """
        try:
            if self._nursery is None:
                raise NotRunningError(_USAGE)
            if self.state != "disconnected" or self._connection is not None or self._connecting:
                raise ValueError("Client is not in a disconnected state")
            allowed = _valid_transports(transports)
            engineio_url(url, engineio_path, allowed[0])  # a bad URL scheme is a ValueError here
        except (RuntimeError, ValueError):
            await trio.lowlevel.checkpoint()  # refused, yet a checkpoint (starting the connection is one)
            raise
        self._connecting = True
        try:
            http = await self._http_client() if Transport.POLLING in allowed else self._http
            connection = _Connection(self, url, dict(headers or {}), allowed, engineio_path, http)
            self._connection = connection
            try:
                await self._nursery.start(connection.run)
            except BaseException:
                self._connection = None
                raise
            self._last_connection = connection
        finally:
            self._connecting = False

    async def wait(self) -> None:
        """Wait until the current connection ends (at once if not connected).

        Example::

            await client.connect(url)
            await client.wait()  # until the server or another task disconnects
        """
        connection = self._connection
        if connection is not None:
            await connection.done.wait()  # a checkpoint, even when already set
        else:
            await trio.lowlevel.checkpoint()

    async def send(self, data: str | bytes | bytearray | memoryview | dict[Any, Any] | list[Any]) -> None:
        """Send a message.

        It waits only when many packets are already waiting to be written.

        Args:
            data: ``str`` goes as text, bytes-like as binary, ``dict`` and
                ``list`` as JSON text (encoded with the ``json`` module given).

        Raises:
            SocketIsClosedError: not connected (python-engineio drops the
                message silently).
            TypeError: ``data`` is neither text nor bytes-like, and the JSON module cannot write it
                (the rule of :meth:`AsyncServer.send`).
            LocalProtocolError: text with a lone surrogate, which has no UTF-8 encoding.

        Example::

            await client.send({"op": "subscribe"})
        """
        connection = self._connection
        try:
            payload = self._encode(data)
            if connection is None or self.state != "connected":
                raise SocketIsClosedError("the client is not connected")
        except Exception:
            await trio.lowlevel.checkpoint()  # refused, yet a checkpoint (Trio's rule)
            raise
        await connection.send(payload)

    async def disconnect(self, abort: bool = False, reason: str | None = None) -> None:
        """Disconnect from the server; a no-op when not connected.

        The messages already sent and a CLOSE packet are delivered first
        (for at most ``request_timeout`` seconds), unless ``abort``. When it
        returns, the connection's tasks are over and the ``disconnect``
        handler has run (except when called from a handler of that very
        connection, which cannot wait for itself).

        Args:
            abort: drop what is waiting to be sent and close at once.
            reason: the reason the ``disconnect`` handler gets (default
                :attr:`reason` ``.CLIENT_DISCONNECT``), as in python-engineio; it has
                no effect when the connection had already ended for another reason.

        Example::

            await client.disconnect()
        """
        connection = self._connection
        if connection is not None:
            connection.request_close(abort, reason)
            if trio.lowlevel.current_task() not in connection.own_tasks:
                await connection.done.wait()  # a checkpoint, even when already set
                return
        # Not connected, or called from the connection's own handler (it cannot wait for
        # itself): still a checkpoint, as Trio's rule asks.
        await trio.lowlevel.checkpoint()

    def is_asyncio_based(self) -> bool:
        """``False``: this client is Trio-based (python-engineio's ``AsyncClient`` answers ``True``).

        Returns:
            ``False``.

        Example::

            assert not client.is_asyncio_based()
        """
        return False

    @property
    def current_transport(self) -> str | None:
        """python-engineio's name for :meth:`transport` (``'polling'``, ``'websocket'`` or ``None``).

        Example::

            print(client.current_transport)
        """
        return self.transport()

    @property
    def transports(self) -> list[str] | None:
        """The transports the last :meth:`connect` allowed, in order; ``None`` before any.

        Example::

            await client.connect(url, transports="websocket")
            assert client.transports == ["websocket"]
        """
        connection = self._connection or self._last_connection
        return None if connection is None else [t.value for t in connection.transports]

    def transport(self) -> str | None:
        """The name of the transport in use.

        With both transports allowed, it is ``'polling'`` right after
        :meth:`connect` returns and becomes ``'websocket'`` once the background
        upgrade has completed.

        Returns:
            ``'polling'``, ``'websocket'``, or ``None`` when not connected.

        Example::

            await client.connect(url, transports=["websocket"])
            assert client.transport() == "websocket"
        """
        connection = self._connection
        if connection is None or connection.session.state is ClientState.CONNECTING:
            return None
        return connection.session.transport.value

    async def receive(self) -> Any:
        """Receive the next message of the connection, in order (when no ``message`` handler is set).

        Text that is a JSON object or array is decoded, as python-engineio's
        client does, so ``'{"a": 1}'`` arrives as a ``dict``; any other text
        arrives as the exact ``str`` (python-engineio would also decode
        ``'null'`` or ``'"x"'``); binary arrives as ``bytes``. Messages received before the connection
        ended can still be received after it.

        Returns:
            The message.

        Raises:
            SocketIsClosedError: the connection ended and every message was received,
                or the client never connected.

        Example::

            await client.send("ping?")
            reply = await client.receive()
        """
        connection = self._last_connection
        if connection is None:
            await trio.lowlevel.checkpoint()
            raise SocketIsClosedError("the client is not connected")
        try:
            return await connection.inbox_receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            # receive() checked for cancellation but raises this without a scheduling point.
            await trio.lowlevel.cancel_shielded_checkpoint()
            raise SocketIsClosedError("the connection is closed") from None

    def __aiter__(self) -> AsyncIterator[Any]:
        """Iterate over the messages of the connection, in order, until it ends.

        This is the Trio-native alternative to a ``message`` handler (while a
        ``message`` handler is registered, messages go to it instead).
        Consume promptly: when 256 messages are waiting the client stops
        reading, and the server's pings go unanswered.

        Returns:
            An async iterator of messages, as :meth:`receive` returns them.

        Example::

            async with trio_engineio.AsyncClient() as client:
                await client.connect("http://localhost:5000")
                await client.send("hello")
                async for data in client:
                    if data == "bye":
                        await client.disconnect()
        """
        return _MessageIterator(self)

    def start_background_task(self, target: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> BackgroundTask:
        """Run ``target(*args, **kwargs)`` in the client's nursery.

        It is cancelled when the ``async with`` block ends; an exception it
        raises is logged and kept in the handle.

        Args:
            target: an async function.
            args: its positional arguments.
            kwargs: its keyword arguments.

        Returns:
            A :class:`~trio_engineio._concurrency.BackgroundTask` handle; ``await`` it for the result,
            ``cancel()`` it to stop it.

        Raises:
            RuntimeError: outside ``async with client:``.

        Example::

            task = client.start_background_task(heartbeat, 5)
        """
        if self._nursery is None:
            raise NotRunningError(_USAGE)
        return _start_background_task(self._nursery, self.logger, target, *args, **kwargs)

    # -- python-engineio's informational attributes ----------------------------

    @property
    def upgrades(self) -> list[str] | None:
        """The transports the server offered to upgrade to, while connected; else ``None``.

        Example::

            await client.connect(url, transports="polling")
            print(client.upgrades)  # ['websocket'] from a server that allows upgrades
        """
        info = self._connection.session.info if self._connection is not None else None
        return None if info is None else [t.value for t in info.upgrades]

    @property
    def ping_interval(self) -> float | None:
        """The server's ping interval in seconds (its ``pingInterval``), while connected; else ``None``.

        Example::

            await client.connect(url)
            assert client.ping_interval == 25.0  # a server with the default settings
        """
        info = self._connection.session.info if self._connection is not None else None
        return None if info is None else info.ping_interval

    @property
    def ping_timeout(self) -> float | None:
        """The server's ping timeout in seconds (its ``pingTimeout``), while connected; else ``None``.

        Example::

            await client.connect(url)
            assert client.ping_timeout == 20.0  # a server with the default settings
        """
        info = self._connection.session.info if self._connection is not None else None
        return None if info is None else info.ping_timeout

    # -- internals -------------------------------------------------------------

    def _info(self, message: str, *args: object) -> None:
        if self._verbose:
            self.logger.info(message, *args)

    async def _http_client(self) -> httpx.AsyncClient:
        if self._http is None:
            if self._http_factory is not None:
                made = self._http_factory()
                self._http = await made if inspect.isawaitable(made) else made
            else:
                self._http = httpx.AsyncClient(verify=self.ssl_verify)
                self._owns_http = True
        return self._http

    def _encode(self, data: object) -> str | bytes:
        return message_payload(self._json, data)  # the server's rule: refused here, not by the writer

    def _decode(self, data: str | bytes) -> Any:
        # As the server does (python-engineio would also turn "null" into None and '"x"' into 'x').
        return decode_message(self._json, data)

    async def _call(self, event: str, *args: Any) -> Any:
        handler = self.handlers.get(event)
        if handler is None:
            return None
        if event == "disconnect" and not accepts_arguments(handler, len(args), unknown=True):
            args = ()
        return await call_handler(handler, *args)

    async def _call_logged(self, event: str, *args: Any) -> None:
        try:
            await self._call(event, *args)
        except BaseException as exc:
            if is_fatal(exc):
                raise
            self.logger.exception("%s handler error", event)


class _MessageIterator:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    def __aiter__(self) -> _MessageIterator:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self._client.receive()
        except SocketIsClosedError:
            raise StopAsyncIteration from None


def _valid_transports(transports: str | Iterable[str] | None) -> list[Transport]:
    if transports is None:
        return [Transport.POLLING, Transport.WEBSOCKET]
    names = [transports] if isinstance(transports, str) else list(transports)
    valid = [Transport(name) for name in names if name in ("polling", "websocket")]
    if not valid:
        raise ValueError("No valid transports provided")
    return valid


class _Connection:
    """One connection: the session machine, its transports, and the tasks that drive them."""

    def __init__(
        self,
        client: AsyncClient,
        url: str,
        headers: dict[str, str],
        transports: list[Transport],
        engineio_path: str,
        http: httpx.AsyncClient | None,
    ) -> None:
        self.client = client
        self.url = url
        self.headers = headers
        self.transports = transports
        self.engineio_path = engineio_path
        self.http = http
        self.session = ClientSession(transports[0])
        self.polling: PollingTransport | None = None
        self.websocket: ClientWebSocket | None = None
        self.probe: ClientWebSocket | None = None
        self.own_tasks: set[trio.lowlevel.Task] = set()
        self.done = trio.Event()
        self._io_nursery: trio.Nursery | None = None
        self._socket_nursery: trio.Nursery | None = None
        self._changed = trio.Event()
        self._closing = trio.Event()
        self._finished = trio.Event()
        self._abort = False
        self.reported_reason: str | None = None
        """The reason given to :meth:`AsyncClient.disconnect`, reported instead of the session's."""
        self.inbox_send, self.inbox_receive = trio.open_memory_channel[Any](_MESSAGE_BUFFER)
        self._handler_send, self._handler_receive = trio.open_memory_channel[Any](_MESSAGE_BUFFER)

    # -- notifications -----------------------------------------------------------

    def _notify(self) -> None:
        """Wake the tasks waiting for the session to change."""
        self._changed.set()
        self._changed = trio.Event()
        if self.session.is_closed:
            self._closing.set()
            if self.client._connection is self and self.client.state == "connected":
                self.client.state = "disconnecting"
        if self.session.state is ClientState.CLOSED:
            self._finished.set()

    async def _wait_changed(self) -> None:
        await self._changed.wait()

    def _process(self, events: list[ClientEvent]) -> list[Any]:
        """Act on the session's events; return the messages to deliver, in order."""
        messages: list[Any] = []
        for event in events:
            if isinstance(event, MessageReceived):
                messages.append(event.data)
            elif isinstance(event, UpgradeReady):
                self._switch_to_websocket()
            elif isinstance(event, UpgradeAbandoned):
                self.client._info("WebSocket upgrade failed: %s", event.detail)
            elif isinstance(event, SessionClosed):
                self.client._info("Connection closed (%s): %s", event.reason, event.detail)
        self._notify()
        return messages

    async def _deliver(self, messages: list[Any]) -> None:
        for data in messages:
            decoded = self.client._decode(data)
            if "message" in self.client.handlers:
                await self._handler_send.send(decoded)
            else:
                await self.inbox_send.send(decoded)

    def _fail(self, exc: EngineIOError) -> None:
        if isinstance(exc, WebSocketClosedError) and exc.orderly:
            reason = CloseReason.SERVER_DISCONNECT
        else:
            reason = CloseReason.TRANSPORT_ERROR
        self._process(self.session.close(reason, str(exc)))

    # -- client requests ---------------------------------------------------------

    async def send(self, payload: str | bytes) -> None:
        # One checkpoint, before the message is queued (Cancelled means not sent): waiting
        # for room is one; with room, a cancel check and a scheduling point make one.
        await trio.lowlevel.checkpoint_if_cancelled()
        if self.session.send_queue_size < _SEND_BUFFER or self.session.is_closed:
            await trio.lowlevel.cancel_shielded_checkpoint()
        while self.session.send_queue_size >= _SEND_BUFFER and not self.session.is_closed:
            await self._wait_changed()
        self.session.send_message(payload)
        self._notify()

    def request_close(self, abort: bool, reason: str | None = None) -> None:
        if reason is not None and not self.session.is_closed:
            self.reported_reason = reason
        if abort:
            self._abort = True
            if self.session.state is not ClientState.CONNECTING:
                self.session.close(CloseReason.CLIENT_DISCONNECT, "the client disconnected")
            self.session.finish()
        else:
            self.session.close(CloseReason.CLIENT_DISCONNECT, "the client disconnected")
        self._notify()

    # -- the connection's life ---------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Handshake, report readiness, drive the connection until it closes, then tidy up."""
        client = self.client
        self.own_tasks.add(trio.lowlevel.current_task())
        failure: BaseException | None = None
        try:
            # The outer nursery holds the message dispatcher (it drains what was
            # received before the close) and trio-websocket's reader tasks
            # (they must outlive the I/O tasks to complete a polite close).
            async with trio.open_nursery() as outer_nursery:
                self._socket_nursery = outer_nursery
                outer_nursery.start_soon(self._dispatch_messages)
                try:
                    async with trio.open_nursery() as io_nursery:
                        self._io_nursery = io_nursery
                        try:
                            await self._handshake()
                        except EngineIOError as exc:
                            failure = exc
                            io_nursery.cancel_scope.cancel()
                        else:
                            task_status.started()
                            self._start_io_tasks(io_nursery)
                            await self._closing.wait()
                            if not self._finished.is_set():
                                with trio.move_on_after(client.request_timeout):
                                    await self._finished.wait()
                            io_nursery.cancel_scope.cancel()
                finally:
                    with trio.CancelScope(shield=True):
                        await self._close_transports()
                        self.session.finish()
                        self.inbox_send.close()
                        self._handler_send.close()
        finally:
            client._connection = None if client._connection is self else client._connection
            if client._connection is None:
                client.state = "disconnected"
                client.sid = None
            self.inbox_send.close()
            self._handler_send.close()
        if failure is not None:
            self.done.set()
            raise failure
        reason = self.reported_reason or self.session.close_reason or CloseReason.TRANSPORT_ERROR
        try:
            await client._call_logged("disconnect", reason)
        finally:
            self.done.set()

    async def _handshake(self) -> None:
        client = self.client
        transport = self.transports[0]
        url = engineio_url(self.url, self.engineio_path, transport)
        client._info("Attempting %s connection to %s", transport.value, url)
        now = trio.current_time
        if transport is Transport.POLLING:
            assert self.http is not None
            self.polling = PollingTransport(
                self.http,
                url,
                headers=self.headers,
                request_timeout=client.request_timeout,
                timestamp_requests=client.timestamp_requests,
            )
            packets = await self.polling.handshake()
            try:
                connected = self.session.receive_open(packets[0], now())
            except EngineIOError as exc:
                raise ConnectionError(f"OPEN packet not returned by server: {exc}") from exc
            self.polling.set_sid(connected.info.sid)
            extra = packets[1:]
        else:
            self.websocket = await self._open_websocket(url)
            try:
                frame = await self._receive_first_frame(self.websocket)
                connected = self.session.receive_open(decode_frame(frame), now())
            except EngineIOError as exc:
                raise ConnectionError(f"OPEN packet not returned by server: {exc}") from exc
            extra = []
        client._info("Connection accepted with %s", connected.info)
        client.state = "connected"
        client.sid = connected.info.sid
        try:
            await client._call("connect")
        except BaseException as exc:
            if is_fatal(exc):
                raise
            client.logger.exception("connect handler error")
            raise ConnectionError(f"Connect handler failed: {exc}") from exc
        if extra:
            events: list[ClientEvent] = []
            for packet in extra:
                events += self.session.receive_packet(packet, now())
            await self._deliver(self._process(events))

    async def _receive_first_frame(self, websocket: ClientWebSocket) -> str | bytes:
        with trio.move_on_after(self.client.request_timeout):
            return await websocket.receive()
        raise ConnectionError("no OPEN packet from the server in time")

    async def _open_websocket(self, url: str) -> ClientWebSocket:
        assert self._socket_nursery is not None
        client = self.client
        connector = client.websocket_connector
        if connector is None:
            # The TLS context is made only for wss:// (tens of milliseconds of CPU each).
            verify = client.ssl_verify
            connector = TrioWebSocketConnector(lambda: make_ssl_context(verify), client.websocket_extra_options)
        if client.timestamp_requests:
            url = timestamped(url)
        headers = websocket_handshake_headers(url, self.headers, self.http, client.websocket_extra_options)
        return await connector.connect(self._socket_nursery, url, headers=headers, time_limit=client.request_timeout)

    def _start_io_tasks(self, nursery: trio.Nursery) -> None:
        nursery.start_soon(self._watchdog)
        nursery.start_soon(self._writer)
        if self.session.transport is Transport.POLLING:
            nursery.start_soon(self._poll)
            if Transport.WEBSOCKET in self.transports and self.session.can_upgrade:
                nursery.start_soon(self._upgrade)
        else:
            assert self.websocket is not None
            nursery.start_soon(self._read_websocket, self.websocket)

    async def _close_transports(self) -> None:
        # A server that stopped answering gets no polite close handshake to wait for.
        polite = self.session.close_reason in (CloseReason.CLIENT_DISCONNECT, CloseReason.SERVER_DISCONNECT)
        for websocket in (self.probe, self.websocket):
            if websocket is not None:
                await websocket.aclose(polite=polite)

    # -- tasks -------------------------------------------------------------------

    async def _dispatch_messages(self) -> None:
        """Call the ``message`` handler for each message, in order (drains after the connection ends)."""
        self.own_tasks.add(trio.lowlevel.current_task())
        async for data in self._handler_receive:
            await self.client._call_logged("message", data)

    async def _watchdog(self) -> None:
        session = self.session
        while session.state is not ClientState.CLOSED:
            deadline = session.next_deadline()
            if deadline == math.inf:
                await self._wait_changed()
                continue
            await trio.sleep_until(deadline)
            self._process(session.handle_timeout(trio.current_time()))

    async def _writer(self) -> None:
        session = self.session
        while True:
            while not session.has_packets_to_send:
                if session.state is ClientState.CLOSED:
                    return
                if session.state is ClientState.CLOSING:  # the CLOSE packet is out
                    session.finish()
                    self._notify()
                    return
                await self._wait_changed()
            if session.transport is Transport.POLLING:
                body = session.begin_post()
                assert body is not None
                assert self.polling is not None
                try:
                    await self.polling.post(body)
                except EngineIOError as exc:
                    self._fail(exc)
                finally:
                    self._process(session.end_post())
            else:
                assert self.websocket is not None
                try:
                    for packet in session.packets_to_send():
                        await self.websocket.send(encode_frame(packet))
                except EngineIOError as exc:
                    self._fail(exc)
                self._notify()

    async def _poll(self) -> None:
        session = self.session
        assert self.polling is not None
        assert session.info is not None
        timeout = session.info.ping_interval + self.client.request_timeout
        while session.transport is Transport.POLLING and not session.is_closed:
            if not session.begin_get():
                await self._wait_changed()
                continue
            try:
                packets = await self.polling.get(timeout)
            except EngineIOError as exc:
                session.end_get()
                self._fail(exc)
                return
            events: list[ClientEvent] = []
            now = trio.current_time()
            for packet in packets:
                events += session.receive_packet(packet, now)
            # Every packet of the response reaches the session (pings are
            # answered) before messages are delivered, which may wait.
            await self._deliver(self._process(events))
            self._process(session.end_get())

    async def _read_websocket(self, websocket: ClientWebSocket) -> None:
        session = self.session
        while not session.is_closed:
            try:
                packet = decode_frame(await websocket.receive())
            except EngineIOError as exc:
                self._fail(exc)
                return
            await self._deliver(self._process(session.receive_packet(packet, trio.current_time())))

    async def _upgrade(self) -> None:
        """Probe a websocket while polling, as the reference client does; on any failure go on polling."""
        session = self.session
        assert session.sid is not None
        url = engineio_url(self.url, self.engineio_path, Transport.WEBSOCKET) + "&sid=" + session.sid
        self.client._info("Attempting WebSocket upgrade to %s", url)
        try:
            self.probe = await self._open_websocket(url)
        except EngineIOError as exc:
            self.client._info("WebSocket upgrade failed: %s", exc)
            return
        if session.can_upgrade:
            try:
                with trio.fail_after(self.client.request_timeout):
                    await self.probe.send(encode_frame(session.start_probe()))
                    packet = decode_frame(await self.probe.receive())
            except (EngineIOError, trio.TooSlowError) as exc:
                self._process(session.abandon_upgrade(f"the probe failed: {exc!r}"))
            else:
                self._process(session.receive_probe_packet(packet, trio.current_time()))
        if self.probe is not None and session.state is ClientState.OPEN:
            # Not upgraded (the websocket would have been taken): close the probe.
            probe, self.probe = self.probe, None
            await probe.aclose(polite=True)

    def _switch_to_websocket(self) -> None:
        assert self.probe is not None
        assert self._io_nursery is not None
        self.websocket, self.probe = self.probe, None
        self._io_nursery.start_soon(self._read_websocket, self.websocket)
        self.client._info("WebSocket upgrade was successful")
