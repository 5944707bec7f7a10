"""The one exception tree of trio_engineio.

Every error the library raises on purpose derives from :class:`EngineIOError`.
Foreign errors (trio's, httpx's, trio-websocket's) are translated into this tree
at the transport edge, with the original kept as ``__cause__``.

The names python-engineio exports (``ContentTooLongError``,
``UnknownPacketError``, ``QueueEmpty``, ``SocketIsClosedError``,
``ConnectionError``) exist here with the same meaning, so ``except`` clauses
written for python-engineio keep working after the import changes.
"""

from __future__ import annotations

import enum

__all__ = [
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
    "WebSocketClosedError",
]

_NOT_GIVEN: object = object()


class CloseReason(str, enum.Enum):
    """Why a session ended, as reported to ``disconnect`` handlers.

    The values are python-engineio's reason strings, so code comparing against
    ``AsyncServer.reason.PING_TIMEOUT`` or a plain string works unchanged. The
    client reports ``SERVER_DISCONNECT``, ``CLIENT_DISCONNECT``, ``PING_TIMEOUT``
    and ``TRANSPORT_ERROR``; the server all five.

    Example::

        @eio.on("disconnect")
        def disconnect(sid, reason):
            if reason == trio_engineio.CloseReason.PING_TIMEOUT:  # == "ping timeout"
                print(sid, "stopped answering")
    """

    SERVER_DISCONNECT = "server disconnect"
    CLIENT_DISCONNECT = "client disconnect"
    PING_TIMEOUT = "ping timeout"
    TRANSPORT_CLOSE = "transport close"
    TRANSPORT_ERROR = "transport error"

    def __str__(self) -> str:
        return self.value


class EngineIOError(Exception):
    """Base class of every error raised by trio_engineio.

    Foreign errors (httpx's, trio-websocket's, ``OSError``) are translated into
    this tree where they occur, with the original as ``__cause__``, so one
    ``except`` clause covers everything the library raises.

    Example::

        try:
            await client.connect(url)
        except trio_engineio.EngineIOError as exc:
            print("cannot connect:", exc)
    """


class ProtocolError(EngineIOError):
    """The Engine.IO protocol was violated.

    Args:
        message: what was wrong; the class's ``default_message`` when left out
            (``UnknownPacketError()`` and ``ContentTooLongError()`` work, as in python-engineio).
        http_status: overrides the class's ``http_status``.
        error_code: overrides the class's ``error_code``.

    Attributes:
        message: what was wrong.
        http_status: the HTTP status an HTTP request that caused this should be
            answered with (400 unless a subclass says otherwise).
        error_code: the reference server's error code (0-5) for the JSON body
            ``{"code": N, "message": "..."}``, or ``None`` when the error is not
            about a request (a bad packet inside a live session).
        close_code: the websocket close code a websocket that carried this should be
            closed with (1002, protocol error, unless a subclass says otherwise).
        default_message: the message when none is given.

    Example::

        try:
            packet = decode_frame(frame)
        except ProtocolError as exc:
            status = exc.http_status  # 400
            code = exc.close_code  # 1002
    """

    http_status: int = 400
    error_code: int | None = None
    close_code: int = 1002
    default_message: str = "the Engine.IO protocol was violated"

    def __init__(
        self,
        message: str | None = None,
        *,
        http_status: int | None = None,
        error_code: int | None = None,
    ) -> None:
        if message is None:
            message = self.default_message
        super().__init__(message)
        self.message = message
        if http_status is not None:
            self.http_status = http_status
        if error_code is not None:
            self.error_code = error_code


class RemoteProtocolError(ProtocolError):
    """The peer broke the protocol (a malformed packet, a bad request, ...).

    The session that received it is closed; other sessions are unaffected.

    Example:
        >>> from trio_engineio.protocol import decode_frame
        >>> decode_frame("9nonsense")
        Traceback (most recent call last):
        ...
        trio_engineio.exceptions.UnknownPacketError: invalid packet type in '9nonsense'
    """


class LocalProtocolError(ProtocolError):
    """This side tried something the protocol does not allow (a usage error).

    Example:
        >>> from trio_engineio.protocol import Packet, PacketType, encode_frame
        >>> encode_frame(Packet(PacketType.PING, b"binary"))
        Traceback (most recent call last):
        ...
        trio_engineio.exceptions.LocalProtocolError: binary data is only allowed on a message, not PING
    """


class UnknownPacketError(RemoteProtocolError):
    """A packet could not be decoded (python-engineio's name).

    Example::

        except trio_engineio.UnknownPacketError:  # a subclass of RemoteProtocolError
            ...
    """

    default_message = "the packet could not be decoded"


class ContentTooLongError(RemoteProtocolError):
    """A body or message exceeded the configured size limit (python-engineio's name).

    Its :attr:`http_status` is 413 and its :attr:`close_code` 1009 (message too big):
    the server answers an oversize POST with 413, closes a websocket that carried an
    oversize message with 1009, and closes the session.

    Example::

        except trio_engineio.ContentTooLongError as exc:
            assert (exc.http_status, exc.close_code) == (413, 1009)
    """

    http_status = 413
    close_code = 1009
    default_message = "the content exceeds the size limit"


class SocketIsClosedError(EngineIOError):
    """The session or transport is closed; nothing more can be sent on it.

    :meth:`AsyncClient.send <trio_engineio.AsyncClient.send>` raises it when not
    connected, and :meth:`AsyncClient.receive <trio_engineio.AsyncClient.receive>`
    once the connection has ended and every message was received.

    Example::

        try:
            await client.send("hello")
        except trio_engineio.SocketIsClosedError:
            await client.connect(url)
    """


class QueueEmpty(EngineIOError):
    """Raised by ``get_nowait`` on an empty queue from ``create_queue``.

    It is what ``get_queue_empty_exception()`` returns, as in python-engineio.

    Example::

        queue = eio.create_queue()
        try:
            item = queue.get_nowait()
        except eio.get_queue_empty_exception():  # trio_engineio.QueueEmpty
            item = None
    """


class QueueFull(EngineIOError):
    """A ``*_nowait`` call found no room: nothing was queued.

    :meth:`AsyncServer.send_nowait <trio_engineio.AsyncServer.send_nowait>` raises it
    when the session's outbound buffer is full (a client that does not keep up), and
    ``put_nowait`` on a full queue from ``create_queue`` (``asyncio.QueueFull``'s counterpart).

    Example::

        try:
            eio.send_nowait(sid, "tick")
        except trio_engineio.QueueFull:
            await eio.disconnect(sid)  # this client cannot keep up

        queue = eio.create_queue(maxsize=1)
        queue.put_nowait("a")
        try:
            queue.put_nowait("b")
        except trio_engineio.QueueFull:
            pass
    """


class NotRunningError(EngineIOError, RuntimeError):
    """A server or client was used outside the scope that runs it.

    An :class:`~trio_engineio.AsyncServer` runs inside ``async with server:`` or the ASGI
    lifespan of its :class:`~trio_engineio.ASGIApp`; an :class:`~trio_engineio.AsyncClient`
    inside ``async with client:``. Starting a session or a background task outside raises
    this, with a message that says how to run it. It is also a :class:`RuntimeError`, as
    misuse of an object's lifecycle is in the standard library.

    Example::

        client = trio_engineio.AsyncClient()
        try:
            client.start_background_task(work)
        except trio_engineio.NotRunningError as exc:
            print(exc)  # the client has no nursery: use it as `async with ...`
    """


class TaskCancelledError(EngineIOError):
    """The background task was cancelled: its ``result()`` and ``exception()`` raise this.

    asyncio raises ``asyncio.CancelledError`` there. On Trio, cancellation is the
    business of the cancel scope that was cancelled, and raising ``trio.Cancelled``
    in another task would cancel that task's code instead; so a cancelled task's
    outcome is this ordinary error, which an ``except Exception`` also catches.
    ``await task`` returns ``None`` for a cancelled task rather than raising.

    Example::

        task.cancel()
        await task  # None
        try:
            task.result()
        except trio_engineio.TaskCancelledError:
            assert task.cancelled()
    """


class InvalidStateError(EngineIOError):
    """A background task's ``result()`` or ``exception()`` was asked for before it finished.

    The counterpart of ``asyncio.InvalidStateError``: check ``task.done()`` first,
    or ``await task``.

    Example::

        task = eio.start_background_task(compute)
        try:
            task.result()
        except trio_engineio.InvalidStateError:
            result = await task
    """


class ConnectionError(EngineIOError):  # noqa: A001  (python-engineio's public name)
    """A client could not connect, or lost its connection.

    It deliberately shadows the builtin inside this module only, because
    python-engineio users write ``except engineio.exceptions.ConnectionError``;
    it is *not* a subclass of the builtin ``ConnectionError``.

    As in python-engineio, a refused handshake puts the server's body second in
    ``args``: ``ConnectionError("Unexpected status code 401 ...", body)``, so code
    reading ``exc.args[1]`` (python-socketio does) keeps working. ``str(exc)`` is
    the message alone.

    Args:
        message: what happened.
        error_body: the decoded JSON body of a refused handshake (``None`` when it
            was not JSON); when given, even as ``None``, it is ``args[1]``.
        status_code: the HTTP status of a refused handshake.

    Attributes:
        status_code: the HTTP status of a refused handshake, when there was one.
        error_body: the decoded JSON body of a refused handshake, when there was one.

    Example::

        try:
            await client.connect(url)
        except trio_engineio.ConnectionError as exc:
            if exc.status_code == 401:
                print("refused:", exc.error_body)  # what the server's connect handler returned
                assert exc.args[1] == exc.error_body  # python-engineio's place for it
    """

    def __init__(
        self,
        message: str = "",
        error_body: object = _NOT_GIVEN,
        *,
        status_code: int | None = None,
    ) -> None:
        if error_body is _NOT_GIVEN:
            super().__init__(message)
            error_body = None
        else:
            super().__init__(message, error_body)
        self.status_code = status_code
        self.error_body = error_body

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class WebSocketClosedError(ConnectionError):
    """A client's websocket closed; ``orderly`` tells a deliberate close by the server from a failure.

    :class:`~trio_engineio.AsyncClient`'s websocket transports raise it (see
    :class:`~trio_engineio.client.ClientWebSocket`); the client reports an orderly
    close as ``SERVER_DISCONNECT`` and any other as ``TRANSPORT_ERROR``.

    Args:
        message: what happened.
        code: the websocket close code, if a close frame was received.

    Attributes:
        code: the websocket close code, if a close frame was received.
        orderly: whether the server closed it on purpose (codes 1000, 1001, 1005).

    Example::

        raise WebSocketClosedError("the websocket closed with code 1000", code=1000)
    """

    ORDERLY_CLOSE_CODES = frozenset({1000, 1001, 1005})
    """Close codes that mean "the server ended the connection on purpose" (normal closure,
    going away, and a close frame with no status at all)."""

    def __init__(self, message: str, *, code: int | None) -> None:
        super().__init__(message)
        self.code = code
        self.orderly = code in self.ORDERLY_CLOSE_CODES
