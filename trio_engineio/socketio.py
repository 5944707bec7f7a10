"""Socket.IO on Trio: python-socketio's server and client, run on trio_engineio.

python-socketio builds its Engine.IO layer through ``_engineio_server_class()`` /
``_engineio_client_class()`` and talks to it only through python-engineio's API, which
trio_engineio reproduces. What remains asyncio-specific in python-socketio is replaced
here, by subclasses with python-socketio's names and signatures:

- :class:`AsyncServer`: python-socketio's ``AsyncServer`` on :class:`trio_engineio.AsyncServer`,
  with emits sent in order per recipient, broadcasts that never wait on a slow client,
  ``call()`` on Trio's timeouts, and every task in the engine server's nursery.
- :class:`AsyncManager`: the in-memory client manager those emits need.
- :class:`ASGIApp`: python-socketio's ``ASGIApp``, serving through :class:`trio_engineio.ASGIApp`
  (its lifespan runs the server; run it with ``hypercorn --worker-class trio``).
- :class:`AsyncClient`: python-socketio's ``AsyncClient`` on :class:`trio_engineio.AsyncClient`,
  used as an async context manager inside a Trio program.

Install it with ``pip install 'engineio-trio[socketio]'``. Supported: python-socketio
``>=5.12,<6`` (checked at import; seen working with 5.18.1). See :doc:`/socketio`.

Example::

    from trio_engineio import socketio

    sio = socketio.AsyncServer(cors_allowed_origins="*")
    app = socketio.ASGIApp(sio)  # hypercorn --worker-class trio module:app

    @sio.event
    async def chat(sid, text):
        await sio.emit("chat", text, skip_sid=sid)
"""

from __future__ import annotations

import collections
import contextlib
import importlib.metadata
import math
import random
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar, overload

import trio

from trio_engineio.asgi import ASGIApp as _EngineASGIApp
from trio_engineio.client import AsyncClient as _EngineClient
from trio_engineio.exceptions import CloseReason, QueueFull
from trio_engineio.exceptions import ConnectionError as _EngineConnectionError
from trio_engineio.server import AsyncServer as _EngineServer

SUPPORTED_VERSIONS = ">=5.12,<6"
"""The python-socketio versions this module supports (the ``socketio`` extra's range)."""

_MINIMUM = (5, 12)
_BELOW = (6, 0)


def _check_version() -> str:
    try:
        found = importlib.metadata.version("python-socketio")
    except importlib.metadata.PackageNotFoundError:
        raise ImportError(
            "trio_engineio.socketio needs python-socketio: pip install 'engineio-trio[socketio]'"
        ) from None
    try:
        numbers = tuple(int(part) for part in found.split(".")[:2])
    except ValueError:
        numbers = (0, 0)
    if not _MINIMUM <= numbers < _BELOW:
        raise ImportError(
            f"trio_engineio.socketio supports python-socketio {SUPPORTED_VERSIONS}, but {found} is installed: "
            f"pip install 'python-socketio{SUPPORTED_VERSIONS}' (or 'engineio-trio[socketio]')"
        )
    return found


PYTHON_SOCKETIO_VERSION = _check_version()
"""The installed python-socketio version."""

import socketio as _socketio  # noqa: E402  (after the version check, so a wrong version fails clearly)
from socketio import base_client as _base_client  # noqa: E402
from socketio import exceptions  # noqa: E402
from socketio import packet as _packet  # noqa: E402
from socketio.async_namespace import AsyncClientNamespace, AsyncNamespace  # noqa: E402

__all__ = [
    "ASGIApp",
    "AsyncClient",
    "AsyncClientNamespace",
    "AsyncManager",
    "AsyncNamespace",
    "AsyncServer",
    "PYTHON_SOCKETIO_VERSION",
    "SUPPORTED_VERSIONS",
    "exceptions",
]

_Pieces = list[Any]  # one Socket.IO packet, encoded: a str, then the binary attachments (bytes)


def _encode(pkt: Any) -> _Pieces:
    encoded = pkt.encode()
    return list(encoded) if isinstance(encoded, list) else [encoded]


def _event_data(data: Any) -> list[Any]:
    # python-socketio's rule: a tuple is several arguments, anything else but None is one.
    if isinstance(data, tuple):
        return list(data)
    if data is not None:
        return [data]
    return []


def _one_result(results: list[tuple[Any, ...]]) -> Any:
    args = results[0]
    return args if len(args) > 1 else args[0] if len(args) == 1 else None


class _Outbox:
    """One recipient's ordered sending: the lock a waiting send holds, and what waits behind it.

    A waiting send (``emit(to=sid)``, an ACK, CONNECT) holds ``lock`` while it queues its
    packets, so that no other event's packets can come between a binary event's header and
    its attachments. A broadcast, which must not wait, puts its packets in ``pending``
    instead; the lock's holder sends them, in order, before it lets go.
    """

    __slots__ = ("lock", "pending", "pending_count")

    def __init__(self) -> None:
        self.lock = trio.Lock()
        self.pending: collections.deque[_Pieces] = collections.deque()
        self.pending_count = 0


_H = TypeVar("_H", bound=Callable[..., Any])


class _TypedHandlers:
    """python-socketio's ``on`` and ``event``, typed: decorated handlers keep their types under mypy."""

    @overload
    def on(self, event: str, handler: None = None, namespace: str | None = None) -> Callable[[_H], _H]: ...

    @overload
    def on(self, event: str, handler: _H, namespace: str | None = None) -> None: ...

    def on(self, event: str, handler: _H | None = None, namespace: str | None = None) -> Callable[[_H], _H] | None:
        """Register an event handler, as a decorator or a call (python-socketio's ``on``).

        Args:
            event: the event name (``'connect'``, ``'disconnect'``, ``'*'`` for any, ...).
            handler: the handler; omit it to use ``on`` as a decorator.
            namespace: the namespace (``'/'`` by default; ``'*'`` for any).

        Returns:
            The decorator when ``handler`` is omitted, else ``None``.

        Example::

            @sio.on("chat")
            async def chat(sid, text): ...
        """
        result: Callable[[_H], _H] | None = super().on(event, handler, namespace)  # type: ignore[misc]
        return result

    @overload
    def event(self, handler: _H, /) -> _H: ...

    @overload
    def event(self, *, namespace: str | None = None) -> Callable[[_H], _H]: ...

    def event(self, *args: Any, **kwargs: Any) -> Any:
        """Register a handler named after its function (python-socketio's ``event``).

        Args:
            args: the handler, when used as ``@sio.event``.
            kwargs: ``namespace=``, when used as ``@sio.event(namespace="/chat")``.

        Returns:
            The handler, or the decorator.

        Example::

            @sio.event
            async def chat(sid, text): ...
        """
        return super().event(*args, **kwargs)  # type: ignore[misc]


_MAX_HANDLERS_PER_CLIENT = 64
"""Event handlers of one client running at once; its next events wait in its reader (backpressure)."""


class _Inbox:
    """One client's event handlers: tickets in arrival order, and whose turn it is to start."""

    __slots__ = ("changed", "issued", "running", "turn")

    def __init__(self) -> None:
        self.issued = 0
        self.turn = 0
        self.running = 0
        self.changed = trio.Event()

    def wake(self) -> None:
        self.changed.set()
        self.changed = trio.Event()


class AsyncManager(_socketio.AsyncManager):  # type: ignore[misc]
    """python-socketio's in-memory client manager, with emits that run on Trio.

    An emit addressed to one client (``to=sid``) waits for room in that client's outbound
    buffer, as :meth:`trio_engineio.AsyncServer.send` does. An emit addressed to a room, a
    list of rooms or everyone never waits: see :meth:`AsyncServer.emit` for the slow-consumer
    policy. Each recipient gets an event's packets in order (a binary event is a header
    packet plus one packet per attachment).

    To customise the manager, subclass this one: python-socketio's own ``AsyncManager`` and
    its message-queue managers (Redis, aio-pika, Kafka) start asyncio tasks.

    Example::

        sio = trio_engineio.socketio.AsyncServer(client_manager=trio_engineio.socketio.AsyncManager())
    """

    server: AsyncServer

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: Any = None,
        skip_sid: Any = None,
        callback: Callable[..., Any] | None = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        """Emit an event to one client, a room, a list of rooms or every client of a namespace.

        Args:
            event: the event name.
            data: the argument (a tuple for several).
            namespace: the namespace.
            room: a sid, a room name or a list of them; ``None`` for everyone.
            skip_sid: a sid or a list of sids not to send to.
            callback: called with the recipient's acknowledgement.
            to: an alias of ``room``.
            kwargs: ignored (python-socketio's message-queue options).

        Example::

            await sio.manager.emit("news", {"title": "..."}, "/", room="readers")
        """
        room = to or room
        server = self.server
        if namespace not in self.rooms:
            await trio.lowlevel.checkpoint()
            return
        args = [event, *_event_data(data)]
        skip = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        recipients = [(sid, eio_sid) for sid, eio_sid in self.get_participants(namespace, room) if sid not in skip]
        # One recipient named by its sid: wait for room, as send() does. Anyone else: never wait.
        single = isinstance(room, str) and room in self.rooms[namespace].get(None, {})  # a sid's own room
        shared = None if callback else _encode(server.packet_class(_packet.EVENT, namespace=namespace, data=args))
        for sid, eio_sid in recipients:
            if shared is not None:
                pieces = shared  # the same packet for everyone: encoded once
            else:
                ack_id = self._generate_ack_id(sid, callback)
                pieces = _encode(server.packet_class(_packet.EVENT, namespace=namespace, data=args, id=ack_id))
            if single:
                await server._send_pieces(eio_sid, pieces)
            else:
                server._send_pieces_nowait(eio_sid, pieces)
        if not (single and recipients):
            await trio.lowlevel.checkpoint()


class AsyncServer(_TypedHandlers, _socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio's ``AsyncServer``, run on :class:`trio_engineio.AsyncServer`.

    The arguments are python-socketio's (``client_manager``, ``logger``, ``json``,
    ``async_handlers``, ``always_connect``, ``namespaces``, ``serializer``, ...); the
    Engine.IO options go to :class:`trio_engineio.AsyncServer` (``ping_interval``,
    ``cors_allowed_origins``, ``outbound_buffer_size``, ``allow_request``, ...).

    Differences from python-socketio, all for Trio:

    - ``async_handlers=True`` runs each event's handler in its own task in the server's
      nursery, as python-socketio does, and starts one client's handlers in arrival order
      (each runs until it first waits before the next one starts), which Trio's scheduler
      alone would not do. At most 64 handlers of one client run at once; its next events
      wait (the client's reader waits: backpressure).
    - :meth:`emit` to a room or to everyone never waits on a slow client: see there.
    - ``call()`` waits with Trio's clock; its ``timeout`` may be ``None`` (wait until the
      acknowledgement comes; bound it yourself with ``trio.fail_after``).
    - ``client_manager`` must be an :class:`AsyncManager` (of this module): the message-queue
      managers are asyncio libraries. :meth:`instrument` (the Admin UI) is not available.

    Raises:
        TypeError: ``client_manager`` is not an :class:`AsyncManager` of this module.

    Example::

        sio = trio_engineio.socketio.AsyncServer(cors_allowed_origins="*")

        @sio.event
        async def connect(sid, environ, auth):
            if not auth or auth.get("token") != "secret":
                raise trio_engineio.socketio.exceptions.ConnectionRefusedError("bad token")

        @sio.on("chat")
        async def chat(sid, text):
            await sio.emit("chat", text, skip_sid=sid)
            return "ok"  # the sender's acknowledgement
    """

    eio: _EngineServer
    manager: AsyncManager

    def __init__(
        self,
        client_manager: AsyncManager | None = None,
        logger: Any = False,
        json: Any = None,
        async_handlers: bool = True,
        namespaces: Any = None,
        **kwargs: Any,
    ) -> None:
        if client_manager is None:
            client_manager = AsyncManager()
        elif not isinstance(client_manager, AsyncManager):
            raise TypeError(
                f"client_manager must be a trio_engineio.socketio.AsyncManager, not {type(client_manager).__name__}: "
                "python-socketio's managers start asyncio tasks, and its message-queue managers (Redis, aio-pika, "
                "Kafka) are asyncio libraries; run several processes behind sticky sessions instead (see the "
                "'Socket.IO on Trio' page of the docs)"
            )
        self._inboxes: dict[str, _Inbox] = {}
        self._outboxes: dict[str, _Outbox] = {}
        self._slow: set[str] = set()
        super().__init__(
            client_manager=client_manager,
            logger=logger,
            json=json,
            async_handlers=async_handlers,
            namespaces=namespaces,
            **kwargs,
        )

    def _engineio_server_class(self) -> type[_EngineServer]:
        return _EngineServer

    def attach(self, app: Any, socketio_path: str = "socket.io") -> _EngineASGIApp:
        """Serve Socket.IO beside an ASGI app.

        Args:
            app: the ASGI app that gets every other request and the lifespan events.
            socketio_path: the Socket.IO path.

        Returns:
            The ASGI app to serve (python-socketio returns nothing: use what this returns).

        Example::

            app = sio.attach(starlette_app)
        """
        return ASGIApp(self, other_asgi_app=app, socketio_path=socketio_path)

    async def emit(
        self,
        event: str,
        data: Any = None,
        to: Any = None,
        room: Any = None,
        skip_sid: Any = None,
        namespace: str | None = None,
        callback: Callable[..., Any] | None = None,
        ignore_queue: bool = False,
    ) -> None:
        """Emit an event to one client, a room, a list of rooms or every client (python-socketio's ``emit``).

        To one client (``to=sid``) it waits while that client's outbound buffer is full
        (``outbound_buffer_size`` packets), as :meth:`trio_engineio.AsyncServer.send` does.
        To a room, a list of rooms or everyone it never waits on a recipient: every
        recipient's packets are queued at once, and a recipient whose buffer is full (more
        than ``outbound_buffer_size`` packets waiting) is disconnected as a slow consumer
        (its ``disconnect`` handler gets ``'server disconnect'``, and a warning is logged);
        the others get the event. Each recipient gets every event's packets in order.

        Args:
            event: the event name.
            data: the argument (``str``, ``bytes``, ``list``, ``dict``; a tuple for several).
            to: a sid, a room or a list of them; ``None`` for everyone.
            room: an alias of ``to``.
            skip_sid: a sid or a list of sids not to send to.
            namespace: the namespace (``'/'`` by default).
            callback: called with the recipient's acknowledgement.
            ignore_queue: accepted for compatibility (there is no message queue).

        Example::

            await sio.emit("news", {"title": "..."})  # everyone; never held up by a slow client
            await sio.emit("private", b"\\x00", to=sid)  # waits if that client is behind
        """
        await super().emit(
            event,
            data=data,
            to=to,
            room=room,
            skip_sid=skip_sid,
            namespace=namespace,
            callback=callback,
            ignore_queue=ignore_queue,
        )

    async def call(
        self,
        event: str,
        data: Any = None,
        to: str | None = None,
        sid: str | None = None,
        namespace: str | None = None,
        timeout: float | None = 60,  # noqa: ASYNC109  (python-socketio's signature)
        ignore_queue: bool = False,
    ) -> Any:
        """Emit an event to one client and wait for its acknowledgement.

        Args:
            event: the event name.
            data: the argument (a tuple for several).
            to: the client's sid.
            sid: an alias of ``to``.
            namespace: the namespace.
            timeout: seconds to wait, or ``None`` to wait without a limit (put the call
                in ``trio.fail_after`` / ``trio.move_on_after`` yourself, the Trio way).
            ignore_queue: accepted for compatibility.

        Returns:
            What the client acknowledged with: ``None``, its one argument, or a tuple.

        Raises:
            ValueError: no recipient given (a broadcast cannot be called).
            RuntimeError: ``async_handlers=False`` (a handler would wait for itself).
            socketio.exceptions.TimeoutError: no acknowledgement within ``timeout``.

        Example::

            answer = await sio.call("question", "6*7?", to=sid, timeout=5)
        """
        if to is None and sid is None:
            raise ValueError("Cannot use call() to broadcast.")
        if not self.async_handlers:
            raise RuntimeError("Cannot use call() when async_handlers is False.")
        results: list[tuple[Any, ...]] = []
        acknowledged = trio.Event()

        def on_ack(*args: Any) -> None:
            results.append(args)
            acknowledged.set()

        await self.emit(event, data=data, room=to or sid, namespace=namespace, callback=on_ack)
        try:
            with trio.fail_after(math.inf if timeout is None else timeout):
                await acknowledged.wait()
        except trio.TooSlowError:
            raise exceptions.TimeoutError() from None
        return _one_result(results)

    def instrument(self, *args: Any, **kwargs: Any) -> Any:
        """Not available: the Socket.IO Admin UI needs python-engineio's internals.

        python-socketio's instrumentation replaces methods of python-engineio's server and
        reads its sockets' private state (transport, upgraded), which trio_engineio does not
        have; the Admin UI's clients are then refused.

        Raises:
            NotImplementedError: always.

        Example::

            sio.instrument(auth=False)  # NotImplementedError
        """
        raise NotImplementedError(
            "the Socket.IO Admin UI (instrument()) is not available on trio_engineio: python-socketio's "
            "instrumentation patches python-engineio's internals, which trio_engineio does not have"
        )

    # -- sending, in order per recipient ---------------------------------------------------

    async def _send_packet(self, eio_sid: str, pkt: Any) -> None:
        await self._send_pieces(eio_sid, _encode(pkt))

    async def _send_eio_packet(self, eio_sid: str, eio_pkt: Any) -> None:
        outbox = self._outbox(eio_sid)
        async with outbox.lock:
            await self.eio.send_packet(eio_sid, eio_pkt)
            await self._send_pending(eio_sid, outbox)

    def _outbox(self, eio_sid: str) -> _Outbox:
        outbox = self._outboxes.get(eio_sid)
        if outbox is None:
            outbox = self._outboxes[eio_sid] = _Outbox()
        return outbox

    async def _send_pieces(self, eio_sid: str, pieces: _Pieces) -> None:
        """Queue one packet's pieces for a client, waiting for room; nothing comes between them."""
        if eio_sid in self._slow or eio_sid not in self.eio.sockets:
            await trio.lowlevel.checkpoint()
            return
        outbox = self._outbox(eio_sid)
        async with outbox.lock:
            await self._send_in_order(eio_sid, pieces)
            await self._send_pending(eio_sid, outbox)

    async def _send_in_order(self, eio_sid: str, pieces: _Pieces) -> None:
        sent = 0
        try:
            for piece in pieces:
                await self.eio.send(eio_sid, piece)
                sent += 1
        finally:
            if 0 < sent < len(pieces):
                # Cancelled between a binary event's header and its last attachment: the
                # client's parser now waits for attachments no one will send. Drop it.
                self._drop(eio_sid, "its emit was cancelled in the middle of a binary event")

    async def _send_pending(self, eio_sid: str, outbox: _Outbox) -> None:
        try:
            while outbox.pending and eio_sid not in self._slow:
                pieces = outbox.pending.popleft()
                outbox.pending_count -= len(pieces)
                await self._send_in_order(eio_sid, pieces)
        finally:
            if outbox.pending:
                # Cancelled with broadcasts still waiting behind this send: queue them now or
                # drop the client, never lose them silently.
                while outbox.pending and eio_sid not in self._slow:
                    pieces = outbox.pending.popleft()
                    self._queue_nowait(eio_sid, pieces)
                outbox.pending.clear()
                outbox.pending_count = 0

    def _send_pieces_nowait(self, eio_sid: str, pieces: _Pieces) -> None:
        """Queue one packet's pieces for a client without waiting, or drop it as a slow consumer."""
        if eio_sid in self._slow:
            return
        outbox = self._outboxes.get(eio_sid)
        if outbox is not None and outbox.lock.locked():
            # A waiting send is between packets: go behind it, within the same bound.
            if outbox.pending_count + len(pieces) > self.eio.outbound_buffer_size:
                self._drop(eio_sid, f"more than {self.eio.outbound_buffer_size} packets waiting")
                return
            outbox.pending.append(pieces)
            outbox.pending_count += len(pieces)
            return
        self._queue_nowait(eio_sid, pieces)

    def _queue_nowait(self, eio_sid: str, pieces: _Pieces) -> None:
        for piece in pieces:
            try:
                self.eio.send_nowait(eio_sid, piece)
            except QueueFull:
                self._drop(eio_sid, f"its outbound buffer is full ({self.eio.outbound_buffer_size} packets)")
                return

    def _drop(self, eio_sid: str, why: str) -> None:
        """Disconnect a client that cannot keep up, in the background (nothing waits for it)."""
        if eio_sid in self._slow:
            return
        self._slow.add(eio_sid)
        self.logger.warning("Disconnecting %s as a slow consumer: %s", eio_sid, why)
        if self.eio.running:
            self.eio.start_background_task(self.eio.disconnect, eio_sid)

    # -- events ----------------------------------------------------------------------------

    async def _handle_event(self, eio_sid: str, namespace: str | None, id: Any, data: Any) -> None:  # noqa: A002
        namespace = namespace or "/"
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        self.logger.info('received event "%s" from %s [%s]', data[0], sid, namespace)
        if not self.manager.is_connected(sid, namespace):
            self.logger.warning("%s is not connected to namespace %s", sid, namespace)
            return
        if not self.async_handlers:
            await self._handle_event_internal(self, sid, eio_sid, data, namespace, id)
            return
        # As python-socketio: a task per event, so that a handler may wait (for an
        # acknowledgement, for another client) without holding up this client's next events.
        # Unlike Trio's scheduler, the tasks start in arrival order (see _run_event).
        inbox = self._inboxes.get(eio_sid)
        if inbox is None:
            inbox = self._inboxes[eio_sid] = _Inbox()
        while inbox.running >= _MAX_HANDLERS_PER_CLIENT:
            await inbox.changed.wait()  # this client's reader waits: backpressure, not unbounded tasks
        ticket = inbox.issued
        inbox.issued += 1
        inbox.running += 1
        try:
            self.start_background_task(self._run_event, inbox, ticket, sid, eio_sid, data, namespace, id)
        except BaseException:
            inbox.running -= 1
            raise

    async def _run_event(
        self,
        inbox: _Inbox,
        ticket: int,
        sid: str,
        eio_sid: str,
        data: Any,
        namespace: str,
        id: Any,  # noqa: A002
    ) -> None:
        """Run one event's handler once the previous event's handler has started."""
        try:
            while inbox.turn != ticket:
                await inbox.changed.wait()
            inbox.turn += 1
            inbox.wake()  # the next event's task may start when this handler first waits
            await self._handle_event_internal(self, sid, eio_sid, data, namespace, id)
        finally:
            inbox.running -= 1
            inbox.wake()

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any = None) -> None:
        try:
            await super()._handle_eio_disconnect(eio_sid, reason)
        finally:
            self._outboxes.pop(eio_sid, None)
            self._inboxes.pop(eio_sid, None)
            self._slow.discard(eio_sid)


class ASGIApp(_EngineASGIApp):
    """python-socketio's ``ASGIApp`` for :class:`AsyncServer`, run on Trio.

    Its lifespan runs the server (as :class:`trio_engineio.ASGIApp`'s does; python-socketio's
    answers lifespan itself, so the engine never starts). Serve it with
    ``hypercorn --worker-class trio module:app``.

    Args:
        socketio_server: the :class:`AsyncServer`.
        other_asgi_app: an ASGI app for every other request (and the lifespan events).
        static_files: python-engineio's static file mapping.
        socketio_path: the Socket.IO path (``None``: every request is Socket.IO's).
        on_startup: a callable (sync or async) run at lifespan startup.
        on_shutdown: a callable (sync or async) run at lifespan shutdown.
        kwargs: :class:`trio_engineio.ASGIApp`'s keyword-only options.

    Example::

        sio = trio_engineio.socketio.AsyncServer()
        app = trio_engineio.socketio.ASGIApp(sio, static_files={"/": "index.html"})
    """

    def __init__(
        self,
        socketio_server: AsyncServer,
        other_asgi_app: Any = None,
        static_files: dict[str, Any] | None = None,
        socketio_path: str | None = "socket.io",
        on_startup: Callable[[], Any] | None = None,
        on_shutdown: Callable[[], Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(socketio_server, AsyncServer):
            raise TypeError("socketio_server must be a trio_engineio.socketio.AsyncServer")
        self.socketio_server = socketio_server
        super().__init__(
            socketio_server.eio,
            other_asgi_app,
            static_files=static_files,
            engineio_path=socketio_path,
            on_startup=on_startup,
            on_shutdown=on_shutdown,
            **kwargs,
        )


class AsyncClient(_TypedHandlers, _socketio.AsyncClient):  # type: ignore[misc]
    """python-socketio's ``AsyncClient``, run on :class:`trio_engineio.AsyncClient` in a Trio program.

    The arguments are python-socketio's (``reconnection``, ``reconnection_attempts``,
    ``reconnection_delay``, ``logger``, ``serializer``, ...) and the Engine.IO client's
    (``request_timeout``, ``http_session`` (an ``httpx.AsyncClient``), ``ssl_verify``, ...).
    Use it as an async context manager: it owns the nursery its connection, its handlers
    and its reconnection task run in; leaving the block disconnects.

    Differences from python-socketio: ``handle_sigint`` is ``False`` by default and ignored
    (Trio delivers ``KeyboardInterrupt``); ``call()`` takes ``timeout=None``; the client
    reconnects after a transport error or a ping timeout, not after the server closed the
    connection (as python-socketio on python-engineio).

    Example::

        async with trio_engineio.socketio.AsyncClient() as sio:

            @sio.on("chat")
            async def chat(text):
                print(text)

            await sio.connect("http://localhost:8000", auth={"token": "secret"})
            print(await sio.call("echo", "hello"))
            await sio.disconnect()
    """

    eio: _EngineClient
    connected: bool
    namespaces: dict[str, str]
    failed_namespaces: list[str]
    callbacks: dict[str, Any]
    _connect_event: Any
    _reconnect_abort: Any
    _reconnect_task: Any

    def __init__(self, *args: Any, handle_sigint: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, handle_sigint=False, **kwargs)

    def _engineio_client_class(self) -> type[_EngineClient]:
        return _EngineClient

    async def __aenter__(self) -> AsyncClient:
        """Open the client's nursery (the Engine.IO client's).

        Returns:
            The client.

        Example::

            async with trio_engineio.socketio.AsyncClient() as sio:
                await sio.connect(url)
        """
        await self.eio.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        """Disconnect (gracefully unless the block raised), stop reconnecting, close the nursery.

        Args:
            exc_type: the exception type, if the block raised.
            exc: the exception, if the block raised.
            tb: its traceback.

        Returns:
            ``False``: an exception from the block propagates.

        Example::

            async with sio:
                await sio.connect(url)
            # disconnected; no task of the client remains
        """
        try:
            if exc is None:
                await self.shutdown()
        finally:
            await self.eio.__aexit__(exc_type, exc, tb)
        return False

    async def connect(
        self,
        url: Any,
        headers: Any = None,
        auth: Any = None,
        transports: Any = None,
        namespaces: Any = None,
        socketio_path: str = "socket.io",
        wait: bool = True,
        wait_timeout: float = 1,
        retry: bool = False,
    ) -> None:
        """Connect to a Socket.IO server (python-socketio's ``connect``).

        Args:
            url: the server's URL, or a callable returning it.
            headers: headers for every request, or a callable returning them.
            auth: the authentication data (usually a dict), or a callable returning it.
            transports: ``'polling'``, ``'websocket'`` or both (default: polling, then upgrade).
            namespaces: the namespaces to connect (default: those with handlers, else ``'/'``).
            socketio_path: the server's Socket.IO path.
            wait: return only when every namespace has connected (or failed).
            wait_timeout: how long to wait for that, in seconds.
            retry: on failure, try again as a reconnection would.

        Raises:
            socketio.exceptions.ConnectionError: already connected, the server refused, or a
                namespace failed to connect.
            RuntimeError: outside ``async with``.

        Example::

            await sio.connect("http://localhost:8000", auth={"token": "secret"}, transports=["websocket"])
        """
        if self.connected:
            raise exceptions.ConnectionError("Already connected")
        self.connection_url = url
        self.connection_headers = headers or {}
        self.connection_auth = auth
        self.connection_transports = transports
        self.socketio_path = socketio_path
        if namespaces is None:
            namespaces = list(set(self.handlers) | set(self.namespace_handlers))
            if "*" in namespaces:
                namespaces.remove("*")
            if not namespaces:
                namespaces = ["/"]
        elif isinstance(namespaces, str):
            namespaces = [namespaces]
        self.connection_namespaces = namespaces
        self.namespaces = {}
        self.failed_namespaces = []
        if self._connect_event is None:
            self._connect_event = self.eio.create_event()
        else:
            self._connect_event.clear()
        real_url = await self._get_real_value(self.connection_url)
        real_headers = await self._get_real_value(self.connection_headers)
        try:
            await self.eio.connect(real_url, headers=real_headers, transports=transports, engineio_path=socketio_path)
        except _EngineConnectionError as exc:
            for namespace in self.connection_namespaces:
                await self._trigger_event("connect_error", namespace, exc.args[1] if len(exc.args) > 1 else exc.args[0])
            if retry:
                await self._handle_reconnect()
                if self.eio.state == "connected":
                    return
            raise exceptions.ConnectionError(exc.args[0]) from exc
        if wait:
            with trio.move_on_after(wait_timeout):
                while True:
                    await self._connect_event.wait()
                    self._connect_event.clear()
                    if len(self.namespaces) + len(self.failed_namespaces) == len(self.connection_namespaces):
                        break
            if set(self.namespaces) != set(self.connection_namespaces):
                await self.disconnect()
                if self.failed_namespaces:
                    raise exceptions.ConnectionError(
                        "One or more namespaces failed to connect: " + ", ".join(self.failed_namespaces)
                    )
                raise exceptions.ConnectionError("Unexpected connection error")
        self.connected = True

    async def disconnect(self) -> None:
        """Disconnect from the server: DISCONNECT for each namespace, then the connection's close.

        The DISCONNECT packets are delivered before the connection closes (python-socketio
        5.12 to 5.17 abort the Engine.IO connection, which drops them), so the server's
        ``disconnect`` handlers see ``'client disconnect'``.

        Example::

            await sio.disconnect()
        """
        for namespace in self.namespaces:
            await self._send_packet(self.packet_class(_packet.DISCONNECT, namespace=namespace))
        await self.eio.disconnect()

    async def call(
        self,
        event: str,
        data: Any = None,
        namespace: str | None = None,
        timeout: float | None = 60,  # noqa: ASYNC109  (python-socketio's signature)
    ) -> Any:
        """Emit an event to the server and wait for its acknowledgement.

        Args:
            event: the event name.
            data: the argument (a tuple for several).
            namespace: the namespace.
            timeout: seconds to wait, or ``None`` to wait without a limit (use
                ``trio.fail_after`` around the call, the Trio way).

        Returns:
            What the server's handler returned: ``None``, one value, or a tuple.

        Raises:
            socketio.exceptions.TimeoutError: no acknowledgement within ``timeout``.

        Example::

            total = await sio.call("add", (1, 2), timeout=5)
        """
        results: list[tuple[Any, ...]] = []
        acknowledged = trio.Event()

        def on_ack(*args: Any) -> None:
            results.append(args)
            acknowledged.set()

        await self.emit(event, data=data, namespace=namespace, callback=on_ack)
        try:
            with trio.fail_after(math.inf if timeout is None else timeout):
                await acknowledged.wait()
        except trio.TooSlowError:
            raise exceptions.TimeoutError() from None
        return _one_result(results)

    async def _handle_disconnect(self, namespace: str | None) -> None:
        # The server disconnected a namespace. As python-socketio 5.18: once none is left, close
        # the connection politely (5.12 to 5.17 abort it, which on trio_engineio sends no CLOSE
        # and leaves the server's session waiting for its ping timeout).
        if not self.connected:
            return
        namespace = namespace or "/"
        await self._trigger_event("disconnect", namespace, self.reason.SERVER_DISCONNECT)
        await self._trigger_event("__disconnect_final", namespace)
        self.namespaces.pop(namespace, None)
        if not self.namespaces:
            self.connected = False
            await self.eio.disconnect()

    async def _handle_reconnect(self) -> None:
        if self._reconnect_abort is None:
            self._reconnect_abort = self.eio.create_event()
        self._reconnect_abort.clear()
        _base_client.reconnecting_clients.append(self)
        attempts = 0
        current_delay = self.reconnection_delay
        try:
            while True:
                delay = min(current_delay, self.reconnection_delay_max)
                current_delay *= 2
                delay += self.randomization_factor * (2 * random.random() - 1)
                self.logger.info(f"Connection failed, new attempt in {delay:.02f} seconds")
                with trio.move_on_after(max(delay, 0)):
                    await self._reconnect_abort.wait()
                if self._reconnect_abort.is_set():
                    self.logger.info("Reconnect task aborted")
                    for namespace in self.connection_namespaces:
                        await self._trigger_event("__disconnect_final", namespace=namespace)
                    break
                attempts += 1
                try:
                    await self.connect(
                        self.connection_url,
                        headers=self.connection_headers,
                        auth=self.connection_auth,
                        transports=self.connection_transports,
                        namespaces=self.connection_namespaces,
                        socketio_path=self.socketio_path,
                        retry=False,
                    )
                except (exceptions.ConnectionError, ValueError):
                    pass
                else:
                    self.logger.info("Reconnection successful")
                    self._reconnect_task = None
                    break
                if self.reconnection_attempts and attempts >= self.reconnection_attempts:
                    self.logger.info("Maximum reconnection attempts reached, giving up")
                    for namespace in self.connection_namespaces:
                        await self._trigger_event("__disconnect_final", namespace=namespace)
                    break
        finally:
            _base_client.reconnecting_clients.remove(self)

    async def _handle_eio_disconnect(self, reason: Any = None) -> None:
        # python-socketio asks python-engineio's state whether the drop was unexpected; here the
        # reason says it: reconnect after a transport error or a ping timeout, not after
        # either side closed the connection.
        self.logger.info("Engine.IO connection dropped")
        reason = reason or CloseReason.TRANSPORT_ERROR
        will_reconnect = self.reconnection and reason not in (
            CloseReason.CLIENT_DISCONNECT,
            CloseReason.SERVER_DISCONNECT,
        )
        if self.connected:
            for namespace in self.namespaces:
                await self._trigger_event("disconnect", namespace, reason)
                if not will_reconnect:
                    await self._trigger_event("__disconnect_final", namespace)
            self.namespaces = {}
            self.connected = False
        self.callbacks = {}
        self._binary_packet = None
        self.sid = None
        if will_reconnect and not self._reconnect_task:
            # RuntimeError: the client's `async with` block has ended, nothing to reconnect for.
            with contextlib.suppress(RuntimeError):
                self._reconnect_task = self.start_background_task(self._handle_reconnect)
