"""The client session machine, driven by hand: packets in, events and packets out, time as numbers.

No I/O and no clock: every instant is an argument, so the watchdog's deadlines are asserted exactly.
"""

from __future__ import annotations

import json
import math

import pytest

from trio_engineio.exceptions import CloseReason, LocalProtocolError, RemoteProtocolError, SocketIsClosedError
from trio_engineio.protocol.client_session import (
    CLIENT_TRANSITIONS,
    PROBE_PACKET,
    ClientSession,
    ClientState,
    ClientTrigger,
    Connected,
    HandshakeInfo,
    UpgradeReady,
    parse_open_packet,
)
from trio_engineio.protocol.handshake import Transport
from trio_engineio.protocol.packet import Packet, PacketType
from trio_engineio.protocol.payload import decode_payload_bytes
from trio_engineio.protocol.server_session import MessageReceived, SessionClosed, UpgradeAbandoned

P = PacketType


def open_packet(**overrides: object) -> Packet:
    handshake: dict[str, object] = {
        "sid": "abc",
        "upgrades": ["websocket"],
        "pingInterval": 25000,
        "pingTimeout": 20000,
        "maxPayload": 1000000,
    }
    handshake.update(overrides)
    return Packet(P.OPEN, json.dumps({k: v for k, v in handshake.items() if v is not ...}))


def opened(transport: Transport = Transport.POLLING, now: float = 0, **overrides: object) -> ClientSession:
    session = ClientSession(transport, **{k: v for k, v in overrides.items() if k == "max_packets_per_post"})  # type: ignore[arg-type]
    session.receive_open(open_packet(**{k: v for k, v in overrides.items() if k != "max_packets_per_post"}), now)
    return session


def state_of(session: ClientSession) -> ClientState:
    """The state, read through a call so that mypy does not narrow it across transitions."""
    return session.state


def upgrading() -> ClientSession:
    """A polling session whose probe was answered while polling was idle: the websocket is the transport."""
    session = opened()
    session.start_probe()
    assert session.receive_probe_packet(Packet(P.PONG, "probe"), 1) == [UpgradeReady()]
    return session


# -- the OPEN packet -----------------------------------------------------------


def test_parse_open_packet_converts_milliseconds_and_upgrades() -> None:
    info = parse_open_packet(open_packet(upgrades=["websocket", "webtransport"], pingInterval=300, pingTimeout=200))
    assert info == HandshakeInfo("abc", (Transport.WEBSOCKET,), 0.3, 0.2, 1000000)


def test_parse_open_packet_accepts_a_missing_max_payload_and_upgrades() -> None:
    info = parse_open_packet(open_packet(maxPayload=..., upgrades=...))
    assert info.max_payload is None
    assert info.upgrades == ()


@pytest.mark.parametrize(
    "packet",
    [
        Packet(P.MESSAGE, "{}"),
        Packet(P.MESSAGE, b"\x00"),
        Packet(P.OPEN, b"{}"),
        Packet(P.OPEN, "not json"),
        Packet(P.OPEN, "[1, 2]"),
        open_packet(sid=...),
        open_packet(sid=""),
        open_packet(sid=5),
        open_packet(upgrades="websocket"),
        open_packet(upgrades=[1]),
        open_packet(pingInterval=...),
        open_packet(pingInterval="25000"),
        open_packet(pingInterval=True),
        open_packet(pingInterval=0),
        open_packet(pingTimeout=-1),
        open_packet(maxPayload=0),
        open_packet(maxPayload=1.5),
        open_packet(maxPayload=True),
    ],
)
def test_parse_open_packet_rejects_bad_handshakes(packet: Packet) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_open_packet(packet)


def test_parse_open_packet_rejects_infinity() -> None:
    with pytest.raises(RemoteProtocolError):
        parse_open_packet(Packet(P.OPEN, '{"sid":"a","pingInterval":1e999,"pingTimeout":1}'))


def test_receive_open_connects() -> None:
    session = ClientSession(Transport.POLLING)
    assert session.sid is None
    assert session.next_deadline() == math.inf
    event = session.receive_open(open_packet(), now=10)
    assert isinstance(event, Connected)
    assert event.info.sid == "abc"
    assert session.sid == "abc"
    assert session.state is ClientState.OPEN
    assert session.next_deadline() == 10 + 25 + 20


def test_a_bad_open_packet_closes_the_session_with_transport_error() -> None:
    session = ClientSession(Transport.WEBSOCKET)
    with pytest.raises(RemoteProtocolError):
        session.receive_open(Packet(P.OPEN, "{}"), now=0)
    assert session.state is ClientState.CLOSED
    assert session.close_reason is CloseReason.TRANSPORT_ERROR


def test_a_second_open_packet_is_a_local_error() -> None:
    session = opened()
    with pytest.raises(LocalProtocolError):
        session.receive_open(open_packet(), now=1)


def test_max_packets_per_post_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ClientSession(Transport.POLLING, max_packets_per_post=0)


# -- packets ---------------------------------------------------------------------


def test_packets_before_the_open_packet_or_after_the_close_are_ignored() -> None:
    session = ClientSession(Transport.WEBSOCKET)
    assert session.receive_packet(Packet(P.MESSAGE, "x"), 0) == []
    session = opened(Transport.WEBSOCKET)
    session.close(CloseReason.PING_TIMEOUT)
    assert session.receive_packet(Packet(P.MESSAGE, "x"), 0) == []


def test_messages_text_and_binary() -> None:
    session = opened(Transport.WEBSOCKET)
    assert session.receive_packet(Packet(P.MESSAGE, "hi"), 1) == [MessageReceived("hi")]
    assert session.receive_packet(Packet(P.MESSAGE, b"\x00\xff"), 2) == [MessageReceived(b"\x00\xff")]


def test_ping_is_answered_with_pong_carrying_its_data() -> None:
    session = opened(Transport.WEBSOCKET)
    assert session.receive_packet(Packet(P.PING), 1) == []
    assert session.receive_packet(Packet(P.PING, "x"), 2) == []
    assert session.packets_to_send() == [Packet(P.PONG), Packet(P.PONG, "x")]
    assert session.packets_to_send() == []


def test_noop_is_ignored_but_feeds_the_watchdog() -> None:
    session = opened(Transport.WEBSOCKET)
    assert session.receive_packet(Packet(P.NOOP), 7) == []
    assert session.next_deadline() == 7 + 45


def test_close_from_the_server_is_a_server_disconnect() -> None:
    session = opened(Transport.WEBSOCKET)
    session.send_message("dropped")
    events = session.receive_packet(Packet(P.CLOSE), 1)
    assert events == [SessionClosed(CloseReason.SERVER_DISCONNECT, "the server sent CLOSE")]
    assert session.state is ClientState.CLOSED
    assert session.packets_to_send() == []
    assert session.next_deadline() == math.inf


@pytest.mark.parametrize("packet_type", [P.OPEN, P.PONG, P.UPGRADE])
def test_unexpected_packets_are_a_transport_error(packet_type: PacketType) -> None:
    session = opened(Transport.WEBSOCKET)
    [event] = session.receive_packet(Packet(packet_type), 1)
    assert isinstance(event, SessionClosed)
    assert event.reason is CloseReason.TRANSPORT_ERROR
    assert session.is_closed


def test_send_message_queues_in_order() -> None:
    session = opened(Transport.WEBSOCKET)
    session.send_message("a")
    session.send_message(b"b")
    assert session.send_queue_size == 2
    assert session.has_packets_to_send
    assert session.packets_to_send() == [Packet(P.MESSAGE, "a"), Packet(P.MESSAGE, b"b")]
    assert not session.has_packets_to_send


def test_send_message_needs_an_open_session() -> None:
    session = ClientSession(Transport.POLLING)
    with pytest.raises(SocketIsClosedError):
        session.send_message("early")
    session = opened()
    session.close(CloseReason.CLIENT_DISCONNECT)
    with pytest.raises(SocketIsClosedError):
        session.send_message("late")


def test_packets_to_send_is_for_websockets_only() -> None:
    session = opened()
    session.send_message("x")
    assert session.packets_to_send() == []


# -- the watchdog --------------------------------------------------------------------


def test_watchdog_fires_at_ping_interval_plus_ping_timeout_after_the_last_packet() -> None:
    session = opened(Transport.WEBSOCKET, now=100, pingInterval=300, pingTimeout=200)
    assert session.next_deadline() == pytest.approx(100.5)
    assert session.handle_timeout(100.4) == []
    session.receive_packet(Packet(P.PING), 100.4)
    assert session.next_deadline() == pytest.approx(100.9)
    assert session.handle_timeout(100.5) == []
    [event] = session.handle_timeout(100.9)
    assert event == SessionClosed(CloseReason.PING_TIMEOUT, "no packet from the server for 0.5 s")
    assert session.state is ClientState.CLOSED
    assert session.next_deadline() == math.inf
    assert session.handle_timeout(200) == []


def test_watchdog_is_off_while_closing() -> None:
    session = opened(Transport.WEBSOCKET)
    session.close(CloseReason.CLIENT_DISCONNECT)
    assert session.next_deadline() == math.inf
    assert session.handle_timeout(1000) == []


# -- polling -------------------------------------------------------------------------


def test_one_get_at_a_time() -> None:
    session = opened()
    assert session.begin_get()
    assert not session.begin_get()
    assert not session.polling_idle
    assert session.end_get() == []
    assert session.polling_idle
    assert session.begin_get()


def test_no_get_on_a_websocket_or_a_closed_session() -> None:
    assert not opened(Transport.WEBSOCKET).begin_get()
    session = opened()
    session.close(CloseReason.CLIENT_DISCONNECT)
    assert not session.begin_get()


def test_post_carries_the_queued_packets_and_one_post_at_a_time() -> None:
    session = opened()
    assert session.begin_post() is None
    session.send_message("a")
    session.send_message(b"\x01")
    session.receive_packet(Packet(P.PING), 1)
    assert session.has_packets_to_send
    body = session.begin_post()
    assert body == b"4a\x1ebAQ==\x1e3"
    session.send_message("b")
    assert not session.has_packets_to_send
    assert session.begin_post() is None
    assert session.end_post() == []
    assert session.begin_post() == b"4b"


def test_post_holds_at_most_16_packets_by_default() -> None:
    session = opened()
    for i in range(40):
        session.send_message(str(i))
    sizes = []
    while (body := session.begin_post()) is not None:
        packets = decode_payload_bytes(body)
        sizes.append(len(packets))
        session.end_post()
    assert sizes == [16, 16, 8]


def test_post_packet_limit_is_configurable() -> None:
    session = opened(max_packets_per_post=2)
    for i in range(3):
        session.send_message(str(i))
    assert session.begin_post() == b"40\x1e41"


def test_post_respects_max_payload_in_bytes() -> None:
    session = opened(maxPayload=10)
    session.send_message("ééé")  # 1 + 6 bytes
    session.send_message("xx")  # 3 bytes (+1 separator) would make 11
    session.send_message("y" * 30)  # larger than the budget: goes alone
    assert session.begin_post() == "4ééé".encode()
    session.end_post()
    assert session.begin_post() == b"4xx"
    session.end_post()
    assert session.begin_post() == b"4" + b"y" * 30


def test_post_without_max_payload_is_bounded_by_packet_count_only() -> None:
    session = opened(maxPayload=...)
    session.send_message("x" * 5000)
    session.send_message("y" * 5000)
    body = session.begin_post()
    assert body is not None
    assert len(decode_payload_bytes(body)) == 2


def test_post_is_not_for_websockets() -> None:
    session = opened(Transport.WEBSOCKET)
    session.send_message("x")
    assert session.begin_post() is None


# -- upgrade -------------------------------------------------------------------------


def test_can_upgrade_needs_polling_and_a_websocket_upgrade() -> None:
    assert opened().can_upgrade
    assert not opened(upgrades=[]).can_upgrade
    assert not opened(Transport.WEBSOCKET).can_upgrade
    assert not ClientSession(Transport.POLLING).can_upgrade
    with pytest.raises(LocalProtocolError):
        opened(upgrades=[]).start_probe()


def test_upgrade_waits_for_the_get_and_post_in_flight_then_flushes_in_order() -> None:
    session = opened()
    session.send_message("before")
    assert session.begin_get()
    assert session.begin_post() == b"4before"
    assert session.start_probe() == PROBE_PACKET
    assert session.state is ClientState.PROBING
    # polling goes on while probing
    assert session.end_get() == []
    assert session.begin_get()
    # the probe is answered: polling pauses, nothing new starts
    assert session.receive_probe_packet(Packet(P.PONG, "probe"), 2) == []
    assert state_of(session) is ClientState.PAUSING
    session.send_message("during")
    assert not session.has_packets_to_send
    assert session.begin_post() is None
    assert session.end_post() == []
    assert not session.begin_get()
    # a GET in flight still delivers its packets
    assert session.receive_packet(Packet(P.MESSAGE, "late poll"), 3) == [MessageReceived("late poll")]
    assert session.receive_packet(Packet(P.PING), 3) == []
    assert session.end_get() == [UpgradeReady()]
    assert state_of(session) is ClientState.UPGRADING
    assert session.transport is Transport.WEBSOCKET
    assert session.has_packets_to_send
    assert session.packets_to_send() == [Packet(P.UPGRADE), Packet(P.MESSAGE, "during"), Packet(P.PONG)]
    assert session.state is ClientState.OPEN
    assert not session.begin_get()
    assert session.packets_to_send() == []


def test_upgrade_when_polling_is_already_idle() -> None:
    session = upgrading()
    assert session.state is ClientState.UPGRADING
    assert session.packets_to_send() == [Packet(P.UPGRADE)]
    assert state_of(session) is ClientState.OPEN
    assert not session.can_upgrade


def test_probe_packets_outside_probing_are_ignored() -> None:
    session = opened()
    assert session.receive_probe_packet(Packet(P.PONG, "probe"), 1) == []
    assert session.state is ClientState.OPEN


@pytest.mark.parametrize("packet", [Packet(P.PONG, "nope"), Packet(P.MESSAGE, "probe"), Packet(P.CLOSE)])
def test_a_wrong_probe_answer_abandons_the_upgrade(packet: Packet) -> None:
    session = opened()
    session.start_probe()
    [event] = session.receive_probe_packet(packet, 1)
    assert isinstance(event, UpgradeAbandoned)
    assert session.state is ClientState.OPEN
    assert session.transport is Transport.POLLING
    assert session.begin_get()


def test_abandon_while_pausing_resumes_polling() -> None:
    session = opened()
    assert session.begin_get()
    session.start_probe()
    session.receive_probe_packet(Packet(P.PONG, "probe"), 1)
    assert session.state is ClientState.PAUSING
    assert session.abandon_upgrade("the probe broke") == [UpgradeAbandoned("the probe broke")]
    assert session.end_get() == []
    assert session.begin_get()


def test_abandon_outside_an_upgrade_does_nothing() -> None:
    session = opened()
    assert session.abandon_upgrade("x") == []
    assert upgrading().abandon_upgrade("x") == []


def test_watchdog_counts_the_probe_answer() -> None:
    session = opened(now=0)
    session.start_probe()
    session.receive_probe_packet(Packet(P.PONG, "probe"), 30)
    assert session.next_deadline() == 30 + 45


# -- closing -------------------------------------------------------------------------


def test_client_disconnect_queues_close_behind_the_messages() -> None:
    session = opened(Transport.WEBSOCKET)
    session.send_message("last")
    [event] = session.close(CloseReason.CLIENT_DISCONNECT, "bye")
    assert event == SessionClosed(CloseReason.CLIENT_DISCONNECT, "bye")
    assert session.state is ClientState.CLOSING
    assert session.is_closed
    assert session.close(CloseReason.PING_TIMEOUT) == []
    # a ping during the close is not answered
    assert session.receive_packet(Packet(P.PING), 1) == []
    assert session.packets_to_send() == [Packet(P.MESSAGE, "last"), Packet(P.CLOSE)]
    session.finish()
    assert state_of(session) is ClientState.CLOSED
    session.finish()
    assert state_of(session) is ClientState.CLOSED


def test_client_disconnect_over_polling_posts_the_close() -> None:
    session = opened()
    session.close(CloseReason.CLIENT_DISCONNECT)
    assert session.has_packets_to_send
    assert session.begin_post() == b"1"


def test_close_from_the_server_while_closing_finishes() -> None:
    session = opened(Transport.WEBSOCKET)
    session.close(CloseReason.CLIENT_DISCONNECT)
    assert session.receive_packet(Packet(P.CLOSE), 1) == []
    assert session.state is ClientState.CLOSED
    assert session.close_reason is CloseReason.CLIENT_DISCONNECT


def test_client_disconnect_while_probing_or_pausing_closes_by_polling() -> None:
    session = opened()
    session.start_probe()
    session.close(CloseReason.CLIENT_DISCONNECT)
    assert session.transport is Transport.POLLING
    assert session.receive_probe_packet(Packet(P.PONG, "probe"), 1) == []
    assert session.begin_post() == b"1"

    session = opened()
    assert session.begin_get()
    session.start_probe()
    session.receive_probe_packet(Packet(P.PONG, "probe"), 1)
    session.close(CloseReason.CLIENT_DISCONNECT)
    assert session.begin_post() == b"1"
    assert session.end_get() == []
    assert session.state is ClientState.CLOSING


def test_client_disconnect_while_upgrading_goes_behind_the_upgrade_packet() -> None:
    session = upgrading()
    session.close(CloseReason.CLIENT_DISCONNECT)
    assert session.packets_to_send() == [Packet(P.UPGRADE), Packet(P.CLOSE)]
    assert session.state is ClientState.CLOSING


def test_client_disconnect_before_the_open_packet_closes_at_once() -> None:
    session = ClientSession(Transport.POLLING)
    assert session.close(CloseReason.CLIENT_DISCONNECT) == [SessionClosed(CloseReason.CLIENT_DISCONNECT, "")]
    assert session.state is ClientState.CLOSED
    assert not session.has_packets_to_send


def test_other_reasons_close_at_once_and_drop_the_queue() -> None:
    session = opened(Transport.WEBSOCKET)
    session.send_message("x")
    session.close(CloseReason.TRANSPORT_ERROR, "boom")
    assert session.state is ClientState.CLOSED
    assert session.close_detail == "boom"
    assert not session.has_packets_to_send


def test_nothing_is_sent_once_closed() -> None:
    session = opened(Transport.WEBSOCKET)
    session.close(CloseReason.CLIENT_DISCONNECT)
    session.finish()
    session._to_send.append(Packet(P.NOOP))  # cannot happen through the API; the guard still holds
    assert not session.has_packets_to_send
    assert session.packets_to_send() == []


def test_transition_table_refuses_what_it_does_not_list() -> None:
    assert (ClientState.CLOSED, ClientTrigger.FINISH) not in CLIENT_TRANSITIONS
    session = opened()
    with pytest.raises(LocalProtocolError, match="cannot upgrade a session that is open"):
        session._apply(ClientTrigger.UPGRADE)


def test_every_state_but_closed_can_finish() -> None:
    for state in ClientState:
        if state is not ClientState.CLOSED:
            assert CLIENT_TRANSITIONS[state, ClientTrigger.FINISH] is ClientState.CLOSED
