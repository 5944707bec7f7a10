"""Request validation and the handshake's OPEN packet.

An Engine.IO request is identified by its query string: ``EIO`` (the protocol
version, 4), ``transport`` (``polling`` or ``websocket``), ``sid`` once a
session exists, and ``j`` for JSONP polling. :func:`parse_request` turns a
request into an :class:`EngineIORequest` or raises :class:`HandshakeError`
carrying the reference server's error code and the HTTP status to answer.
"""

from __future__ import annotations

import enum
import functools
import json
from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import parse_qsl

from trio_engineio.exceptions import RemoteProtocolError
from trio_engineio.protocol.packet import Packet, PacketType

__all__ = [
    "EngineIORequest",
    "ErrorCode",
    "HandshakeError",
    "Transport",
    "error_body",
    "open_packet",
    "parse_request",
]

PROTOCOL_VERSION = "4"


class Transport(str, enum.Enum):
    """The transports of Engine.IO v4; their values are the ``transport`` query parameter.

    Example:
        >>> Transport("websocket") is Transport.WEBSOCKET, str(Transport.POLLING)
        (True, 'polling')
    """

    POLLING = "polling"
    WEBSOCKET = "websocket"

    def __str__(self) -> str:
        return self.value


class ErrorCode(enum.IntEnum):
    """The reference server's request error codes (the ``code`` of the JSON body).

    Example:
        >>> ErrorCode(1).name, ErrorCode(1).message
        ('UNKNOWN_SID', 'Session ID unknown')
    """

    UNKNOWN_TRANSPORT = 0
    UNKNOWN_SID = 1
    BAD_HANDSHAKE_METHOD = 2
    BAD_REQUEST = 3
    FORBIDDEN = 4
    UNSUPPORTED_PROTOCOL_VERSION = 5

    @property
    def message(self) -> str:
        """The reference server's message for this code.

        Example:
            >>> ErrorCode.FORBIDDEN.message
            'Forbidden'
        """
        return _ERROR_MESSAGES[self]


_ERROR_MESSAGES = {
    ErrorCode.UNKNOWN_TRANSPORT: "Transport unknown",
    ErrorCode.UNKNOWN_SID: "Session ID unknown",
    ErrorCode.BAD_HANDSHAKE_METHOD: "Bad handshake method",
    ErrorCode.BAD_REQUEST: "Bad request",
    ErrorCode.FORBIDDEN: "Forbidden",
    ErrorCode.UNSUPPORTED_PROTOCOL_VERSION: "Unsupported protocol version",
}


class HandshakeError(RemoteProtocolError):
    """A request that cannot be served, with the reference server's error code.

    Args:
        code: the :class:`ErrorCode`.
        detail: a human-readable reason, for logs.
        http_status: the HTTP status to answer with.

    Attributes:
        code: the :class:`ErrorCode`.
        detail: a human-readable reason, for logs (not sent to the client).

    Example:
        >>> error = HandshakeError(ErrorCode.UNKNOWN_SID, "sid 'abc'")
        >>> str(error), error.http_status, error_body(error.code)
        ("Session ID unknown: sid 'abc'", 400, b'{"code":1,"message":"Session ID unknown"}')
    """

    def __init__(self, code: ErrorCode, detail: str = "", *, http_status: int = 400) -> None:
        super().__init__(code.message, http_status=http_status, error_code=int(code))
        self.code = code
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.code.message}: {self.detail}" if self.detail else self.code.message


def error_body(code: ErrorCode, message: str | None = None) -> bytes:
    """The JSON body the reference server answers a refused request with, byte for byte.

    Args:
        code: the error code.
        message: the message, when not the code's own (the reference server sends the
            one its ``allowRequest`` gave).

    Returns:
        The compact JSON ``{"code": N, "message": "..."}``, UTF-8, as ``JSON.stringify``
        writes it (non-ASCII characters as they are).

    Example:
        >>> error_body(ErrorCode.UNKNOWN_TRANSPORT)
        b'{"code":0,"message":"Transport unknown"}'
        >>> error_body(ErrorCode.FORBIDDEN, "banned")
        b'{"code":4,"message":"banned"}'
    """
    text = json.dumps(
        {"code": int(code), "message": code.message if message is None else message},
        separators=(",", ":"),
        ensure_ascii=False,
    )
    # A lone surrogate has no UTF-8: backslashreplace writes it as the JSON escape \udXXX,
    # which is what JSON.stringify writes too.
    return text.encode("utf-8", "backslashreplace")


@dataclass(frozen=True, slots=True)
class EngineIORequest:
    """A validated Engine.IO request.

    Attributes:
        transport: the transport the request is for.
        sid: the session id, or ``None`` for a handshake.
        jsonp_index: the JSONP callback index (digits), or ``None`` for XHR polling.

    Example:
        >>> parse_request({"EIO": "4", "transport": "polling", "sid": "abc"}, method="POST", is_websocket=False)
        EngineIORequest(transport=<Transport.POLLING: 'polling'>, sid='abc', jsonp_index=None)
    """

    transport: Transport
    sid: str | None
    jsonp_index: str | None = None

    @property
    def is_handshake(self) -> bool:
        """Whether the request opens a new session (it has no ``sid``).

        Example:
            >>> parse_request({"EIO": "4", "transport": "polling"}, method="GET", is_websocket=False).is_handshake
            True
        """
        return self.sid is None


def parse_query(query_string: bytes | str) -> dict[str, str]:
    """Parse a URL query string; the first of repeated keys wins.

    Args:
        query_string: the raw query string (``bytes`` are decoded as Latin-1).

    Returns:
        The parameters; blank values are kept.

    Example:
        >>> parse_query(b"EIO=4&transport=polling&t=x&t=y")
        {'EIO': '4', 'transport': 'polling', 't': 'x'}
    """
    if isinstance(query_string, bytes):
        query_string = query_string.decode("latin-1")
    query: dict[str, str] = {}
    for key, value in parse_qsl(query_string, keep_blank_values=True):
        query.setdefault(key, value)
    return query


def parse_request(
    query: dict[str, str],
    *,
    method: str,
    is_websocket: bool,
    transports: Collection[Transport] = (Transport.POLLING, Transport.WEBSOCKET),
) -> EngineIORequest:
    """Validate an Engine.IO request, in the reference server's order.

    Args:
        query: the parsed query string (see :func:`parse_query`).
        method: the HTTP method (``"GET"`` for a websocket handshake).
        is_websocket: whether the request is a websocket connection.
        transports: the transports the server allows.

    Returns:
        The request's transport, sid and JSONP index.

    Raises:
        HandshakeError: with the code the reference server answers with. Whether
            the sid exists is for the caller to check (code 1).

    Example:
        >>> parse_request({"EIO": "4", "transport": "polling"}, method="GET", is_websocket=False)
        EngineIORequest(transport=<Transport.POLLING: 'polling'>, sid=None, jsonp_index=None)
    """
    try:
        transport = Transport(query.get("transport", ""))
    except ValueError:
        raise HandshakeError(ErrorCode.UNKNOWN_TRANSPORT, f"transport {query.get('transport')!r}") from None
    if transport not in transports:
        raise HandshakeError(ErrorCode.UNKNOWN_TRANSPORT, f"transport {transport.value!r} is disabled")
    sid = query.get("sid") or None
    if sid is None and method != "GET":
        raise HandshakeError(ErrorCode.BAD_HANDSHAKE_METHOD, f"a handshake must be a GET, not {method}")
    if is_websocket != (transport is Transport.WEBSOCKET):
        raise HandshakeError(ErrorCode.BAD_REQUEST, "transport does not match the kind of request")
    version = query.get("EIO")
    if version != PROTOCOL_VERSION and (sid is None or version is not None):
        raise HandshakeError(ErrorCode.UNSUPPORTED_PROTOCOL_VERSION, f"EIO={version!r}, this server speaks EIO=4")
    if method not in ("GET", "POST"):
        raise HandshakeError(ErrorCode.BAD_REQUEST, f"method {method} is not allowed")
    jsonp_index = query.get("j")
    if jsonp_index is not None and (
        transport is not Transport.POLLING or not jsonp_index.isdigit() or not jsonp_index.isascii()
    ):
        raise HandshakeError(ErrorCode.BAD_REQUEST, "the JSONP index 'j' must be a number")
    return EngineIORequest(transport, sid, jsonp_index)


def open_packet(
    sid: str,
    *,
    upgrades: Collection[Transport],
    ping_interval_ms: int,
    ping_timeout_ms: int,
    max_payload: int,
) -> Packet:
    """The OPEN packet that answers a handshake.

    Args:
        sid: the new session's id.
        upgrades: the transports the client may upgrade to.
        ping_interval_ms: the ``pingInterval`` to advertise, in milliseconds.
        ping_timeout_ms: the ``pingTimeout`` to advertise, in milliseconds.
        max_payload: the ``maxPayload`` to advertise, in bytes.

    Returns:
        The OPEN packet, its data the handshake's compact JSON.

    Example:
        >>> open_packet("abc", upgrades=[], ping_interval_ms=25000, ping_timeout_ms=20000, max_payload=1000000).data
        '{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'
    """
    settings = _open_settings(tuple(t.value for t in upgrades), ping_interval_ms, ping_timeout_ms, max_payload)
    return Packet(PacketType.OPEN, '{"sid":' + json.dumps(sid) + settings)


@functools.lru_cache(maxsize=16)
def _open_settings(upgrades: tuple[str, ...], ping_interval_ms: int, ping_timeout_ms: int, max_payload: int) -> str:
    """The OPEN packet's JSON after the sid: the same for every session of a server, so encoded once."""
    settings = {
        "upgrades": list(upgrades),
        "pingInterval": ping_interval_ms,
        "pingTimeout": ping_timeout_ms,
        "maxPayload": max_payload,
    }
    return "," + json.dumps(settings, separators=(",", ":"))[1:]
