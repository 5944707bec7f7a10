"""Request validation (the reference server's error codes and their order) and the OPEN packet."""

from __future__ import annotations

import json
from collections.abc import Collection

import pytest

from trio_engineio.exceptions import RemoteProtocolError
from trio_engineio.protocol.handshake import (
    EngineIORequest,
    ErrorCode,
    HandshakeError,
    Transport,
    error_body,
    open_packet,
    parse_query,
    parse_request,
)
from trio_engineio.protocol.packet import PacketType, encode_frame

POLLING = Transport.POLLING
WEBSOCKET = Transport.WEBSOCKET
BOTH = (POLLING, WEBSOCKET)

# (query, method, is_websocket, allowed transports, expected request)
ACCEPTED: list[tuple[dict[str, str], str, bool, Collection[Transport], EngineIORequest]] = [
    ({"EIO": "4", "transport": "polling"}, "GET", False, BOTH, EngineIORequest(POLLING, None)),
    ({"EIO": "4", "transport": "websocket"}, "GET", True, BOTH, EngineIORequest(WEBSOCKET, None)),
    ({"EIO": "4", "transport": "polling"}, "GET", False, (POLLING,), EngineIORequest(POLLING, None)),
    ({"EIO": "4", "transport": "websocket"}, "GET", True, (WEBSOCKET,), EngineIORequest(WEBSOCKET, None)),
    ({"EIO": "4", "transport": "polling", "sid": "abc"}, "GET", False, BOTH, EngineIORequest(POLLING, "abc")),
    ({"EIO": "4", "transport": "polling", "sid": "abc"}, "POST", False, BOTH, EngineIORequest(POLLING, "abc")),
    # The upgrade: a websocket carrying the sid of a polling session.
    ({"EIO": "4", "transport": "websocket", "sid": "abc"}, "GET", True, BOTH, EngineIORequest(WEBSOCKET, "abc")),
    # Once a session exists a missing EIO is tolerated; only a handshake must state it.
    ({"transport": "polling", "sid": "abc"}, "POST", False, BOTH, EngineIORequest(POLLING, "abc")),
    # An empty sid is no sid: this is a handshake.
    ({"EIO": "4", "transport": "polling", "sid": ""}, "GET", False, BOTH, EngineIORequest(POLLING, None)),
    # JSONP polling.
    ({"EIO": "4", "transport": "polling", "j": "0"}, "GET", False, BOTH, EngineIORequest(POLLING, None, "0")),
    (
        {"EIO": "4", "transport": "polling", "j": "12", "sid": "s"},
        "POST",
        False,
        BOTH,
        EngineIORequest(POLLING, "s", "12"),
    ),
    # Unknown keys (cache busters, the old b64 flag) are ignored.
    ({"EIO": "4", "transport": "polling", "t": "OxC1", "b64": "1"}, "GET", False, BOTH, EngineIORequest(POLLING, None)),
]


@pytest.mark.parametrize(("query", "method", "is_websocket", "transports", "expected"), ACCEPTED)
def test_parse_request_accepts(
    query: dict[str, str],
    method: str,
    is_websocket: bool,
    transports: Collection[Transport],
    expected: EngineIORequest,
) -> None:
    request = parse_request(query, method=method, is_websocket=is_websocket, transports=transports)
    assert request == expected
    assert request.is_handshake is (expected.sid is None)


def test_parse_request_allows_both_transports_by_default() -> None:
    for transport, is_websocket in [("polling", False), ("websocket", True)]:
        request = parse_request({"EIO": "4", "transport": transport}, method="GET", is_websocket=is_websocket)
        assert request.transport.value == transport


T0 = ErrorCode.UNKNOWN_TRANSPORT
T2 = ErrorCode.BAD_HANDSHAKE_METHOD
T3 = ErrorCode.BAD_REQUEST
T5 = ErrorCode.UNSUPPORTED_PROTOCOL_VERSION

# (id, query, method, is_websocket, allowed transports, expected code)
REFUSED: list[tuple[str, dict[str, str], str, bool, Collection[Transport], ErrorCode]] = [
    # 0: transport unknown (missing, empty, misspelt, not v4's) or disabled.
    ("no transport", {"EIO": "4"}, "GET", False, BOTH, T0),
    ("empty transport", {"EIO": "4", "transport": ""}, "GET", False, BOTH, T0),
    ("unknown transport", {"EIO": "4", "transport": "xhr"}, "GET", False, BOTH, T0),
    ("transport is case-sensitive", {"EIO": "4", "transport": "Polling"}, "GET", False, BOTH, T0),
    ("webtransport", {"EIO": "4", "transport": "webtransport"}, "GET", False, BOTH, T0),
    ("websocket disabled", {"EIO": "4", "transport": "websocket"}, "GET", True, (POLLING,), T0),
    ("polling disabled", {"EIO": "4", "transport": "polling"}, "GET", False, (WEBSOCKET,), T0),
    ("disabled upgrade", {"EIO": "4", "transport": "websocket", "sid": "s"}, "GET", True, (POLLING,), T0),
    # 2: a handshake must be a GET.
    ("POST handshake", {"EIO": "4", "transport": "polling"}, "POST", False, BOTH, T2),
    ("PUT handshake", {"EIO": "4", "transport": "polling"}, "PUT", False, BOTH, T2),
    ("OPTIONS handshake", {"EIO": "4", "transport": "polling"}, "OPTIONS", False, BOTH, T2),
    ("POST with empty sid", {"EIO": "4", "transport": "polling", "sid": ""}, "POST", False, BOTH, T2),
    ("lower-case get", {"EIO": "4", "transport": "polling"}, "get", False, BOTH, T2),
    # 3: bad request.
    ("websocket transport over http", {"EIO": "4", "transport": "websocket"}, "GET", False, BOTH, T3),
    ("polling transport over a websocket", {"EIO": "4", "transport": "polling"}, "GET", True, BOTH, T3),
    ("upgrade over http", {"EIO": "4", "transport": "websocket", "sid": "s"}, "GET", False, BOTH, T3),
    ("polling sid over a websocket", {"EIO": "4", "transport": "polling", "sid": "s"}, "GET", True, BOTH, T3),
    ("PUT with a sid", {"EIO": "4", "transport": "polling", "sid": "s"}, "PUT", False, BOTH, T3),
    ("DELETE with a sid", {"EIO": "4", "transport": "polling", "sid": "s"}, "DELETE", False, BOTH, T3),
    ("empty j", {"EIO": "4", "transport": "polling", "j": ""}, "GET", False, BOTH, T3),
    ("letter j", {"EIO": "4", "transport": "polling", "j": "a"}, "GET", False, BOTH, T3),
    ("script j", {"EIO": "4", "transport": "polling", "j": "0);alert(1"}, "GET", False, BOTH, T3),
    ("negative j", {"EIO": "4", "transport": "polling", "j": "-1"}, "GET", False, BOTH, T3),
    ("superscript j", {"EIO": "4", "transport": "polling", "j": "\u00b2"}, "GET", False, BOTH, T3),
    ("arabic-indic j", {"EIO": "4", "transport": "polling", "j": "\u0661"}, "GET", False, BOTH, T3),
    ("j on a websocket", {"EIO": "4", "transport": "websocket", "j": "1"}, "GET", True, BOTH, T3),
    # 5: unsupported protocol version.
    ("no EIO", {"transport": "polling"}, "GET", False, BOTH, T5),
    ("EIO 3", {"EIO": "3", "transport": "polling"}, "GET", False, BOTH, T5),
    ("EIO 5", {"EIO": "5", "transport": "websocket"}, "GET", True, BOTH, T5),
    ("empty EIO", {"EIO": "", "transport": "polling"}, "GET", False, BOTH, T5),
    ("padded EIO", {"EIO": "4 ", "transport": "polling"}, "GET", False, BOTH, T5),
    ("EIO 3 with a sid", {"EIO": "3", "transport": "polling", "sid": "s"}, "GET", False, BOTH, T5),
    # The order of the checks, as the reference server runs them: transport, handshake
    # method, transport/request mismatch, version, then the rest. Each row breaks
    # several rules and expects the code of the first.
    ("order: transport before method", {"transport": "xhr"}, "POST", True, BOTH, T0),
    ("order: disabled before mismatch", {"EIO": "4", "transport": "websocket"}, "GET", False, (POLLING,), T0),
    ("order: method before mismatch", {"EIO": "4", "transport": "websocket"}, "POST", False, BOTH, T2),
    ("order: method before version", {"EIO": "3", "transport": "polling"}, "POST", False, BOTH, T2),
    ("order: mismatch before version", {"transport": "polling"}, "GET", True, BOTH, T3),
    ("order: version before j", {"EIO": "3", "transport": "polling", "j": "x"}, "GET", False, BOTH, T5),
    ("order: version before method", {"EIO": "3", "transport": "polling", "sid": "s"}, "PUT", False, BOTH, T5),
]


@pytest.mark.parametrize(
    ("query", "method", "is_websocket", "transports", "code"),
    [row[1:] for row in REFUSED],
    ids=[row[0] for row in REFUSED],
)
def test_parse_request_refuses(
    query: dict[str, str],
    method: str,
    is_websocket: bool,
    transports: Collection[Transport],
    code: ErrorCode,
) -> None:
    with pytest.raises(HandshakeError) as info:
        parse_request(query, method=method, is_websocket=is_websocket, transports=transports)
    error = info.value
    assert error.code is code
    assert error.error_code == int(code)
    assert error.http_status == 400
    assert error.message == code.message


def test_every_code_parse_request_owns_is_covered() -> None:
    # 1 (unknown sid) is the caller's, 4 (forbidden) the application's.
    assert {row[-1] for row in REFUSED} == set(ErrorCode) - {ErrorCode.UNKNOWN_SID, ErrorCode.FORBIDDEN}


@pytest.mark.parametrize(
    ("query", "method", "is_websocket", "detail"),
    [
        ({"transport": "xhr"}, "GET", False, "transport 'xhr'"),
        ({}, "GET", False, "transport None"),
        ({"EIO": "4", "transport": "websocket"}, "GET", True, "transport 'websocket' is disabled"),
        ({"EIO": "4", "transport": "polling"}, "HEAD", False, "a handshake must be a GET, not HEAD"),
        ({"EIO": "4", "transport": "polling"}, "GET", True, "transport does not match the kind of request"),
        ({"EIO": "3", "transport": "polling"}, "GET", False, "EIO='3', this server speaks EIO=4"),
        ({"transport": "polling"}, "GET", False, "EIO=None, this server speaks EIO=4"),
        ({"EIO": "4", "transport": "polling", "sid": "s"}, "PATCH", False, "method PATCH is not allowed"),
        ({"EIO": "4", "transport": "polling", "j": "x"}, "GET", False, "the JSONP index 'j' must be a number"),
    ],
)
def test_handshake_error_detail_tells_which_check_failed(
    query: dict[str, str], method: str, is_websocket: bool, detail: str
) -> None:
    with pytest.raises(HandshakeError) as info:
        parse_request(query, method=method, is_websocket=is_websocket, transports=(POLLING,))
    assert info.value.detail == detail
    assert str(info.value) == f"{info.value.code.message}: {detail}"


def test_handshake_error() -> None:
    error = HandshakeError(ErrorCode.UNKNOWN_SID)
    assert isinstance(error, RemoteProtocolError)
    assert str(error) == "Session ID unknown"
    assert error.detail == ""
    assert (error.http_status, error.error_code) == (400, 1)
    forbidden = HandshakeError(ErrorCode.FORBIDDEN, "not today", http_status=403)
    assert str(forbidden) == "Forbidden: not today"
    assert (forbidden.http_status, forbidden.error_code) == (403, 4)


def test_error_codes_and_messages_are_the_reference_servers() -> None:
    assert {int(c): c.message for c in ErrorCode} == {
        0: "Transport unknown",
        1: "Session ID unknown",
        2: "Bad handshake method",
        3: "Bad request",
        4: "Forbidden",
        5: "Unsupported protocol version",
    }


@pytest.mark.parametrize("code", list(ErrorCode))
def test_error_body(code: ErrorCode) -> None:
    body = error_body(code)
    # Byte for byte what the reference server sends (JSON.stringify: no spaces).
    assert body == f'{{"code":{int(code)},"message":"{code.message}"}}'.encode()
    assert json.loads(body) == {"code": int(code), "message": code.message}


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("banned", b'{"code":4,"message":"banned"}'),
        ('say "no"', b'{"code":4,"message":"say \\"no\\""}'),
        ("d\u00e9j\u00e0 vu", '{"code":4,"message":"d\u00e9j\u00e0 vu"}'.encode()),  # as JSON.stringify: not escaped
        ("lone \ud800", b'{"code":4,"message":"lone \\ud800"}'),  # JSON.stringify escapes it too
    ],
)
def test_error_body_with_a_message_of_its_own(message: str, expected: bytes) -> None:
    body = error_body(ErrorCode.FORBIDDEN, message)
    assert body == expected
    assert json.loads(body)["code"] == 4


def test_transport_values() -> None:
    assert [(str(t), t.value) for t in Transport] == [("polling", "polling"), ("websocket", "websocket")]
    assert Transport("websocket") is WEBSOCKET
    assert f"{POLLING}" == "polling"


# -- parse_query ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query_string", "expected"),
    [
        ("", {}),
        ("EIO=4&transport=polling", {"EIO": "4", "transport": "polling"}),
        ("EIO=4&transport=polling&t=N8hyd6w", {"EIO": "4", "transport": "polling", "t": "N8hyd6w"}),
        # The first of repeated keys wins.
        ("sid=first&sid=second&sid=third", {"sid": "first"}),
        ("transport=polling&EIO=4&transport=websocket", {"transport": "polling", "EIO": "4"}),
        # Blank values are kept; a key without "=" is blank.
        ("j=&sid", {"j": "", "sid": ""}),
        ("sid=&sid=late", {"sid": ""}),
        # Percent-decoding (UTF-8) and "+" as a space.
        ("sid=a%2Bb%3D%3D&x=a+b", {"sid": "a+b==", "x": "a b"}),
        ("x=%C3%A9%E2%82%AC", {"x": "é€"}),
        ("x=%FF", {"x": "\ufffd"}),
        ("&&EIO=4&&", {"EIO": "4"}),
        ("a=1;b=2", {"a": "1;b=2"}),  # only "&" separates
    ],
)
def test_parse_query(query_string: str, expected: dict[str, str]) -> None:
    assert parse_query(query_string) == expected
    assert list(parse_query(query_string)) == list(expected)
    # An ASGI scope holds the query string as bytes: same result.
    assert parse_query(query_string.encode("ascii")) == expected


def test_parse_query_takes_raw_non_ascii_bytes_as_latin_1() -> None:
    # Servers should percent-encode, but raw bytes must not crash the parser.
    assert parse_query(b"x=\xe9\xff") == {"x": "\xe9\xff"}


def test_parse_query_feeds_parse_request() -> None:
    query = parse_query(b"EIO=4&transport=polling&sid=Lbyf_sid&j=3")
    assert parse_request(query, method="POST", is_websocket=False) == EngineIORequest(POLLING, "Lbyf_sid", "3")


# -- open_packet ------------------------------------------------------------------------------


def test_open_packet_exact_json() -> None:
    packet = open_packet(
        "lv_VI97HAXpY6yYWAAAC",
        upgrades=[WEBSOCKET],
        ping_interval_ms=25000,
        ping_timeout_ms=20000,
        max_payload=1000000,
    )
    assert packet.type is PacketType.OPEN
    # The reference server's key order, compact separators, integer milliseconds.
    assert encode_frame(packet) == (
        '0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],'
        '"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'
    )


@pytest.mark.parametrize(
    ("upgrades", "expected"),
    [([], "[]"), ([WEBSOCKET], '["websocket"]'), ((POLLING, WEBSOCKET), '["polling","websocket"]')],
)
def test_open_packet_upgrades(upgrades: Collection[Transport], expected: str) -> None:
    packet = open_packet("s", upgrades=upgrades, ping_interval_ms=1, ping_timeout_ms=2, max_payload=3)
    assert packet.data == f'{{"sid":"s","upgrades":{expected},"pingInterval":1,"pingTimeout":2,"maxPayload":3}}'


def test_open_packet_escapes_the_sid_as_json() -> None:
    packet = open_packet('a"b\\é', upgrades=[], ping_interval_ms=0, ping_timeout_ms=0, max_payload=0)
    assert isinstance(packet.data, str)
    assert json.loads(packet.data)["sid"] == 'a"b\\é'
