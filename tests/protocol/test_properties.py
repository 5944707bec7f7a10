"""Properties of the core over generated inputs: round trips, batching, and parser totality.

The totality test is the contract the I/O layer relies on: whatever bytes a peer sends,
parsing either succeeds or raises an ``EngineIOError`` (which the I/O layer maps to a
400 or a closed session), never a stray ``IndexError``, ``UnicodeError``, ``binascii.Error``...
"""

from __future__ import annotations

import math
from urllib.parse import urlencode

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from trio_engineio.exceptions import CloseReason, RemoteProtocolError, UnknownPacketError
from trio_engineio.protocol.handshake import EngineIORequest, HandshakeError, Transport, parse_query, parse_request
from trio_engineio.protocol.packet import Packet, PacketType, decode_frame, encode_frame
from trio_engineio.protocol.payload import (
    decode_jsonp_body,
    decode_payload,
    decode_payload_bytes,
    encode_jsonp,
    encode_payload,
    split_batch,
)
from trio_engineio.protocol.server_session import PollDecision, ServerSession, SessionClosed, SessionState

# -- round trips ------------------------------------------------------------------------------

# Any text a peer can send as UTF-8: every code point but the surrogates (hypothesis' default).
any_text = st.text()


def text_packets(text: st.SearchStrategy[str]) -> st.SearchStrategy[Packet]:
    return st.builds(Packet, st.sampled_from(PacketType), text)


binary_messages = st.builds(Packet, st.just(PacketType.MESSAGE), st.binary())


@given(text_packets(any_text) | binary_messages)
def test_websocket_frame_round_trip(packet: Packet) -> None:
    frame = encode_frame(packet)
    assert isinstance(frame, bytes) is packet.is_binary
    assert decode_frame(frame) == packet


# Inside a polling body the record separator cannot appear in a text packet (as in the
# reference implementation, it is not escaped); everything else can.
payload_text = st.text(st.characters(codec="utf-8", exclude_characters="\x1e"))


@given(st.lists(text_packets(payload_text) | binary_messages, min_size=1, max_size=8))
def test_polling_payload_round_trip(packets: list[Packet]) -> None:
    body = encode_payload(packets)
    assert decode_payload(body) == packets
    assert decode_payload_bytes(body.encode("utf-8")) == packets
    assert body.count("\x1e") == len(packets) - 1


def client_jsonp_escape(data: str) -> str:
    """What engine.io-client's JSONP transport does to a payload before form-encoding it."""
    return data.replace("\\n", "\\\n").replace("\n", "\\n")


# A backslash right before a newline is the one thing the client's escaping cannot carry.
@given(st.lists(text_packets(payload_text) | binary_messages, min_size=1, max_size=4))
def test_jsonp_round_trip(packets: list[Packet]) -> None:
    payload = encode_payload(packets)
    assume("\\\n" not in payload)
    body = urlencode({"d": client_jsonp_escape(payload)}).encode("ascii")
    assert decode_jsonp_body(body) == payload
    response = encode_jsonp(payload, "5")
    assert response.startswith('___eio[5]("')
    assert "\n" not in response
    assert "\u2028" not in response
    assert "\u2029" not in response


@given(
    st.lists(st.integers(min_value=1, max_value=200), max_size=30),
    st.integers(min_value=1, max_value=1000),
    st.integers(min_value=1, max_value=40),
)
def test_split_batch_takes_the_longest_prefix_that_fits(sizes: list[int], max_bytes: int, max_packets: int) -> None:
    count = split_batch(sizes, max_bytes=max_bytes, max_packets=max_packets)

    def body_size(n: int) -> int:
        return sum(sizes[:n]) + max(n - 1, 0)

    assert 0 <= count <= min(len(sizes), max_packets)
    assert (count == 0) is (not sizes)
    # It fits (a lone oversized packet excepted) ...
    assert count <= 1 or body_size(count) <= max_bytes
    # ... and one more would not, or the packet limit is reached.
    if count < min(len(sizes), max_packets):
        assert body_size(count + 1) > max_bytes


# -- parser totality --------------------------------------------------------------------------

# Fragments that steer inputs into the parsers' interesting corners.
TOKENS = [
    *"0123456789",
    "b",
    "\x1e",
    "probe",
    "AQ==",
    "=",
    "==",
    "&",
    "d=",
    "%",
    "%5C",
    "%5Cn",
    "%C3",
    "%FF",
    "%1E",
    "\\",
    "\\n",
    "n",
    "+",
    ";",
    "EIO=4",
    "EIO=3",
    "transport=polling",
    "transport=websocket",
    "sid=",
    "j=",
    "j=1",
    "\xff",
    "€",
    "\u2028",
    "\ud800",
]

# Text of any code point, lone surrogates included (a str handed over by a careless caller).
all_code_points = st.text(st.characters(exclude_categories=()))
steered_text = st.lists(st.sampled_from(TOKENS) | st.text(max_size=3), max_size=12).map("".join)
inputs = st.one_of(all_code_points, steered_text, st.binary())


def as_text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def as_bytes(value: str | bytes) -> bytes:
    # "surrogatepass" turns lone surrogates into invalid UTF-8: exactly what a peer may send.
    return value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value


@settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    inputs,
    st.sampled_from(["GET", "POST", "PUT", "get", ""]),
    st.booleans(),
    st.sampled_from([(Transport.POLLING, Transport.WEBSOCKET), (Transport.POLLING,), (Transport.WEBSOCKET,), ()]),
)
def test_parsers_are_total(
    value: str | bytes, method: str, is_websocket: bool, transports: tuple[Transport, ...]
) -> None:
    text, raw = as_text(value), as_bytes(value)

    for frame in (text, raw):
        try:
            packet = decode_frame(frame)
        except UnknownPacketError:
            assert isinstance(frame, str)
        else:
            assert isinstance(packet, Packet)

    try:
        packets = decode_payload(text)
    except UnknownPacketError:
        pass
    else:
        assert packets
        assert all(isinstance(p, Packet) for p in packets)

    try:
        packets = decode_payload_bytes(raw)
    except UnknownPacketError:
        pass
    else:
        assert packets

    try:
        payload = decode_jsonp_body(raw)
    except RemoteProtocolError:
        pass
    else:
        assert isinstance(payload, str)

    for query_string in (text, raw):
        query = parse_query(query_string)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in query.items())
        outcome: EngineIORequest | HandshakeError
        try:
            outcome = parse_request(query, method=method, is_websocket=is_websocket, transports=transports)
        except HandshakeError as exc:
            outcome = exc
        if isinstance(outcome, HandshakeError):
            assert outcome.http_status == 400
            assert outcome.error_code in (0, 2, 3, 5)
        else:
            assert outcome.transport in transports


# -- the session machine under arbitrary call sequences ----------------------------------------

OPERATIONS = [
    "attach_probe",
    "probe_lost",
    "begin_get",
    "end_get",
    "begin_post",
    "end_post",
    "handle_timeout",
    "close_server",
    "close_client",
    "finish",
    *(f"receive:{t.name}:{v.value}" for t in PacketType for v in Transport),
    "receive:PROBE:websocket",
    "receive:PROBE:polling",
]


@settings(max_examples=500, deadline=None)
@given(
    st.sampled_from(Transport),
    st.lists(st.tuples(st.sampled_from(OPERATIONS), st.sampled_from([0.0, 0.5, 5.0, 10.0, 20.0, 25.0])), max_size=40),
)
def test_session_machine_invariants(transport: Transport, steps: list[tuple[str, float]]) -> None:
    now = 0.0
    session = ServerSession("s", transport, ping_interval=25, ping_timeout=20, upgrade_timeout=10, now=now)
    closes = 0
    for operation, elapsed in steps:
        now += elapsed
        was_closed = session.is_closed
        previous_transport = session.transport
        if operation == "attach_probe":
            session.attach_probe(now)
            events: list[object] = []
        elif operation == "probe_lost":
            events = list(session.probe_lost())
        elif operation == "begin_get":
            decision, get_events = session.begin_get()
            events = list(get_events)
            if was_closed and session.state is SessionState.CLOSED:
                assert decision is PollDecision.REJECT
        elif operation == "end_get":
            session.end_get()
            events = []
        elif operation == "begin_post":
            decision, post_events = session.begin_post()
            events = list(post_events)
            if was_closed:
                assert decision is PollDecision.REJECT
        elif operation == "end_post":
            session.end_post()
            events = []
        elif operation == "handle_timeout":
            events = list(session.handle_timeout(now))
            # Everything due by `now` has been done: the next deadline is later.
            assert session.next_deadline() > now
        elif operation == "close_server":
            events = list(session.close(CloseReason.SERVER_DISCONNECT))
        elif operation == "close_client":
            events = list(session.close(CloseReason.CLIENT_DISCONNECT))
        elif operation == "finish":
            session.finish()
            events = []
        else:
            _, name, via = operation.split(":")
            packet = Packet(PacketType.PING, "probe") if name == "PROBE" else Packet(PacketType[name])
            events = list(session.receive_packet(packet, now, via=Transport(via)))

        closes += sum(isinstance(e, SessionClosed) for e in events)
        # Closed stays closed, and SessionClosed is reported exactly when the session closes.
        if was_closed:
            assert session.is_closed
            assert events == []
        assert closes == (1 if session.is_closed and session.close_reason is not None else 0)
        # An upgraded session never goes back to polling.
        if previous_transport is Transport.WEBSOCKET:
            assert session.transport is Transport.WEBSOCKET
        # A live session always has a timer to run; a closed one never.
        deadline = session.next_deadline()
        assert math.isinf(deadline) is session.is_closed
