"""What the request handlers share: the server they serve, refusals, and response headers.

:mod:`trio_engineio._polling` and :mod:`trio_engineio._websocket` serve requests for an
:class:`~trio_engineio.AsyncServer` without importing it: they see it as a
:class:`ServerContext`, which keeps the imports pointing one way (``server`` above the
transport modules, see the ``layers`` contract in ``pyproject.toml``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from trio_engineio._http import Headers, Message, Send
from trio_engineio._logging import LoggerLike
from trio_engineio.exceptions import SocketIsClosedError
from trio_engineio.protocol import ErrorCode, HandshakeError, Packet, Transport

if TYPE_CHECKING:
    from trio_engineio._session import Session

__all__ = ["RequestRefused", "ServerContext", "checked_send", "refusal_message", "replace_headers"]


class ServerContext(Protocol):
    """The server as its request handlers use it (:class:`~trio_engineio.AsyncServer` is one)."""

    # Read-only here (properties), so that the server's narrower types fit.
    @property
    def logger(self) -> LoggerLike: ...

    @property
    def transports(self) -> Collection[Transport]: ...

    @property
    def allow_upgrades(self) -> bool: ...

    @property
    def max_http_buffer_size(self) -> int: ...

    @property
    def max_packets_per_post(self) -> int: ...

    @property
    def http_compression(self) -> bool: ...

    @property
    def compression_threshold(self) -> int: ...

    @property
    def close_timeout(self) -> float: ...

    @property
    def websocket_compression(self) -> bool: ...

    @property
    def _hypercorn_fast_path(self) -> bool: ...

    @property
    def _json(self) -> Any: ...

    @property
    def _sessions(self) -> Mapping[str, Session]: ...

    async def _open_session(self, transport: Transport, environ: dict[str, Any]) -> Session | None:
        """Start a session and run the connect handler; ``None`` if it refused."""

    def _open_packet(self, sid: str, transport: Transport) -> Packet: ...

    async def _check_allow_request(self, environ: dict[str, Any]) -> None:
        """Raises :class:`RequestRefused` when ``allow_request`` refuses a handshake."""

    def _origin_refused(self, environ: dict[str, Any]) -> bool: ...

    def _cors_headers(self, environ: dict[str, Any]) -> Headers: ...

    def _cookie_header(self, sid: str) -> Headers: ...

    async def _hook_headers(self, environ: dict[str, Any], *, initial: bool) -> Headers:
        """The headers the ``initial_headers``/``headers`` handlers set."""

    async def _trigger_connection_error(self, environ: dict[str, Any], code: ErrorCode, message: str) -> None: ...


class RequestRefused(HandshakeError):
    """``allow_request`` refused a handshake: 403, with its message in the JSON body."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.FORBIDDEN, f"refused by allow_request: {message}", http_status=403)
        self.message = message


def refusal_message(error: HandshakeError) -> str:
    """The ``message`` of a refusal's JSON body: the reference server's, or allow_request's own."""
    return error.message if isinstance(error, RequestRefused) else error.code.message


def replace_headers(headers: Headers, extra: Headers) -> Headers:
    """``headers`` with ``extra`` added; a name in ``extra`` replaces that name in ``headers``."""
    if not extra:
        return headers
    names = {name for name, _ in extra}
    return [header for header in headers if header[0] not in names] + extra


def checked_send(send: Send, closing: Callable[[], bool] | None = None) -> Send:
    """``send``, with any error it raises turned into :class:`SocketIsClosedError`.

    Once the client has gone, an ASGI server may raise from ``send`` (the spec
    asks for an ``OSError``; hypercorn raises other things too): all mean the
    same here, and none must escape back into the server. While ``closing()``,
    HTTP responses say ``Connection: close``.
    """

    async def checked(message: Message) -> None:
        if closing is not None and message["type"] == "http.response.start" and closing():
            message = {**message, "headers": [*message.get("headers", ()), (b"connection", b"close")]}
        try:
            await send(message)
        except Exception as exc:
            raise SocketIsClosedError("the client is gone") from exc

    return checked
