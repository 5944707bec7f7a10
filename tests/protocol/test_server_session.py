"""The server session machine: its transition table, heartbeat, upgrade, polling and closing.

Time is whatever the test says it is: every timed assertion is about an exact instant.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import pytest

from trio_engineio.exceptions import CloseReason, LocalProtocolError, SocketIsClosedError
from trio_engineio.protocol.handshake import Transport
from trio_engineio.protocol.packet import Packet, PacketType, encode_frame
from trio_engineio.protocol.server_session import (
    TRANSITIONS,
    UPGRADING_GET_NOOP_DELAY,
    Event,
    MessageReceived,
    PollDecision,
    ServerSession,
    SessionClosed,
    SessionState,
    Trigger,
    UpgradeAbandoned,
    UpgradeCompleted,
    UpgradeProbed,
)

POLLING = Transport.POLLING
WEBSOCKET = Transport.WEBSOCKET

START = 100.0
INTERVAL = 25.0
TIMEOUT = 20.0
UPGRADE_TIMEOUT = 10.0

PING = Packet(PacketType.PING)
PROBE = Packet(PacketType.PING, "probe")
PONG = Packet(PacketType.PONG)
UPGRADE = Packet(PacketType.UPGRADE)
NOOP = Packet(PacketType.NOOP)
CLOSE = Packet(PacketType.CLOSE)


def new_session(transport: Transport = POLLING, now: float = START) -> ServerSession:
    return ServerSession(
        "sid",
        transport,
        ping_interval=INTERVAL,
        ping_timeout=TIMEOUT,
        upgrade_timeout=UPGRADE_TIMEOUT,
        now=now,
    )


def open_websocket() -> ServerSession:
    return new_session(WEBSOCKET)


def probing(now: float = START) -> ServerSession:
    session = new_session()
    assert session.attach_probe(now)
    return session


def upgrading(now: float = START) -> ServerSession:
    session = probing(now)
    assert session.receive_packet(PROBE, now, via=WEBSOCKET) == [UpgradeProbed()]
    return session


def closing() -> ServerSession:
    session = new_session()
    session.close(CloseReason.SERVER_DISCONNECT)
    return session


def closed() -> ServerSession:
    session = new_session()
    session.close(CloseReason.CLIENT_DISCONNECT)
    return session


def upgraded() -> ServerSession:
    session = upgrading()
    assert session.receive_packet(UPGRADE, START, via=WEBSOCKET) == [UpgradeCompleted()]
    return session


def message(data: str | bytes) -> Packet:
    return Packet(PacketType.MESSAGE, data)


def name_of(value: object) -> str:
    """A parameter's id: a setup function's name."""
    return getattr(value, "__name__", repr(value))


def state_of(session: ServerSession) -> SessionState:
    """The state, read through a call so that mypy does not narrow it across calls that change it."""
    return session.state


# -- the transition table -----------------------------------------------------------------------

S = SessionState
T = Trigger

Setup = Callable[[], ServerSession]
Call = Callable[[ServerSession], object]

# For every row of TRANSITIONS: how to reach its state, and the public call that fires its trigger.
ROW_DRIVERS: dict[tuple[SessionState, Trigger], tuple[Setup, Call]] = {
    (S.OPEN, T.ATTACH_PROBE): (new_session, lambda s: s.attach_probe(START)),
    (S.PROBING, T.PROBE): (probing, lambda s: s.receive_packet(PROBE, START, via=WEBSOCKET)),
    (S.UPGRADING, T.UPGRADE): (upgrading, lambda s: s.receive_packet(UPGRADE, START, via=WEBSOCKET)),
    (S.PROBING, T.ABANDON): (probing, lambda s: s.probe_lost()),
    (S.UPGRADING, T.ABANDON): (upgrading, lambda s: s.probe_lost()),
    (S.OPEN, T.CLOSE): (new_session, lambda s: s.close(CloseReason.SERVER_DISCONNECT)),
    (S.PROBING, T.CLOSE): (probing, lambda s: s.close(CloseReason.SERVER_DISCONNECT)),
    (S.UPGRADING, T.CLOSE): (upgrading, lambda s: s.close(CloseReason.SERVER_DISCONNECT)),
    (S.OPEN, T.FINISH): (new_session, lambda s: s.close(CloseReason.CLIENT_DISCONNECT)),
    (S.PROBING, T.FINISH): (probing, lambda s: s.close(CloseReason.PING_TIMEOUT)),
    (S.UPGRADING, T.FINISH): (upgrading, lambda s: s.close(CloseReason.TRANSPORT_CLOSE)),
    (S.CLOSING, T.FINISH): (closing, lambda s: s.finish()),
}


def test_every_transition_has_a_driver() -> None:
    assert set(ROW_DRIVERS) == set(TRANSITIONS)


@pytest.mark.parametrize(
    ("row", "target"),
    list(TRANSITIONS.items()),
    ids=[f"{state.value}-{trigger.value}" for state, trigger in TRANSITIONS],
)
def test_transition_row(row: tuple[SessionState, Trigger], target: SessionState) -> None:
    source, _ = row
    setup, fire = ROW_DRIVERS[row]
    session = setup()
    assert state_of(session) is source
    fire(session)
    assert state_of(session) is target


INVALID_PAIRS = [pair for pair in itertools.product(SessionState, Trigger) if pair not in TRANSITIONS]


def test_invalid_pairs_are_the_complement_of_the_table() -> None:
    assert len(INVALID_PAIRS) == len(SessionState) * len(Trigger) - len(TRANSITIONS)
    # Nothing leaves CLOSED.
    assert all((S.CLOSED, trigger) in INVALID_PAIRS for trigger in Trigger)


@pytest.mark.parametrize(("state", "trigger"), INVALID_PAIRS, ids=lambda x: str(x.value))
def test_invalid_transition_is_a_local_protocol_error(state: SessionState, trigger: Trigger) -> None:
    session = new_session()
    session.state = state
    with pytest.raises(LocalProtocolError, match=f"cannot {trigger.value} a session that is {state.value}"):
        session._apply(trigger)
    assert state_of(session) is state


SESSIONS_IN_EVERY_STATE: dict[str, Callable[[], ServerSession]] = {
    "open polling": new_session,
    "open websocket": open_websocket,
    "upgraded": upgraded,
    "probing": probing,
    "upgrading": upgrading,
    "closing": closing,
    "closed": closed,
}


def receiver(packet: Packet, via: Transport) -> Call:
    return lambda session: session.receive_packet(packet, START, via=via)


PUBLIC_CALLS: dict[str, Callable[[ServerSession], object]] = {
    "attach_probe": lambda s: s.attach_probe(START),
    "probe_lost": lambda s: s.probe_lost(),
    "begin_get": lambda s: s.begin_get(),
    "end_get": lambda s: s.end_get(),
    "begin_post": lambda s: s.begin_post(),
    "end_post": lambda s: s.end_post(),
    "handle_timeout": lambda s: s.handle_timeout(START + 1000),
    "next_deadline": lambda s: s.next_deadline(),
    "close": lambda s: s.close(CloseReason.SERVER_DISCONNECT),
    "finish": lambda s: s.finish(),
    "packets_to_send": lambda s: s.packets_to_send(),
    **{
        f"receive {packet_type.name} via {via.value}": receiver(Packet(packet_type, "probe"), via)
        for packet_type in PacketType
        for via in Transport
    },
}


@pytest.mark.parametrize("setup", SESSIONS_IN_EVERY_STATE.values(), ids=SESSIONS_IN_EVERY_STATE.keys())
@pytest.mark.parametrize("call", PUBLIC_CALLS.values(), ids=PUBLIC_CALLS.keys())
def test_no_public_call_raises_in_any_state(
    setup: Callable[[], ServerSession], call: Callable[[ServerSession], object]
) -> None:
    # The LocalProtocolError of the table guards the machine against its own bugs; whatever
    # the peer or the I/O layer does, in whatever order, the public calls do not raise.
    call(setup())


# -- packets on the session's transport -----------------------------------------------------------


@pytest.mark.parametrize("transport", list(Transport))
@pytest.mark.parametrize("data", ["hello", "", "😀\u2028", b"\x00\xff", b""])
def test_message_is_delivered(transport: Transport, data: str | bytes) -> None:
    session = new_session(transport)
    assert session.receive_packet(message(data), START, via=transport) == [MessageReceived(data)]
    assert state_of(session) is S.OPEN


def test_noop_from_the_client_is_ignored() -> None:
    session = new_session()
    assert session.receive_packet(NOOP, START, via=POLLING) == []
    assert state_of(session) is S.OPEN


def test_client_close_is_a_client_disconnect() -> None:
    session = new_session()
    events = session.receive_packet(CLOSE, START, via=POLLING)
    assert events == [SessionClosed(CloseReason.CLIENT_DISCONNECT, "the client sent CLOSE")]
    assert state_of(session) is S.CLOSED
    assert session.is_closed
    assert session.close_reason is CloseReason.CLIENT_DISCONNECT
    assert session.close_detail == "the client sent CLOSE"


@pytest.mark.parametrize("packet", [PING, PROBE])
@pytest.mark.parametrize("transport", list(Transport))
def test_client_ping_is_a_transport_error(packet: Packet, transport: Transport) -> None:
    # In v4 the server pings; a client PING (probe or not) on the session's transport is an error.
    session = new_session(transport)
    events = session.receive_packet(packet, START, via=transport)
    assert events == [SessionClosed(CloseReason.TRANSPORT_ERROR, "the client sent PING (in v4 the server pings)")]
    assert state_of(session) is S.CLOSED


@pytest.mark.parametrize("packet_type", [PacketType.OPEN, PacketType.UPGRADE])
@pytest.mark.parametrize("transport", list(Transport))
def test_open_or_upgrade_on_an_established_transport_is_a_transport_error(
    packet_type: PacketType, transport: Transport
) -> None:
    session = new_session(transport)
    events = session.receive_packet(Packet(packet_type), START, via=transport)
    detail = f"the client sent {packet_type.name} on an established {transport.value} transport"
    assert events == [SessionClosed(CloseReason.TRANSPORT_ERROR, detail)]
    assert session.close_reason is CloseReason.TRANSPORT_ERROR


def test_packets_after_close_are_ignored() -> None:
    for setup in (closing, closed):
        session = setup()
        reason = session.close_reason
        for packet_type, via in itertools.product(PacketType, Transport):
            assert session.receive_packet(Packet(packet_type, "probe"), START, via=via) == []
        assert session.close_reason is reason
        # Only the CLOSE of a server close is left to send (a closing session's last packet).
        assert session.packets_to_send() == ([CLOSE] if setup is closing else [])


# -- heartbeat --------------------------------------------------------------------------------


def ping_sent(session: ServerSession) -> bool:
    packets = session.packets_to_send()
    assert packets in ([], [PING])
    return packets == [PING]


def test_first_ping_at_exactly_ping_interval() -> None:
    session = new_session()
    assert session.next_deadline() == START + INTERVAL
    assert session.handle_timeout(START + INTERVAL - 0.001) == []
    assert not ping_sent(session)
    assert session.handle_timeout(START + INTERVAL) == []
    assert ping_sent(session)
    # packets_to_send hands the ping over once.
    assert session.packets_to_send() == []
    assert session.next_deadline() == START + INTERVAL + TIMEOUT


def test_ping_timeout_at_exactly_interval_plus_timeout() -> None:
    session = new_session()
    session.handle_timeout(START + INTERVAL)
    assert ping_sent(session)
    # While the pong is awaited, no second ping.
    assert session.handle_timeout(START + INTERVAL + TIMEOUT - 0.001) == []
    assert not ping_sent(session)
    assert state_of(session) is S.OPEN
    events = session.handle_timeout(START + INTERVAL + TIMEOUT)
    assert events == [SessionClosed(CloseReason.PING_TIMEOUT, f"no PONG within {TIMEOUT} s")]
    assert state_of(session) is S.CLOSED
    assert session.close_reason is CloseReason.PING_TIMEOUT
    assert session.next_deadline() == math.inf
    assert session.handle_timeout(START + 10_000) == []
    assert not ping_sent(session)


def test_pong_reschedules_the_ping_from_the_pongs_instant() -> None:
    session = new_session()
    ping_at = START + INTERVAL
    session.handle_timeout(ping_at)
    assert ping_sent(session)
    pong_at = ping_at + 7.5
    assert session.receive_packet(PONG, pong_at, via=POLLING) == []
    assert session.next_deadline() == pong_at + INTERVAL
    assert session.handle_timeout(ping_at + TIMEOUT) == []  # the old pong deadline is gone
    assert not ping_sent(session)
    assert session.handle_timeout(pong_at + INTERVAL) == []
    assert ping_sent(session)
    assert session.next_deadline() == pong_at + INTERVAL + TIMEOUT


def test_heartbeat_runs_for_many_rounds() -> None:
    session = new_session(WEBSOCKET)
    now = START
    for _ in range(100):
        now = session.next_deadline()
        assert session.handle_timeout(now) == []
        assert ping_sent(session)
        now += 0.25
        session.receive_packet(PONG, now, via=WEBSOCKET)
    assert session.next_deadline() == START + 100 * (INTERVAL + 0.25) + INTERVAL
    assert state_of(session) is S.OPEN


def test_late_timer_starts_the_pong_timeout_when_the_ping_is_sent() -> None:
    session = new_session()
    late = START + INTERVAL + 3
    session.handle_timeout(late)
    assert ping_sent(session)
    assert session.next_deadline() == late + TIMEOUT


UNSOLICITED_PONG = SessionClosed(CloseReason.TRANSPORT_ERROR, "the client sent PONG with no PING outstanding")


@pytest.mark.parametrize("transport", [POLLING, WEBSOCKET])
def test_unsolicited_pong_closes_the_session(transport: Transport) -> None:
    """A PONG before any PING is a protocol violation (a PONG flood costs one packet to stop)."""
    session = new_session(transport)
    assert session.receive_packet(PONG, START + 5, via=transport) == [UNSOLICITED_PONG]
    assert state_of(session) is S.CLOSED
    assert session.close_reason is CloseReason.TRANSPORT_ERROR
    assert session.next_deadline() == math.inf
    assert session.receive_packet(PONG, START + 6, via=transport) == []  # reported once


def test_a_second_pong_for_one_ping_closes_the_session() -> None:
    session = new_session()
    session.handle_timeout(START + INTERVAL)
    assert ping_sent(session)
    assert session.receive_packet(PONG, START + INTERVAL + 1, via=POLLING) == []
    assert session.receive_packet(PONG, START + INTERVAL + 2, via=POLLING) == [UNSOLICITED_PONG]
    assert state_of(session) is S.CLOSED


def test_as_many_pongs_as_pings_keep_the_session_open() -> None:
    """The rule in one line: the PONGs received never outnumber the PINGs sent."""
    session = new_session(WEBSOCKET)
    pings = 0
    for pongs in range(1, 51):
        now = session.next_deadline()
        session.handle_timeout(now)
        pings += len(session.packets_to_send())
        assert session.receive_packet(PONG, now + pongs % 3, via=WEBSOCKET) == []
        assert pongs == pings
    assert state_of(session) is S.OPEN
    assert session.receive_packet(PONG, session.next_deadline() - 1, via=WEBSOCKET) == [UNSOLICITED_PONG]


def test_pong_with_data_answering_a_ping_is_accepted() -> None:
    """The client echoes the PING's data; the server's PINGs carry none, but any data answers."""
    session = new_session()
    session.handle_timeout(START + INTERVAL)
    assert ping_sent(session)
    assert session.receive_packet(Packet(PacketType.PONG, "x"), START + INTERVAL + 1, via=POLLING) == []
    assert session.next_deadline() == START + INTERVAL + 1 + INTERVAL


def test_unsolicited_pong_after_a_ping_timeout_is_ignored() -> None:
    session = new_session()
    session.handle_timeout(START + INTERVAL)
    session.handle_timeout(START + INTERVAL + TIMEOUT)
    assert session.close_reason is CloseReason.PING_TIMEOUT
    assert session.receive_packet(PONG, START + INTERVAL + TIMEOUT + 1, via=POLLING) == []
    assert session.close_reason is CloseReason.PING_TIMEOUT


def test_messages_do_not_reset_the_heartbeat() -> None:
    session = new_session()
    session.handle_timeout(START + INTERVAL)
    assert ping_sent(session)
    session.receive_packet(message("still here"), START + INTERVAL + 1, via=POLLING)
    events = session.handle_timeout(START + INTERVAL + TIMEOUT)
    assert events == [SessionClosed(CloseReason.PING_TIMEOUT, f"no PONG within {TIMEOUT} s")]


def test_heartbeat_with_fractional_seconds() -> None:
    session = ServerSession("s", POLLING, ping_interval=0.25, ping_timeout=0.125, upgrade_timeout=1, now=0)
    assert session.next_deadline() == 0.25
    session.handle_timeout(0.25)
    assert ping_sent(session)
    assert session.next_deadline() == 0.375
    assert session.handle_timeout(0.375)[0] == SessionClosed(CloseReason.PING_TIMEOUT, "no PONG within 0.125 s")


# -- upgrade ----------------------------------------------------------------------------------


def test_upgrade_path() -> None:
    session = new_session()
    assert session.attach_probe(START + 1)
    assert state_of(session) is S.PROBING
    # Polling goes on while the websocket probes.
    assert session.begin_get() == (PollDecision.PROCEED, [])
    assert session.get_pending
    assert session.pending_get_decision() is PollDecision.PROCEED
    assert session.receive_packet(message("via polling"), START + 1, via=POLLING) == [MessageReceived("via polling")]

    events = session.receive_packet(PROBE, START + 2, via=WEBSOCKET)
    assert events == [UpgradeProbed()]
    (probed,) = events
    assert isinstance(probed, UpgradeProbed)
    assert encode_frame(probed.reply) == "3probe"
    assert state_of(session) is S.UPGRADING
    assert session.transport is POLLING
    # That GET began after the websocket attached, maybe after the client's 2probe and 5: it
    # waits for the upgrade's outcome (the I/O layer answers NOOP after a short delay); so do
    # new GETs, one at a time.
    assert session.pending_get_decision() is PollDecision.AWAIT_UPGRADE
    session.end_get()
    assert session.begin_get() == (PollDecision.AWAIT_UPGRADE, [])
    assert session.get_pending
    session.end_get()
    # The client may flush a last POST before it sends UPGRADE.
    assert session.begin_post() == (PollDecision.PROCEED, [])
    session.end_post()
    # A NOOP on the probe is harmless.
    assert session.receive_packet(NOOP, START + 3, via=WEBSOCKET) == []
    assert state_of(session) is S.UPGRADING

    assert session.receive_packet(UPGRADE, START + 4, via=WEBSOCKET) == [UpgradeCompleted()]
    assert state_of(session) is S.OPEN
    assert session.transport is WEBSOCKET
    assert session.begin_get() == (PollDecision.REJECT, [])
    assert session.begin_post() == (PollDecision.REJECT, [])
    assert session.receive_packet(message(b"\x01"), START + 5, via=WEBSOCKET) == [MessageReceived(b"\x01")]
    # No second upgrade, and no leftover upgrade deadline.
    assert not session.attach_probe(START + 5)
    assert session.next_deadline() == START + INTERVAL
    assert state_of(session) is S.OPEN


def test_a_get_begun_before_the_websocket_attached_gets_noop_once_the_probe_is_answered() -> None:
    """The official client pauses its polling on its pending GET before it sends UPGRADE."""
    session = new_session()
    assert session.begin_get() == (PollDecision.PROCEED, [])
    assert session.attach_probe(START + 1)
    assert session.pending_get_decision() is PollDecision.PROCEED  # polling goes on
    session.receive_packet(PROBE, START + 2, via=WEBSOCKET)
    assert session.pending_get_decision() is PollDecision.NOOP
    session.receive_packet(UPGRADE, START + 3, via=WEBSOCKET)
    assert session.pending_get_decision() is PollDecision.NOOP  # released already; never 400
    session.end_get()
    assert session.begin_get() == (PollDecision.REJECT, [])


@pytest.mark.parametrize("probed", [False, True])
def test_a_get_begun_during_the_upgrade_gets_400_once_it_completes(probed: bool) -> None:
    """A client may send 2probe and 5 and then a GET, which the server may read first: it waits for
    the outcome, and the completed upgrade answers it 400 (the client is on its websocket)."""
    session = new_session()
    assert session.attach_probe(START + 1)
    if probed:
        session.receive_packet(PROBE, START + 2, via=WEBSOCKET)
        assert session.begin_get() == (PollDecision.AWAIT_UPGRADE, [])
    else:
        assert session.begin_get() == (PollDecision.PROCEED, [])
        session.receive_packet(PROBE, START + 2, via=WEBSOCKET)
    assert session.pending_get_decision() is PollDecision.AWAIT_UPGRADE
    assert session.begin_get()[0] is PollDecision.OVERLAP  # still one GET at a time
    session = new_session()
    session.attach_probe(START + 1)
    session.receive_packet(PROBE, START + 2, via=WEBSOCKET)
    assert session.begin_get() == (PollDecision.AWAIT_UPGRADE, [])
    assert session.receive_packet(UPGRADE, START + 3, via=WEBSOCKET) == [UpgradeCompleted()]
    assert session.pending_get_decision() is PollDecision.REJECT
    session.end_get()
    assert session.pending_get_decision() is PollDecision.NOOP  # no GET waits


def test_a_get_waiting_on_an_abandoned_upgrade_is_served_as_any_get() -> None:
    session = new_session()
    session.attach_probe(START + 1)
    session.receive_packet(PROBE, START + 2, via=WEBSOCKET)
    assert session.begin_get() == (PollDecision.AWAIT_UPGRADE, [])
    assert session.probe_lost() == [UpgradeAbandoned("the probe websocket closed")]
    assert session.pending_get_decision() is PollDecision.PROCEED
    # It began during that upgrade, not the next one: a new probe releases it (the client pauses).
    assert session.attach_probe(START + 3)
    session.receive_packet(PROBE, START + 4, via=WEBSOCKET)
    assert session.pending_get_decision() is PollDecision.NOOP


@pytest.mark.parametrize("setup", [open_websocket, upgraded, probing, upgrading, closing, closed], ids=name_of)
def test_attach_probe_refused(setup: Callable[[], ServerSession]) -> None:
    session = setup()
    state, transport, deadline = session.state, session.transport, session.next_deadline()
    assert not session.attach_probe(START + 1)
    assert (session.state, session.transport, session.next_deadline()) == (state, transport, deadline)


@pytest.mark.parametrize(
    ("setup", "packet"),
    [
        (probing, message("too early")),
        (probing, message(b"too early")),
        (probing, PING),  # a ping that is not "probe"
        (probing, Packet(PacketType.PING, "probe2")),
        (probing, UPGRADE),  # UPGRADE before the probe
        (probing, NOOP),
        (probing, PONG),
        (probing, CLOSE),
        (upgrading, PROBE),  # a second probe
        (upgrading, message("x")),
        (upgrading, Packet(PacketType.PONG, "probe")),
        (upgrading, Packet(PacketType.OPEN)),
        (upgrading, CLOSE),
    ],
)
def test_wrong_packet_on_the_probe_abandons_the_upgrade(setup: Callable[[], ServerSession], packet: Packet) -> None:
    session = setup()
    events = session.receive_packet(packet, START + 1, via=WEBSOCKET)
    assert events == [UpgradeAbandoned(f"unexpected {packet.type.name} packet during the upgrade")]
    # The session goes on polling, not closed, and may try again.
    assert state_of(session) is S.OPEN
    assert session.transport is POLLING
    assert session.close_reason is None
    assert session.next_deadline() == START + INTERVAL
    assert session.begin_get() == (PollDecision.PROCEED, [])
    assert session.attach_probe(START + 2)


@pytest.mark.parametrize("setup", [probing, upgrading], ids=name_of)
def test_probe_lost_abandons_the_upgrade(setup: Callable[[], ServerSession]) -> None:
    session = setup()
    assert session.probe_lost() == [UpgradeAbandoned("the probe websocket closed")]
    assert state_of(session) is S.OPEN
    assert session.transport is POLLING
    assert session.next_deadline() == START + INTERVAL
    assert session.probe_lost() == []


@pytest.mark.parametrize("setup", [new_session, upgraded, closing, closed], ids=name_of)
def test_probe_lost_without_a_probe_does_nothing(setup: Callable[[], ServerSession]) -> None:
    session = setup()
    state = session.state
    assert session.probe_lost() == []
    assert state_of(session) is state


@pytest.mark.parametrize("setup", [probing, upgrading], ids=name_of)
def test_upgrade_timeout_at_exactly_upgrade_timeout(setup: Callable[[], ServerSession]) -> None:
    session = setup()
    assert session.next_deadline() == START + UPGRADE_TIMEOUT
    assert session.handle_timeout(START + UPGRADE_TIMEOUT - 0.001) == []
    assert state_of(session) is not S.OPEN
    events = session.handle_timeout(START + UPGRADE_TIMEOUT)
    assert events == [UpgradeAbandoned(f"no UPGRADE packet within {UPGRADE_TIMEOUT} s")]
    assert state_of(session) is S.OPEN
    assert session.transport is POLLING
    assert not ping_sent(session)
    assert session.next_deadline() == START + INTERVAL


def test_upgrade_timeout_counts_from_the_attach() -> None:
    session = new_session()
    session.attach_probe(START + 3)
    session.receive_packet(PROBE, START + 9, via=WEBSOCKET)
    assert session.next_deadline() == START + 3 + UPGRADE_TIMEOUT


def test_next_deadline_is_the_earliest_of_ping_and_upgrade() -> None:
    session = new_session()
    # The upgrade deadline falls after the next ping: the ping comes first.
    session.attach_probe(START + INTERVAL - 1)
    assert session.next_deadline() == START + INTERVAL
    session.handle_timeout(START + INTERVAL)
    assert ping_sent(session)
    # Now the upgrade deadline is before the pong deadline.
    assert session.next_deadline() == START + INTERVAL - 1 + UPGRADE_TIMEOUT
    session.handle_timeout(START + INTERVAL - 1 + UPGRADE_TIMEOUT)
    assert session.next_deadline() == START + INTERVAL + TIMEOUT


def test_ping_timeout_during_an_upgrade_closes_the_session() -> None:
    session = new_session()
    session.handle_timeout(START + INTERVAL)
    assert ping_sent(session)
    session.attach_probe(START + INTERVAL + TIMEOUT - 1)
    events = session.handle_timeout(START + INTERVAL + TIMEOUT)
    assert events == [SessionClosed(CloseReason.PING_TIMEOUT, f"no PONG within {TIMEOUT} s")]
    assert state_of(session) is S.CLOSED
    assert session.next_deadline() == math.inf
    assert session.probe_lost() == []


def test_upgrade_timeout_and_ping_at_the_same_instant() -> None:
    session = ServerSession("s", POLLING, ping_interval=10, ping_timeout=5, upgrade_timeout=10, now=0)
    session.attach_probe(0)
    assert session.handle_timeout(10) == [UpgradeAbandoned("no UPGRADE packet within 10 s")]
    assert ping_sent(session)
    assert session.next_deadline() == 15


def test_upgrade_timeout_and_ping_timeout_at_the_same_instant() -> None:
    session = ServerSession("s", POLLING, ping_interval=10, ping_timeout=5, upgrade_timeout=10, now=0)
    session.handle_timeout(10)
    assert ping_sent(session)
    session.attach_probe(5)
    assert session.handle_timeout(15) == [
        UpgradeAbandoned("no UPGRADE packet within 10 s"),
        SessionClosed(CloseReason.PING_TIMEOUT, "no PONG within 5 s"),
    ]
    assert state_of(session) is S.CLOSED


def test_pong_on_polling_during_the_upgrade_keeps_the_session_alive() -> None:
    session = new_session()
    session.handle_timeout(START + INTERVAL)
    assert ping_sent(session)
    session.attach_probe(START + INTERVAL + 1)
    session.receive_packet(PROBE, START + INTERVAL + 2, via=WEBSOCKET)
    assert session.receive_packet(PONG, START + INTERVAL + 3, via=POLLING) == []
    assert state_of(session) is S.UPGRADING
    assert session.next_deadline() == START + INTERVAL + 1 + UPGRADE_TIMEOUT


def test_packets_from_a_websocket_that_is_not_probing_are_the_sessions() -> None:
    # Once an upgrade is abandoned the I/O layer closes the probe; if it still
    # feeds a packet from it, the machine treats it as the session's own.
    session = probing()
    session.probe_lost()
    assert session.receive_packet(message("late"), START, via=WEBSOCKET) == [MessageReceived("late")]


# -- polling requests -------------------------------------------------------------------------


def test_sequential_gets_and_posts_proceed() -> None:
    session = new_session()
    for _ in range(3):
        assert session.begin_get() == (PollDecision.PROCEED, [])
        assert session.get_pending
        # A GET and a POST may be in flight together.
        assert session.begin_post() == (PollDecision.PROCEED, [])
        session.end_post()
        session.end_get()
        assert not session.get_pending


def test_overlapping_gets_close_the_session() -> None:
    session = new_session()
    assert session.begin_get() == (PollDecision.PROCEED, [])
    decision, events = session.begin_get()
    assert decision is PollDecision.OVERLAP
    assert events == [SessionClosed(CloseReason.TRANSPORT_ERROR, "overlapping GET requests")]
    assert state_of(session) is S.CLOSED
    assert session.begin_get() == (PollDecision.REJECT, [])
    assert session.begin_post() == (PollDecision.REJECT, [])


def test_overlapping_posts_close_the_session() -> None:
    session = new_session()
    assert session.begin_post() == (PollDecision.PROCEED, [])
    decision, events = session.begin_post()
    assert decision is PollDecision.OVERLAP
    assert events == [SessionClosed(CloseReason.TRANSPORT_ERROR, "overlapping POST requests")]
    assert state_of(session) is S.CLOSED
    assert session.begin_post() == (PollDecision.REJECT, [])


def test_overlapping_get_while_closing_reports_no_second_close() -> None:
    session = new_session()
    assert session.begin_get() == (PollDecision.PROCEED, [])
    session.close(CloseReason.SERVER_DISCONNECT)
    assert session.begin_get() == (PollDecision.OVERLAP, [])
    assert session.close_reason is CloseReason.SERVER_DISCONNECT


@pytest.mark.parametrize("setup", [open_websocket, upgraded, closed], ids=name_of)
def test_polling_rejected_when_not_polling_or_closed(setup: Callable[[], ServerSession]) -> None:
    session = setup()
    assert session.begin_get() == (PollDecision.REJECT, [])
    assert session.begin_post() == (PollDecision.REJECT, [])
    assert not session.get_pending
    assert state_of(session) in (S.OPEN, S.CLOSED)


# -- closing ----------------------------------------------------------------------------------


def test_server_close_delivers_close_then_finishes() -> None:
    session = new_session()
    events = session.close(CloseReason.SERVER_DISCONNECT, "bye")
    assert events == [SessionClosed(CloseReason.SERVER_DISCONNECT, "bye")]
    assert state_of(session) is S.CLOSING
    assert session.is_closed
    assert (session.close_reason, session.close_detail) == (CloseReason.SERVER_DISCONNECT, "bye")
    # While CLOSING: one more GET carries the CLOSE packet; no POST, no timers, no PING.
    assert session.begin_get() == (PollDecision.PROCEED, [])
    assert session.begin_post() == (PollDecision.REJECT, [])
    assert session.next_deadline() == math.inf
    assert session.handle_timeout(START + 1000) == []
    assert session.poll_response(START + 1000) == [CLOSE]
    session.end_get()
    assert session.poll_sent()  # delivered: over
    assert state_of(session) is S.CLOSED
    assert session.begin_get() == (PollDecision.REJECT, [])
    session.finish()
    assert state_of(session) is S.CLOSED


@pytest.mark.parametrize("reason", [r for r in CloseReason if r is not CloseReason.SERVER_DISCONNECT])
def test_other_close_reasons_end_at_once(reason: CloseReason) -> None:
    session = new_session()
    assert session.close(reason) == [SessionClosed(reason, "")]
    assert state_of(session) is S.CLOSED
    assert session.close_reason is reason


@pytest.mark.parametrize("setup", [new_session, probing, upgrading, upgraded], ids=name_of)
@pytest.mark.parametrize("first", list(CloseReason))
def test_close_is_idempotent(setup: Callable[[], ServerSession], first: CloseReason) -> None:
    session = setup()
    assert len(session.close(first, "first")) == 1
    for reason in CloseReason:
        assert session.close(reason, "again") == []
    assert (session.close_reason, session.close_detail) == (first, "first")
    session.finish()
    assert session.close(first) == []
    assert state_of(session) is S.CLOSED


def test_close_during_an_upgrade_drops_the_upgrade_deadline() -> None:
    session = probing()
    session.close(CloseReason.SERVER_DISCONNECT)
    assert session.next_deadline() == math.inf
    assert session.handle_timeout(START + UPGRADE_TIMEOUT) == []
    assert session.receive_packet(PROBE, START, via=WEBSOCKET) == []
    assert state_of(session) is S.CLOSING


def test_new_session_is_open() -> None:
    session = new_session()
    assert session.sid == "sid"
    assert (session.state, session.transport) == (S.OPEN, POLLING)
    assert not session.is_closed
    assert session.close_reason is None
    assert session.close_detail == ""
    assert not session.get_pending
    assert session.packets_to_send() == []


def test_events_are_frozen_values() -> None:
    event: Event = MessageReceived("x")
    assert event == MessageReceived("x")
    assert hash(UpgradeProbed()) == hash(UpgradeProbed())
    assert UpgradeProbed().reply == Packet(PacketType.PONG, "probe")
    with pytest.raises(AttributeError):
        event.data = "y"  # type: ignore[misc]


def test_a_server_close_during_the_upgrade_still_takes_the_clients_upgrade() -> None:
    """After answering the probe the client upgrades regardless and stops polling.

    A server close in that window must reach it on the websocket (as the reference
    server does), so the UPGRADE packet still switches the transport while CLOSING.
    """
    session = new_session()
    assert session.attach_probe(START)
    assert session.receive_packet(Packet(PacketType.PING, "probe"), START, via=WEBSOCKET) == [UpgradeProbed()]
    assert session.close(CloseReason.SERVER_DISCONNECT) == [SessionClosed(CloseReason.SERVER_DISCONNECT)]
    assert session.state is SessionState.CLOSING
    assert session.receive_packet(Packet(PacketType.UPGRADE), START, via=WEBSOCKET) == [UpgradeCompleted()]
    assert session.transport is WEBSOCKET
    # Only once: a second UPGRADE, or anything else, is ignored while closing.
    assert session.receive_packet(Packet(PacketType.UPGRADE), START, via=WEBSOCKET) == []
    assert session.receive_packet(Packet(PacketType.MESSAGE, "late"), START, via=WEBSOCKET) == []


def test_a_server_close_before_the_probe_is_answered_ignores_a_later_upgrade() -> None:
    """Closed while only PROBING: the client has not been told the probe worked, so no upgrade."""
    session = new_session()
    assert session.attach_probe(START)
    session.close(CloseReason.SERVER_DISCONNECT)
    assert session.receive_packet(Packet(PacketType.UPGRADE), START, via=WEBSOCKET) == []
    assert session.transport is POLLING


# -- the outbound queue -----------------------------------------------------------------------


def queued_session(*packets: Packet, transport: Transport = POLLING, **limits: int) -> ServerSession:
    session = ServerSession(
        "sid",
        transport,
        ping_interval=INTERVAL,
        ping_timeout=TIMEOUT,
        upgrade_timeout=UPGRADE_TIMEOUT,
        now=START,
        **limits,
    )
    for packet in packets:
        session.queue_packet(packet)
    return session


def test_the_queue_keeps_messages_pings_and_the_close_in_order() -> None:
    session = queued_session(message("a"), transport=WEBSOCKET)
    session.handle_timeout(START + INTERVAL)  # the PING goes behind "a"
    session.queue_packet(message(b"b"))
    assert session.queued_count == 3
    session.close(CloseReason.SERVER_DISCONNECT, "bye")
    assert session.packets_to_send() == [message("a"), PING, message(b"b"), CLOSE]
    assert session.queued_count == 0
    assert session.packets_to_send() == []


@pytest.mark.parametrize("setup", [closing, closed])
def test_nothing_is_queued_once_closed(setup: Callable[[], ServerSession]) -> None:
    session = setup()
    with pytest.raises(SocketIsClosedError, match="sid is clos"):
        session.queue_packet(message("late"))


@pytest.mark.parametrize("reason", [r for r in CloseReason if r is not CloseReason.SERVER_DISCONNECT])
def test_a_close_not_started_by_the_server_drops_the_queue(reason: CloseReason) -> None:
    session = queued_session(message("a"), message("b"))
    session.close(reason)
    assert session.queued_count == 0
    assert session.packets_to_send() == []


def test_finish_drops_a_close_that_was_never_delivered() -> None:
    session = queued_session(message("a"))
    session.close(CloseReason.SERVER_DISCONNECT)
    session.finish()  # close_timeout: delivery gave up
    assert session.packets_to_send() == []


def test_backlogged_at_the_buffer_size_while_open_only() -> None:
    session = queued_session(message("0"), message("1"), outbound_buffer_size=3)
    assert not session.backlogged
    session.queue_packet(message("2"))
    assert session.backlogged
    session.packets_to_send()
    assert not session.backlogged
    # During an upgrade nothing drains the queue until UPGRADE: it never says wait.
    upgrading_session = queued_session(*(message(str(i)) for i in range(5)), outbound_buffer_size=3)
    upgrading_session.attach_probe(START)
    assert not upgrading_session.backlogged
    upgrading_session.receive_packet(PROBE, START, via=WEBSOCKET)
    assert not upgrading_session.backlogged
    upgrading_session.probe_lost()  # abandoned: polling again, with 5 queued
    assert upgrading_session.backlogged
    # Closing: sends fail rather than wait.
    upgrading_session.close(CloseReason.SERVER_DISCONNECT)
    assert not upgrading_session.backlogged


def test_a_poll_with_nothing_queued_waits() -> None:
    session = new_session()
    assert session.begin_get() == (PollDecision.PROCEED, [])
    assert session.poll_response(START) is PollDecision.PROCEED
    assert session.poll_deadline() == math.inf
    assert not session.poll_sent()


def test_a_poll_batches_by_packet_count() -> None:
    session = queued_session(*(message(str(i)) for i in range(5)), max_packets_per_poll=2)
    session.begin_get()
    assert session.poll_response(START) == [message("0"), message("1")]
    assert session.queued_count == 3
    assert not session.poll_sent()
    assert session.poll_response(START) == [message("2"), message("3")]
    assert session.poll_response(START) == [message("4")]


def test_a_poll_batches_by_bytes_and_a_large_packet_goes_alone() -> None:
    # "4aaaa" is 5 bytes, "4é" 3 (UTF-8), separators 1: 5 + 1 + 3 = 9 fits in 9, one more does not.
    session = queued_session(message("aaaa"), message("é"), message("x"), message("y" * 50), max_poll_bytes=9)
    session.begin_get()
    assert session.poll_response(START) == [message("aaaa"), message("é")]
    assert session.poll_response(START) == [message("x")]
    assert session.poll_response(START) == [message("y" * 50)]


def test_a_response_that_could_not_be_sent_goes_back_first_in_line() -> None:
    session = queued_session(message("0"), message("1"), message("2"), max_packets_per_poll=2)
    session.begin_get()
    assert session.poll_response(START) == [message("0"), message("1")]
    session.queue_packet(message("3"))
    session.poll_not_sent()
    session.end_get()
    session.begin_get()
    assert session.poll_response(START) == [message("0"), message("1")]
    session.poll_sent()
    assert session.packets_to_send() == [message("2"), message("3")]


def test_the_close_of_a_server_close_ends_the_session_once_delivered() -> None:
    session = queued_session(message("last"))
    session.close(CloseReason.SERVER_DISCONNECT)
    session.begin_get()
    assert session.poll_response(START) == [message("last"), CLOSE]
    session.poll_not_sent()  # the response did not leave: still CLOSING, the CLOSE waits again
    assert state_of(session) is S.CLOSING
    assert session.poll_response(START) == [message("last"), CLOSE]
    assert session.poll_sent()
    assert state_of(session) is S.CLOSED


@pytest.mark.parametrize(
    ("reason", "answer"),
    [(r, [NOOP] if r is CloseReason.CLIENT_DISCONNECT else [CLOSE]) for r in CloseReason],
)
def test_a_get_released_by_the_end_of_the_session(reason: CloseReason, answer: list[Packet]) -> None:
    # A client that said goodbye gets NOOP; an error, a timeout, or a server close that gave up
    # delivering its CLOSE gets CLOSE. None of it comes from the queue.
    session = queued_session(message("a"))
    session.begin_get()
    session.close(reason)
    session.finish()
    assert session.poll_response(START) == answer
    assert not session.poll_sent()


def test_a_get_waiting_when_the_probe_is_answered_gets_noop() -> None:
    session = new_session()
    session.begin_get()  # before the websocket attached
    session.attach_probe(START)
    assert session.poll_response(START) is PollDecision.PROCEED  # probing: served as usual
    session.queue_packet(message("b"))
    session.receive_packet(PROBE, START, via=WEBSOCKET)
    assert session.poll_response(START) == [NOOP]  # the client pauses polling on it
    session.receive_packet(UPGRADE, START, via=WEBSOCKET)
    assert session.poll_response(START) == [NOOP]
    assert not session.poll_sent()
    assert session.packets_to_send() == [message("b")]  # for the websocket


def test_a_get_begun_during_the_upgrade_waits_for_its_outcome_then_noop() -> None:
    session = upgrading()
    session.begin_get()
    assert session.poll_response(START) is PollDecision.AWAIT_UPGRADE
    assert session.poll_deadline() == START + UPGRADING_GET_NOOP_DELAY
    assert session.poll_response(START + 0.05) is PollDecision.AWAIT_UPGRADE
    assert session.poll_response(START + UPGRADING_GET_NOOP_DELAY) == [NOOP]
    session.end_get()
    assert session.poll_deadline() == math.inf


def test_a_get_begun_during_the_upgrade_is_refused_once_it_completes() -> None:
    session = upgrading()
    session.begin_get()
    assert session.poll_response(START) is PollDecision.AWAIT_UPGRADE
    session.receive_packet(UPGRADE, START, via=WEBSOCKET)
    assert session.poll_response(START) is PollDecision.REJECT
    assert session.poll_deadline() == math.inf


def test_a_get_begun_during_the_upgrade_is_served_once_it_is_abandoned() -> None:
    session = upgrading()
    session.begin_get()
    assert session.poll_response(START) is PollDecision.AWAIT_UPGRADE
    session.queue_packet(message("a"))
    session.probe_lost()
    assert session.poll_deadline() == math.inf  # no NOOP deadline left to spin on
    assert session.poll_response(START) == [message("a")]
