"""Engine.IO v4 packets and their encoding in one websocket frame.

A packet is a type (one digit on the wire) and its data. Text packets travel
as ``<digit><text>``; in v4 a binary message travels as the raw bytes of a
binary websocket frame, with no type byte (binary data is only ever a message).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from trio_engineio.exceptions import LocalProtocolError, UnknownPacketError

__all__ = ["Packet", "PacketType", "check_sendable", "decode_frame", "encode_frame"]


class PacketType(enum.IntEnum):
    """The seven packet types of Engine.IO v4, valued as their wire digit.

    Example:
        >>> PacketType(4).name, int(PacketType.PONG)
        ('MESSAGE', 3)
    """

    OPEN = 0
    CLOSE = 1
    PING = 2
    PONG = 3
    MESSAGE = 4
    UPGRADE = 5
    NOOP = 6


@dataclass(frozen=True, slots=True)
class Packet:
    """One Engine.IO packet.

    Attributes:
        type: the packet type.
        data: the payload: ``str`` for text, ``bytes`` for binary (binary is
            only valid on a ``MESSAGE``).

    Example:
        >>> encode_frame(Packet(PacketType.MESSAGE, "hello"))
        '4hello'
    """

    type: PacketType
    data: str | bytes = ""

    @property
    def is_binary(self) -> bool:
        """Whether the data is binary (``bytes``).

        Example:
            >>> Packet(PacketType.MESSAGE, b"\\x01").is_binary
            True
        """
        return isinstance(self.data, bytes)


# Lookup tables instead of int()/str() conversions: this runs once per message.
_TYPE_BY_DIGIT: dict[str, PacketType] = {str(int(t)): t for t in PacketType}
_DIGIT_BY_TYPE: dict[PacketType, str] = {t: str(int(t)) for t in PacketType}


def encode_frame(packet: Packet) -> str | bytes:
    """Encode a packet as one websocket message.

    Args:
        packet: the packet to encode.

    Returns:
        ``str`` (a text frame) for a text packet, ``bytes`` (a binary frame)
        for a binary message.

    Raises:
        LocalProtocolError: binary data on a packet that is not a message.

    Example:
        >>> encode_frame(Packet(PacketType.PING, "probe"))
        '2probe'
        >>> encode_frame(Packet(PacketType.MESSAGE, b"\\x00\\x01"))
        b'\\x00\\x01'
    """
    data = packet.data
    if isinstance(data, bytes):
        if packet.type is not PacketType.MESSAGE:
            raise LocalProtocolError(f"binary data is only allowed on a message, not {packet.type.name}")
        return data
    return _DIGIT_BY_TYPE[packet.type] + data


def check_sendable(packet: Packet) -> None:
    """Check that a packet the application made can be encoded, before it is queued.

    Encoding happens later, in whichever task writes the packet (a polling GET,
    a websocket writer): a packet that cannot be encoded must be refused where
    it is sent, not fail there. The check costs O(1) for ASCII text.

    Args:
        packet: the packet.

    Raises:
        LocalProtocolError: text with a lone surrogate (it has no UTF-8 encoding),
            binary data on a packet that is not a message, or data that is
            neither ``str`` nor ``bytes``.

    Example:
        >>> check_sendable(Packet(PacketType.MESSAGE, "caf\\u00e9"))
        >>> check_sendable(Packet(PacketType.MESSAGE, "\\ud800"))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        trio_engineio.exceptions.LocalProtocolError: text with a lone surrogate ...
    """
    data = packet.data
    if isinstance(data, str):
        if not data.isascii():  # O(1) in CPython: a flag of the string
            try:
                data.encode()
            except UnicodeEncodeError as exc:
                raise LocalProtocolError(
                    f"text with a lone surrogate (at index {exc.start}) cannot be sent: it has no UTF-8 encoding"
                ) from None
    elif isinstance(data, bytes):
        if packet.type is not PacketType.MESSAGE:
            raise LocalProtocolError(f"binary data is only allowed on a message, not {packet.type.name}")
    else:
        raise LocalProtocolError(f"packet data must be str or bytes, not {type(data).__name__}")


def decode_frame(frame: str | bytes) -> Packet:
    """Decode one websocket message into a packet.

    Args:
        frame: the text (``str``) or binary (``bytes``) message.

    Returns:
        The packet; a binary frame is always a binary ``MESSAGE``.

    Raises:
        UnknownPacketError: an empty text frame or an unknown type digit.

    Example:
        >>> decode_frame("4hello")
        Packet(type=<PacketType.MESSAGE: 4>, data='hello')
        >>> decode_frame(b"\\xff")
        Packet(type=<PacketType.MESSAGE: 4>, data=b'\\xff')
    """
    if isinstance(frame, bytes):
        return Packet(PacketType.MESSAGE, frame)
    return decode_text_packet(frame)


def decode_text_packet(text: str) -> Packet:
    """Decode ``<digit><data>`` into a packet.

    Raises:
        UnknownPacketError: ``text`` is empty or starts with no packet type digit.
    """
    packet_type = _TYPE_BY_DIGIT.get(text[:1])
    if packet_type is None:
        shown = text[:10] + ("..." if len(text) > 10 else "")
        raise UnknownPacketError(f"invalid packet type in {shown!r}")
    return Packet(packet_type, text[1:])


def encode_text_packet(packet: Packet) -> str:
    """Encode a text packet as ``<digit><data>`` (callers handle binary)."""
    assert isinstance(packet.data, str)
    return _DIGIT_BY_TYPE[packet.type] + packet.data
