"""Polling bodies: ``\\x1e`` framing, ``b``+base64 binary, batching, and JSONP."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from trio_engineio.exceptions import LocalProtocolError, RemoteProtocolError, UnknownPacketError
from trio_engineio.protocol.packet import Packet, PacketType
from trio_engineio.protocol.payload import (
    RECORD_SEPARATOR,
    decode_jsonp_body,
    decode_payload,
    decode_payload_bytes,
    encode_jsonp,
    encode_payload,
    encode_payload_packet,
    split_batch,
)


def message(data: str | bytes) -> Packet:
    return Packet(PacketType.MESSAGE, data)


# (body, packets): the spec's payload examples and the edge cases around them, both directions.
PAYLOADS: list[tuple[str, list[Packet]]] = [
    ("4hello\x1e4€", [message("hello"), message("€")]),
    ("4hello\x1ebAQIDBA==", [message("hello"), message(b"\x01\x02\x03\x04")]),
    ("4hello", [message("hello")]),
    ("bAQIDBA==", [message(b"\x01\x02\x03\x04")]),
    ("b", [message(b"")]),  # an empty binary message
    ("4", [message("")]),  # an empty text message
    ("4\x1e4", [message(""), message("")]),
    ("4\x1eb\x1e4", [message(""), message(b""), message("")]),
    ("4😀 emoji\x1e4\u2028\u2029", [message("😀 emoji"), message("\u2028\u2029")]),
    ("4bAQ==", [message("bAQ==")]),  # a text message that looks like base64 stays text
    (
        "2probe\x1e3\x1e1\x1e6\x1e5",
        [Packet(PacketType(t), d) for t, d in [(2, "probe"), (3, ""), (1, ""), (6, ""), (5, "")]],
    ),
    ("4a\nb\r\n", [message("a\nb\r\n")]),
    ("b" + "/" * 4 + "\x1e4" + "+" * 3, [message(b"\xff\xff\xff"), message("+++")]),
]


@pytest.mark.parametrize(("body", "packets"), PAYLOADS)
def test_encode_payload(body: str, packets: list[Packet]) -> None:
    assert encode_payload(packets) == body


@pytest.mark.parametrize(("body", "packets"), PAYLOADS)
def test_decode_payload(body: str, packets: list[Packet]) -> None:
    assert decode_payload(body) == packets
    assert decode_payload_bytes(body.encode("utf-8")) == packets


def test_record_separator_is_0x1e() -> None:
    assert RECORD_SEPARATOR == "\x1e"


def test_encode_payload_of_no_packets_is_empty_and_empty_is_not_a_payload() -> None:
    # The caller never answers a GET with an empty body: it waits, or sends NOOP.
    assert encode_payload([]) == ""
    with pytest.raises(UnknownPacketError):
        decode_payload("")


def test_encode_payload_accepts_any_iterable() -> None:
    assert encode_payload(message(str(i)) for i in range(3)) == "40\x1e41\x1e42"


@pytest.mark.parametrize(
    ("packet", "encoded"),
    [
        (message("hi"), "4hi"),
        (message(b"\x00"), "bAA=="),
        (message(b"\xfb\xff"), "b+/8="),  # the standard alphabet, not the URL-safe one
        (Packet(PacketType.OPEN, "{}"), "0{}"),
    ],
)
def test_encode_payload_packet(packet: Packet, encoded: str) -> None:
    assert encode_payload_packet(packet) == encoded


@pytest.mark.parametrize("packet_type", [t for t in PacketType if t is not PacketType.MESSAGE])
def test_binary_on_a_non_message_cannot_be_encoded(packet_type: PacketType) -> None:
    with pytest.raises(LocalProtocolError, match="only allowed on a message"):
        encode_payload([message("ok"), Packet(packet_type, b"\x01")])


@pytest.mark.parametrize(
    "body",
    [
        "",  # empty body
        "\x1e",  # two empty packets
        "4a\x1e",  # trailing separator
        "\x1e4a",  # leading separator
        "4a\x1e\x1e4b",
        "7",
        "x",
        "4a\x1e9b",  # one bad packet spoils the body
    ],
)
def test_decode_payload_rejects_invalid_packets(body: str) -> None:
    with pytest.raises(UnknownPacketError, match="invalid packet type"):
        decode_payload(body)


@pytest.mark.parametrize(
    "body",
    [
        "bAQ=",  # wrong padding
        "bAQIDBA",  # missing padding
        "bA",
        "b!!!!",  # not in the alphabet
        "bAQ==\n",  # whitespace is not skipped
        "b-_8=",  # the URL-safe alphabet
        "bAQ==AA==",  # padding in the middle
        "b€€€€",  # non-ASCII
        "4ok\x1ebAQ=",
    ],
)
def test_decode_payload_rejects_invalid_base64(body: str) -> None:
    with pytest.raises(UnknownPacketError, match="invalid base64"):
        decode_payload(body)


@pytest.mark.parametrize(
    "body",
    [
        b"\xff",
        b"4\xc3",  # truncated sequence
        b"4\xc3\x28",
        b"4\xed\xa0\x80",  # an encoded surrogate
        b"4\xf4\x90\x80\x80",  # above U+10FFFF
        b"4\xc0\xaf",  # overlong
        b"4ok\x1e4\xe2\x82",
    ],
)
def test_decode_payload_bytes_rejects_non_utf8(body: bytes) -> None:
    with pytest.raises(UnknownPacketError, match="not valid UTF-8"):
        decode_payload_bytes(body)


# -- max_packets ------------------------------------------------------------------------------


@pytest.mark.parametrize("max_packets", [1, 2, 16])
def test_decode_payload_accepts_exactly_max_packets(max_packets: int) -> None:
    body = RECORD_SEPARATOR.join(["4m"] * max_packets)
    assert decode_payload(body, max_packets=max_packets) == [message("m")] * max_packets
    assert decode_payload_bytes(body.encode(), max_packets=max_packets) == [message("m")] * max_packets


@pytest.mark.parametrize("max_packets", [1, 2, 16])
@pytest.mark.parametrize("as_bytes", [False, True])
def test_decode_payload_refuses_one_packet_more_as_a_400(max_packets: int, as_bytes: bool) -> None:
    body = RECORD_SEPARATOR.join(["4m"] * (max_packets + 1))

    def decode() -> list[Packet]:
        if as_bytes:
            return decode_payload_bytes(body.encode(), max_packets=max_packets)
        return decode_payload(body, max_packets=max_packets)

    with pytest.raises(RemoteProtocolError, match=f"more than {max_packets} packets") as refused:
        decode()
    assert type(refused.value) is RemoteProtocolError  # the packets are valid: not an UnknownPacketError
    assert refused.value.http_status == 400
    assert refused.value.error_code == 3  # the reference server's BAD_REQUEST


def test_decode_payload_counts_packets_before_decoding_any() -> None:
    """Past the limit the body is refused as too long, whatever its packets (none is decoded)."""
    with pytest.raises(RemoteProtocolError, match="more than 2 packets"):
        decode_payload("9bad\x1e\x1e\x1eb!!!", max_packets=2)
    with pytest.raises(UnknownPacketError):
        decode_payload("9bad\x1e4ok", max_packets=2)  # within the limit, the packets are checked


def test_decode_payload_refuses_a_flood_at_the_limit() -> None:
    """A max-size body of one-byte packets (CVE-2020-36048's shape) is refused by a bounded scan."""
    flood = RECORD_SEPARATOR.join(["3"] * 500_000)
    with pytest.raises(RemoteProtocolError, match="more than 16 packets"):
        decode_payload_bytes(flood.encode(), max_packets=16)


def test_decode_payload_without_max_packets_has_no_limit() -> None:
    assert len(decode_payload(RECORD_SEPARATOR.join(["6"] * 10_000))) == 10_000


# -- split_batch ------------------------------------------------------------------------------


def sizes_of(packets: list[Packet]) -> list[int]:
    """What split_batch's caller passes: the UTF-8 size of each packet as encode_payload_packet writes it."""
    return [len(encode_payload_packet(p).encode("utf-8")) for p in packets]


@pytest.mark.parametrize(
    ("sizes", "max_bytes", "max_packets", "expected"),
    [
        ([], 100, 10, 0),
        ([5], 100, 10, 1),
        ([5, 5, 5], 100, 10, 3),
        # Separators count: 5 + 1 + 5 = 11 bytes.
        ([5, 5], 11, 10, 2),
        ([5, 5], 10, 10, 1),
        ([5, 5, 5], 17, 10, 3),
        ([5, 5, 5], 16, 10, 2),
        # A packet bigger than the budget still goes, alone.
        ([1000], 10, 10, 1),
        ([1000, 1], 10, 10, 1),
        # ... and a big one behind small ones waits for the next body.
        ([1, 1000], 10, 10, 1),
        ([1, 1, 1000, 1], 10, 10, 2),
        # The packet-count limit.
        ([1] * 20, 1000, 16, 16),
        ([1, 1, 1], 1000, 1, 1),
        ([1, 1, 1], 1000, 3, 3),
        # Sizes past the first one that does not fit are not looked at.
        ([5, 100, 1], 10, 10, 1),
    ],
)
def test_split_batch(sizes: list[int], max_bytes: int, max_packets: int, expected: int) -> None:
    assert split_batch(sizes, max_bytes=max_bytes, max_packets=max_packets) == expected


def test_split_batch_keeps_the_body_within_the_budget_in_utf8_bytes() -> None:
    # The caller's contract: sizes are UTF-8 byte lengths of encode_payload_packet(p),
    # not len() of the str (which counts code points); the body is the \x1e-join.
    packets = [message("€" * 3), message("😀"), message(b"\x00\x01"), message("a")]
    sizes = sizes_of(packets)
    assert sizes == [1 + 9, 1 + 4, 1 + 4, 2]
    for budget in range(1, 40):
        count = split_batch(sizes, max_bytes=budget, max_packets=16)
        body = encode_payload(packets[:count]).encode("utf-8")
        assert count >= 1
        assert count == 1 or len(body) <= budget
        # Maximal: one more packet would exceed the budget.
        if count < len(packets):
            assert len(encode_payload(packets[: count + 1]).encode("utf-8")) > budget


def test_split_batch_by_code_points_would_overflow() -> None:
    # Why the contract says bytes: counting code points under-counts a multi-byte body.
    packets = [message("€" * 4), message("€" * 4)]
    by_code_points = [len(encode_payload_packet(p)) for p in packets]
    assert split_batch(by_code_points, max_bytes=11, max_packets=16) == 2
    assert len(encode_payload(packets).encode("utf-8")) == 27
    assert split_batch(sizes_of(packets), max_bytes=11, max_packets=16) == 1


# -- JSONP ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "index", "expected"),
    [
        ("4hello", "0", '___eio[0]("4hello");'),
        ("4hello", "12", '___eio[12]("4hello");'),
        ('4say "hi"', "1", '___eio[1]("4say \\"hi\\"");'),
        ("4back\\slash", "1", '___eio[1]("4back\\\\slash");'),
        ("4a\nb\x1e4c", "1", '___eio[1]("4a\\nb\\u001e4c");'),
        ("4\u2028\u2029", "1", '___eio[1]("4\\u2028\\u2029");'),
        ("4</script>", "1", '___eio[1]("4</script>");'),
        ("", "1", '___eio[1]("");'),
    ],
)
def test_encode_jsonp(payload: str, index: str, expected: str) -> None:
    assert encode_jsonp(payload, index) == expected


@pytest.mark.parametrize("payload", ["4\u2028", "4\u2029", "4é😀\u2028x\u2029", "4\x00\x1f\x7f"])
def test_encode_jsonp_is_a_single_line_of_javascript(payload: str) -> None:
    # U+2028/U+2029 end a line in JavaScript (before ES2019): never written raw.
    body = encode_jsonp(payload, "7")
    assert "\u2028" not in body
    assert "\u2029" not in body
    assert "\n" not in body
    assert body.startswith("___eio[7](")
    assert body.endswith(");")
    assert json.loads(body[len("___eio[7](") : -2]) == payload


@pytest.mark.parametrize(
    ("body", "payload"),
    [
        (b"d=4hello", "4hello"),
        (b"d=4h%C3%A9llo%E2%82%AC", "4héllo€"),
        ("d=4héllo".encode(), "4héllo"),  # raw UTF-8 too
        (b"d=4a+b%2Bc", "4a b+c"),  # form encoding: "+" is a space
        (b"d=4hello%1E4world", "4hello\x1e4world"),
        (b"d=4a%26b%3Dc", "4a&b=c"),
        (b"x=1&d=4first&d=4second", "4first"),  # the first "d" wins
        (b"d=", ""),
        # The client writes a newline as \n and an escaped newline (backslash, n) as \\n.
        (b"d=4a%5Cnb", "4a\nb"),
        (b"d=4a%5C%5Cnb", "4a\\nb"),
        (b"d=4a%5C%5C%5Cnb", "4a\\\\nb"),
        (b"d=4%5Cn%5Cn", "4\n\n"),
        # Other backslashes are data.
        (b"d=4a%5Cb", "4a\\b"),
        (b"d=4a%5C%5Cb", "4a\\\\b"),
        (b"d=4a%5C", "4a\\"),
        (b"d=4a%5C%5C", "4a\\\\"),
        (b"d=%7B%22a%22%3A%22x%5C%5Cny%22%7D", '{"a":"x\\ny"}'),
    ],
)
def test_decode_jsonp_body(body: bytes, payload: str) -> None:
    assert decode_jsonp_body(body) == payload


def client_jsonp_escape(data: str) -> str:
    """What engine.io-client's JSONP transport does before form-encoding a payload."""
    return data.replace("\\n", "\\\n").replace("\n", "\\n")


@pytest.mark.parametrize(
    "payload",
    [
        "4a\nb",
        "4a\\nb",
        "4a\\\\nb",
        '42["msg","line one\\nline two"]',
        '42["msg","raw\nnewline and escaped\\n one"]',
        "4\\\\\\\\n\n\n\\n",
        "4no newline \\ at all \\\\",
    ],
)
def test_decode_jsonp_body_inverts_the_client_escaping(payload: str) -> None:
    body = urlencode({"d": client_jsonp_escape(payload)}).encode("ascii")
    assert decode_jsonp_body(body) == payload


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"", "no 'd' field"),
        (b"x=4hello", "no 'd' field"),
        (b"D=4hello", "no 'd' field"),
        (b"4hello", "no 'd' field"),
        (b"d=\xff", "not valid form data"),
        (b"d=%FF", "not valid form data"),  # percent-encoded invalid UTF-8
        (b"d=4%C3", "not valid form data"),
        (b"\xc3\x28=1&d=4a", "not valid form data"),
    ],
)
def test_decode_jsonp_body_errors(body: bytes, match: str) -> None:
    with pytest.raises(RemoteProtocolError, match=match) as info:
        decode_jsonp_body(body)
    assert info.value.http_status == 400
