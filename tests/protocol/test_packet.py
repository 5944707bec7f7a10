"""Packets in one websocket frame: the examples of the Engine.IO v4 spec, and every error path."""

from __future__ import annotations

import pytest

from trio_engineio.exceptions import EngineIOError, LocalProtocolError, RemoteProtocolError, UnknownPacketError
from trio_engineio.protocol.packet import (
    Packet,
    PacketType,
    check_sendable,
    decode_frame,
    decode_text_packet,
    encode_frame,
    encode_text_packet,
)

OPEN_DATA = (
    '{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],'
    '"pingInterval":25000,"pingTimeout":5000,"maxPayload":1000000}'
)

# (wire frame, packet): every example of the spec's "packet encoding" section, both directions.
SPEC_FRAMES: list[tuple[str | bytes, Packet]] = [
    ("0" + OPEN_DATA, Packet(PacketType.OPEN, OPEN_DATA)),
    ("1", Packet(PacketType.CLOSE)),
    ("2", Packet(PacketType.PING)),
    ("2probe", Packet(PacketType.PING, "probe")),
    ("3", Packet(PacketType.PONG)),
    ("3probe", Packet(PacketType.PONG, "probe")),
    ("4hello", Packet(PacketType.MESSAGE, "hello")),
    ("4", Packet(PacketType.MESSAGE, "")),
    ("4€ ☃ 😀 \u2028", Packet(PacketType.MESSAGE, "€ ☃ 😀 \u2028")),
    ("44", Packet(PacketType.MESSAGE, "4")),
    ("4\x1e\n", Packet(PacketType.MESSAGE, "\x1e\n")),
    ("5", Packet(PacketType.UPGRADE)),
    ("6", Packet(PacketType.NOOP)),
    (b"\x01\x02\x03\x04", Packet(PacketType.MESSAGE, b"\x01\x02\x03\x04")),
    # A binary frame has no type byte: a leading b"4" is data, not a type.
    (b"4hello", Packet(PacketType.MESSAGE, b"4hello")),
    (b"", Packet(PacketType.MESSAGE, b"")),
]


@pytest.mark.parametrize(("frame", "packet"), SPEC_FRAMES)
def test_decode_spec_examples(frame: str | bytes, packet: Packet) -> None:
    decoded = decode_frame(frame)
    assert decoded == packet
    assert type(decoded.data) is type(frame)


@pytest.mark.parametrize(("frame", "packet"), SPEC_FRAMES)
def test_encode_spec_examples(frame: str | bytes, packet: Packet) -> None:
    encoded = encode_frame(packet)
    assert encoded == frame
    # Text packets go out as text frames, binary messages as binary frames.
    assert type(encoded) is type(frame)


def test_packet_type_values_are_wire_digits() -> None:
    assert [(t.name, int(t)) for t in PacketType] == [
        ("OPEN", 0),
        ("CLOSE", 1),
        ("PING", 2),
        ("PONG", 3),
        ("MESSAGE", 4),
        ("UPGRADE", 5),
        ("NOOP", 6),
    ]


def test_packet_defaults_to_empty_text_and_is_frozen() -> None:
    packet = Packet(PacketType.PING)
    assert packet.data == ""
    assert not packet.is_binary
    assert Packet(PacketType.MESSAGE, b"").is_binary
    with pytest.raises(AttributeError):
        packet.data = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    "frame",
    [
        "",  # an empty text frame carries no type
        "x",
        "7x",  # one past the last type
        "7",
        "9",
        "-1",
        " 4hello",
        "b4hello",  # "b" marks base64 only inside polling payloads
        "\u0664hello",  # ARABIC-INDIC DIGIT FOUR is a digit to str.isdigit(), not a packet type
        "\uff14hello",  # FULLWIDTH DIGIT FOUR
        "\x00",
    ],
)
def test_decode_rejects_frames_without_a_type_digit(frame: str) -> None:
    with pytest.raises(UnknownPacketError, match="invalid packet type"):
        decode_frame(frame)


def test_decode_error_is_a_remote_protocol_error_answered_with_400() -> None:
    with pytest.raises(UnknownPacketError) as info:
        decode_frame("x")
    error = info.value
    assert isinstance(error, RemoteProtocolError)
    assert isinstance(error, EngineIOError)
    assert error.http_status == 400
    assert error.error_code is None


def test_decode_error_message_truncates_long_frames() -> None:
    with pytest.raises(UnknownPacketError) as info:
        decode_frame("x" * 1000)
    assert info.value.message == "invalid packet type in 'xxxxxxxxxx...'"
    with pytest.raises(UnknownPacketError) as info:
        decode_frame("x" * 10)
    assert info.value.message == "invalid packet type in 'xxxxxxxxxx'"


@pytest.mark.parametrize("packet_type", [t for t in PacketType if t is not PacketType.MESSAGE])
def test_encode_rejects_binary_on_a_non_message(packet_type: PacketType) -> None:
    with pytest.raises(LocalProtocolError, match=f"not {packet_type.name}"):
        encode_frame(Packet(packet_type, b"\x00"))


@pytest.mark.parametrize(("frame", "packet"), [(f, p) for f, p in SPEC_FRAMES if isinstance(f, str)])
def test_text_packet_helpers_match_frames(frame: str, packet: Packet) -> None:
    assert decode_text_packet(frame) == packet
    assert encode_text_packet(packet) == frame


@pytest.mark.parametrize(
    "packet",
    [
        Packet(PacketType.MESSAGE, "ascii"),
        Packet(PacketType.MESSAGE, "caf\u00e9 \U0001f600"),
        Packet(PacketType.MESSAGE, b"\xff\x00"),
        Packet(PacketType.PING),
    ],
)
def test_check_sendable_accepts_what_encodes(packet: Packet) -> None:
    check_sendable(packet)


@pytest.mark.parametrize(
    ("packet", "match"),
    [
        (Packet(PacketType.MESSAGE, "a\ud800b"), r"lone surrogate \(at index 1\)"),
        (Packet(PacketType.MESSAGE, "\udfff"), "no UTF-8 encoding"),
        (Packet(PacketType.PING, b"x"), "only allowed on a message, not PING"),
        (Packet(PacketType.MESSAGE, 42), "must be str or bytes, not int"),  # type: ignore[arg-type]
    ],
)
def test_check_sendable_refuses_what_cannot_be_encoded(packet: Packet, match: str) -> None:
    """A packet the application makes is checked where it is sent, not when a writer encodes it."""
    with pytest.raises(LocalProtocolError, match=match):
        check_sendable(packet)
