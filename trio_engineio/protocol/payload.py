"""Polling payloads: several packets in one HTTP body.

In v4 the packets of a body are joined with the record separator ``\\x1e``;
a binary message is written ``b`` followed by the base64 of its bytes. JSONP
responses wrap the payload in a JavaScript call, and JSONP POSTs carry it in
a ``d=`` form field.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Sequence
from urllib.parse import parse_qs

from trio_engineio.exceptions import LocalProtocolError, RemoteProtocolError, UnknownPacketError
from trio_engineio.protocol.handshake import ErrorCode
from trio_engineio.protocol.packet import Packet, PacketType, decode_text_packet, encode_text_packet

__all__ = [
    "RECORD_SEPARATOR",
    "decode_jsonp_body",
    "decode_payload",
    "decode_payload_bytes",
    "encode_jsonp",
    "encode_payload",
    "encode_payload_packet",
    "split_batch",
]

RECORD_SEPARATOR = "\x1e"
"""The character between two packets of a polling payload (ASCII RS, U+001E)."""


def encode_payload_packet(packet: Packet) -> str:
    """Encode one packet as it appears inside a polling payload.

    Args:
        packet: the packet.

    Returns:
        ``<digit><text>``, or ``b`` and the base64 of a binary message.

    Raises:
        LocalProtocolError: binary data on a packet that is not a message.

    Example:
        >>> encode_payload_packet(Packet(PacketType.MESSAGE, b"\\x01\\x02"))
        'bAQI='
    """
    data = packet.data
    if isinstance(data, bytes):
        if packet.type is not PacketType.MESSAGE:
            raise LocalProtocolError(f"binary data is only allowed on a message, not {packet.type.name}")
        return "b" + base64.b64encode(data).decode("ascii")
    return encode_text_packet(packet)


def encode_payload(packets: Iterable[Packet]) -> str:
    """Join packets into one polling body.

    Args:
        packets: the packets, in order.

    Returns:
        The body, packets separated by ``\\x1e``.

    Raises:
        LocalProtocolError: binary data on a packet that is not a message.

    Example:
        >>> encode_payload([Packet(PacketType.MESSAGE, "hi"), Packet(PacketType.MESSAGE, b"\\x01")])
        '4hi\\x1ebAQ=='
    """
    return RECORD_SEPARATOR.join([encode_payload_packet(p) for p in packets])


def _decode_payload_packet(text: str) -> Packet:
    if text[:1] == "b":
        try:
            data = base64.b64decode(text[1:], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise UnknownPacketError("invalid base64 in a binary packet") from exc
        return Packet(PacketType.MESSAGE, data)
    return decode_text_packet(text)


def decode_payload(body: str, *, max_packets: int | None = None) -> list[Packet]:
    """Split a polling body into packets.

    Args:
        body: the body, as text.
        max_packets: the most packets the body may hold, or ``None`` for no
            limit. A body over it is refused before any packet is decoded,
            after a scan of only its first ``max_packets`` separators, so a
            flood of tiny packets costs almost nothing to refuse.

    Returns:
        The packets, in order.

    Raises:
        UnknownPacketError: the body is empty or one of its packets is invalid.
        RemoteProtocolError: the body holds more than ``max_packets`` packets
            (``http_status`` 400, ``error_code`` ``BAD_REQUEST``).

    Example:
        >>> decode_payload("2\\x1e4hi")
        [Packet(type=<PacketType.PING: 2>, data=''), Packet(type=<PacketType.MESSAGE: 4>, data='hi')]
        >>> decode_payload("3\\x1e3\\x1e3", max_packets=2)
        Traceback (most recent call last):
        ...
        trio_engineio.exceptions.RemoteProtocolError: the payload holds more than 2 packets
    """
    if max_packets is None:
        parts = body.split(RECORD_SEPARATOR)
    else:
        # At most max_packets + 1 parts: the scan stops at separator number max_packets.
        parts = body.split(RECORD_SEPARATOR, max_packets)
        if len(parts) > max_packets:
            raise RemoteProtocolError(
                f"the payload holds more than {max_packets} packets",
                http_status=400,
                error_code=ErrorCode.BAD_REQUEST,
            )
    return [_decode_payload_packet(part) for part in parts]


def decode_payload_bytes(body: bytes, *, max_packets: int | None = None) -> list[Packet]:
    """Decode a UTF-8 polling body, as read from an HTTP request.

    Args:
        body: the raw body.
        max_packets: the most packets the body may hold (see :func:`decode_payload`).

    Returns:
        The packets, in order.

    Raises:
        UnknownPacketError: the body is not UTF-8 or holds an invalid packet.
        RemoteProtocolError: the body holds more than ``max_packets`` packets.

    Example:
        >>> decode_payload_bytes("4caf\\u00e9".encode())
        [Packet(type=<PacketType.MESSAGE: 4>, data='café')]
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnknownPacketError("request body is not valid UTF-8") from exc
    return decode_payload(text, max_packets=max_packets)


def split_batch(encoded_sizes: Sequence[int], *, max_bytes: int, max_packets: int) -> int:
    """How many leading packets fit in one payload.

    Args:
        encoded_sizes: the UTF-8 byte length of each packet as encoded by
            :func:`encode_payload_packet`.
        max_bytes: the byte budget of the body (separators included).
        max_packets: the most packets one body may hold.

    Returns:
        The number of packets to send now; at least 1 when there are any, so
        a packet larger than the budget still goes out, alone.

    Example:
        >>> split_batch([40, 40, 40], max_bytes=100, max_packets=16)
        2
        >>> split_batch([500, 10], max_bytes=100, max_packets=16)
        1
    """
    total = 0
    count = 0
    for size in encoded_sizes[:max_packets]:
        total += size + (1 if count else 0)
        if count and total > max_bytes:
            break
        count += 1
    return count


def encode_jsonp(payload: str, index: str) -> str:
    """Wrap a payload as the JSONP response ``___eio[<index>]("...");``.

    U+2028 and U+2029 are escaped because they end a line in JavaScript.

    Args:
        payload: the encoded payload.
        index: the client's JSONP index (the ``j`` query parameter).

    Returns:
        The JavaScript response body.

    Example:
        >>> encode_jsonp('4say "hi"', "0")
        '___eio[0]("4say \\\\"hi\\\\"");'
    """
    literal = json.dumps(payload).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return f"___eio[{index}]({literal});"


def decode_jsonp_body(body: bytes) -> str:
    """Extract the payload from a JSONP POST body ``d=<urlencoded payload>``.

    The client escapes a newline as ``\\n`` and a backslash-n as ``\\\\n``
    before form-encoding (old browsers mangle newlines in forms); both are
    undone here, as the reference server does.

    Args:
        body: the raw request body.

    Returns:
        The payload, ready for :func:`decode_payload`.

    Raises:
        RemoteProtocolError: the body has no ``d`` field or is not UTF-8.

    Example:
        >>> decode_jsonp_body(b"d=4hello%20world")
        '4hello world'
    """
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError) as exc:
        raise RemoteProtocolError("JSONP body is not valid form data") from exc
    values = fields.get("d")
    if not values:
        raise RemoteProtocolError("JSONP body has no 'd' field")
    return _unescape_jsonp_newlines(values[0])


# The client writes a backslash-n as the three characters \\n, then a newline as
# the two characters \n; as the reference server does, undo both in one
# left-to-right pass (the longer match wins).
_JSONP_ESCAPED_NEWLINE = re.compile(r"\\\\n|\\n")
_JSONP_UNESCAPED = {"\\\\n": "\\n", "\\n": "\n"}


def _unescape_jsonp_newlines(text: str) -> str:
    return _JSONP_ESCAPED_NEWLINE.sub(lambda match: _JSONP_UNESCAPED[match.group()], text)
