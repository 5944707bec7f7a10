"""python-engineio's ``engineio.packet`` module, for code written against it.

:class:`Packet` has python-engineio's constructor, constants, attributes and
``encode()``/``decode()``, so code that builds packets the python-engineio way
(python-socketio does, to send an encoded message once to many clients) keeps
working: :meth:`AsyncServer.send_packet <trio_engineio.AsyncServer.send_packet>`
takes these objects, python-engineio's own, and
:class:`trio_engineio.protocol.Packet`. The encoding is the sans-IO core's
(:mod:`trio_engineio.protocol.packet`); this module does no I/O and imports no Trio.

Example:
    >>> from trio_engineio import packet
    >>> packet.Packet(packet.MESSAGE, {"a": 1}).encode()
    '4{"a":1}'
    >>> packet.Packet(encoded_packet="4hello").data
    'hello'
"""

from __future__ import annotations

import json as _stdlib_json
from typing import Any, Protocol

from trio_engineio._json import decode_message, encode_json
from trio_engineio.exceptions import EngineIOError, LocalProtocolError
from trio_engineio.protocol import packet as _protocol
from trio_engineio.protocol.packet import PacketType
from trio_engineio.protocol.payload import decode_payload, encode_payload_packet

__all__ = [
    "CLOSE",
    "MESSAGE",
    "NOOP",
    "OPEN",
    "PING",
    "PONG",
    "UPGRADE",
    "Packet",
    "PacketLike",
    "binary_types",
    "packet_names",
    "to_protocol_packet",
]

OPEN, CLOSE, PING, PONG, MESSAGE, UPGRADE, NOOP = (int(t) for t in PacketType)
packet_names = [t.name for t in PacketType]
"""The packet type names, indexed by type: ``packet_names[MESSAGE] == 'MESSAGE'``."""
binary_types = (bytes, bytearray)
"""The data types sent as binary."""


class PacketLike(Protocol):
    """What :meth:`AsyncServer.send_packet <trio_engineio.AsyncServer.send_packet>` takes besides
    :class:`trio_engineio.protocol.Packet`: an object with python-engineio's packet attributes.

    :class:`Packet` and python-engineio's ``engineio.packet.Packet`` are such objects.

    Example::

        class MyPacket:
            packet_type = trio_engineio.packet.MESSAGE
            data = "hello"

        await eio.send_packet(sid, MyPacket())
    """

    @property
    def packet_type(self) -> int:
        """The packet type, ``0`` (OPEN) to ``6`` (NOOP)."""

    @property
    def data(self) -> Any:
        """``str``, bytes-like, ``dict``, ``list`` or ``None``."""


class Packet:
    """One Engine.IO packet, as python-engineio's ``engineio.packet.Packet`` makes it.

    Args:
        packet_type: the type, one of this module's constants (``MESSAGE``, ...).
        data: ``str`` (text), ``bytes``/``bytearray`` (binary, a ``MESSAGE`` only),
            a ``dict`` or ``list`` (sent as JSON text), or ``None`` (no data).
        encoded_packet: decode this instead (see :meth:`decode`).

    Attributes:
        packet_type: the type, an ``int``.
        data: the data.
        binary: whether the data is binary.

    Raises:
        ValueError: binary data on a packet that is not a ``MESSAGE``, or an
            ``encoded_packet`` that is not a packet.

    Differences from python-engineio, each to send nothing the peer would misread:
    ``encode()`` refuses data of any other type (``TypeError``; python-engineio sends
    ``str(data)``), decoding turns only a JSON object or array into data, as the
    server does with messages (python-engineio also turns ``"true"`` into ``True``),
    and ``encode()`` keeps no cache (python-engineio returns the first encoding even
    after ``data`` changed).

    Example:
        >>> Packet(PING, "probe").encode()
        '2probe'
        >>> Packet(MESSAGE, b"\\x01").encode(b64=True)
        'bAQ=='
    """

    json: Any = _stdlib_json
    """The module with ``dumps``/``loads`` for ``dict``/``list`` data. The server
    never changes it (python-engineio's sets it process-wide): it encodes such data
    with its own ``json=`` module."""

    def __init__(self, packet_type: int = NOOP, data: Any = None, encoded_packet: str | bytes | None = None) -> None:
        self.packet_type = packet_type
        self.data = data
        self.binary = isinstance(data, binary_types)
        if self.binary and self.packet_type != MESSAGE:
            raise ValueError("Binary packets can only be of type MESSAGE")
        if encoded_packet is not None:
            self.decode(encoded_packet)

    def __repr__(self) -> str:
        name = packet_names[self.packet_type] if self.packet_type in range(len(packet_names)) else self.packet_type
        return f"<trio_engineio.packet.Packet {name} {self.data!r}>"

    def encode(self, b64: bool = False) -> str | bytes:
        """Encode the packet for a websocket frame or, with ``b64``, for a polling payload.

        Args:
            b64: write binary data as ``b`` and base64 (the polling form).

        Returns:
            ``<digit><text>``, or the raw ``bytes`` of a binary message (without ``b64``).

        Raises:
            TypeError: data that is not ``str``, bytes-like, ``dict``, ``list`` or ``None``.
            ValueError: an unknown packet type, binary data on a packet that is not
                a message, or text with no UTF-8 encoding (a lone surrogate).

        Example:
            >>> Packet(MESSAGE, [1, 2]).encode()
            '4[1,2]'
        """
        try:
            packet = to_protocol_packet(self, self.json)
            _protocol.check_sendable(packet)
            return encode_payload_packet(packet) if b64 else _protocol.encode_frame(packet)
        except LocalProtocolError as exc:
            raise ValueError(str(exc)) from exc

    def decode(self, encoded_packet: str | bytes) -> None:
        """Set this packet from its encoding: a websocket frame, or one packet of a polling payload.

        Args:
            encoded_packet: ``<digit><text>``, ``b`` and base64, or binary bytes.

        Raises:
            ValueError: an empty or unknown encoding.

        Example:
            >>> packet = Packet(encoded_packet='4{"n":1}')
            >>> packet.packet_type == MESSAGE, packet.data
            (True, {'n': 1})
        """
        try:
            if isinstance(encoded_packet, bytes | bytearray | memoryview):
                decoded = _protocol.decode_frame(bytes(encoded_packet))
            else:
                (decoded,) = decode_payload(encoded_packet)  # the text form, or "b" and base64
        except (EngineIOError, ValueError) as exc:
            raise ValueError(f"invalid packet {encoded_packet[:20]!r}: {exc}") from exc
        self.packet_type = int(decoded.type)
        self.binary = decoded.is_binary
        self.data = decode_message(self.json, decoded.data)


def to_protocol_packet(pkt: object, json: Any = None) -> _protocol.Packet:
    """The :class:`trio_engineio.protocol.Packet` that a packet object stands for.

    :meth:`AsyncServer.send_packet <trio_engineio.AsyncServer.send_packet>` sends any
    packet through it: a :class:`trio_engineio.protocol.Packet` is returned as is;
    anything else with ``packet_type`` and ``data`` attributes (this module's
    :class:`Packet`, python-engineio's) is converted.

    Args:
        pkt: the packet.
        json: the module that encodes ``dict``/``list`` data (default the standard library's).

    Returns:
        The protocol packet. It may still be unsendable (binary data on a control
        packet, a lone surrogate): :func:`~trio_engineio.protocol.packet.check_sendable` says.

    Raises:
        TypeError: ``pkt`` is not a packet, or its data is not ``str``, bytes-like,
            ``dict``, ``list`` or ``None``.
        LocalProtocolError: its ``packet_type`` is not an Engine.IO packet type.

    Example:
        >>> to_protocol_packet(Packet(MESSAGE, {"a": 1}))
        Packet(type=<PacketType.MESSAGE: 4>, data='{"a":1}')
    """
    if isinstance(pkt, _protocol.Packet):
        return pkt
    try:
        packet_type = pkt.packet_type  # type: ignore[attr-defined]
        data = pkt.data  # type: ignore[attr-defined]
    except AttributeError:
        raise TypeError(
            f"cannot send a {type(pkt).__module__}.{type(pkt).__qualname__}: a packet is a "
            "trio_engineio.protocol.Packet, or an object with packet_type and data attributes "
            "(trio_engineio.packet.Packet, engineio.packet.Packet)"
        ) from None
    try:
        kind = PacketType(packet_type)
    except ValueError:
        raise LocalProtocolError(f"{packet_type!r} is not an Engine.IO packet type (0 to 6)") from None
    if data is None:
        return _protocol.Packet(kind)
    if isinstance(data, str | bytes):
        return _protocol.Packet(kind, data)
    if isinstance(data, bytearray | memoryview):
        return _protocol.Packet(kind, bytes(data))
    if isinstance(data, dict | list):
        return _protocol.Packet(kind, encode_json(_stdlib_json if json is None else json, data))
    raise TypeError(f"cannot send packet data of type {type(data).__name__}: use str, bytes, dict, list or None")
