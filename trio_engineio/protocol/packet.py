"""Engine.IO v4 packets and their encoding in one websocket frame.

A packet is a type (one digit on the wire) and its data. Text packets travel
as ``<digit><text>``; in v4 a binary message travels as the raw bytes of a
binary websocket frame, with no type byte (binary data is only ever a message).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from trio_engineio.exceptions import LocalProtocolError, UnknownPacketError

__all__ = ["Packet", "PacketType", "decode_frame", "encode_frame"]


class PacketType(enum.IntEnum):
    """The seven packet types of Engine.IO v4, valued as their wire digit."""

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
        """Whether the data is binary (``bytes``)."""
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
    """
    data = packet.data
    if isinstance(data, bytes):
        if packet.type is not PacketType.MESSAGE:
            raise LocalProtocolError(f"binary data is only allowed on a message, not {packet.type.name}")
        return data
    return _DIGIT_BY_TYPE[packet.type] + data


def decode_frame(frame: str | bytes) -> Packet:
    """Decode one websocket message into a packet.

    Args:
        frame: the text (``str``) or binary (``bytes``) message.

    Returns:
        The packet; a binary frame is always a binary ``MESSAGE``.

    Raises:
        UnknownPacketError: an empty text frame or an unknown type digit.
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
