"""The spec's exchanges run through a client machine and a server machine at once (``pair.Pair``).

Each test says what crossed the wire, byte for byte, what each side reported, and at which
instant: time is whatever the test says it is.
"""

from __future__ import annotations

import pytest
from pair import Pair

from trio_engineio.exceptions import CloseReason
from trio_engineio.protocol import (
    ClientState,
    Connected,
    HandshakeInfo,
    MessageReceived,
    PollDecision,
    SessionClosed,
    SessionState,
    Transport,
    UpgradeCompleted,
    UpgradeReady,
)

POLLING = Transport.POLLING
WEBSOCKET = Transport.WEBSOCKET
OPEN_POLLING = '0{"sid":"sid1","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'
OPEN_WEBSOCKET = '0{"sid":"sid1","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'


def open_pair(transport: Transport) -> Pair:
    """A pair past its handshake at t=0 (polling offers the websocket upgrade; websocket offers none)."""
    pair = Pair(transport, upgrades=(WEBSOCKET,) if transport is POLLING else ())
    pair.handshake(now=0)
    return pair


# -- handshake -------------------------------------------------------------------------------------


def test_polling_handshake_opens_both_sides() -> None:
    pair = Pair(POLLING)
    assert pair.handshake(now=0) == Connected(HandshakeInfo("sid1", (WEBSOCKET,), 25.0, 20.0, 1_000_000))
    assert pair.wire == [("GET", OPEN_POLLING)]
    assert (pair.client.state, pair.server_session.state) == (ClientState.OPEN, SessionState.OPEN)
    assert pair.client.sid == pair.server_session.sid == "sid1"
    assert pair.client.can_upgrade
    assert (pair.server_session.next_deadline(), pair.client.next_deadline()) == (25, 45.0)


def test_websocket_handshake_opens_both_sides() -> None:
    pair = Pair(WEBSOCKET, upgrades=())
    assert pair.handshake(now=0) == Connected(HandshakeInfo("sid1", (), 25.0, 20.0, 1_000_000))
    assert pair.wire == [("ws<", OPEN_WEBSOCKET)]
    assert (pair.client.state, pair.server_session.state) == (ClientState.OPEN, SessionState.OPEN)
    assert not pair.client.can_upgrade


# -- messages --------------------------------------------------------------------------------------


def test_messages_both_ways_over_polling() -> None:
    pair = open_pair(POLLING)
    pair.client.send_message("hello")
    pair.client.send_message(b"\x01\x02")
    assert pair.post(now=1) == [MessageReceived("hello"), MessageReceived(b"\x01\x02")]
    pair.server_send("hi")
    pair.server_send(b"\xff")
    assert pair.get(now=2) == [MessageReceived("hi"), MessageReceived(b"\xff")]
    assert pair.wire[1:] == [("POST", b"4hello\x1ebAQI="), ("GET", "4hi\x1eb/w==")]


def test_messages_both_ways_over_websocket() -> None:
    pair = open_pair(WEBSOCKET)
    pair.client.send_message("hello")
    pair.client.send_message(b"\x01\x02")
    assert pair.client_flush(now=1) == [MessageReceived("hello"), MessageReceived(b"\x01\x02")]
    pair.server_send("hi")
    pair.server_send(b"\xff")
    assert pair.server_flush(now=2) == [MessageReceived("hi"), MessageReceived(b"\xff")]
    assert pair.wire[1:] == [("ws>", "4hello"), ("ws>", b"\x01\x02"), ("ws<", "4hi"), ("ws<", b"\xff")]


# -- heartbeat -------------------------------------------------------------------------------------


def test_ping_pong_over_polling_moves_both_deadlines() -> None:
    pair = open_pair(POLLING)
    assert pair.tick(now=24.999) == ([], [])
    assert pair.tick(now=25) == ([], [])  # the server queues its PING
    assert pair.get(now=25) == []  # the client queues its PONG
    assert pair.post(now=26) == []
    assert pair.wire[1:] == [("GET", "2"), ("POST", b"3")]
    assert pair.server_session.next_deadline() == 26 + 25  # the next PING, from the PONG
    assert pair.client.next_deadline() == 25 + 25 + 20  # the watchdog, from the PING


def test_ping_pong_over_websocket() -> None:
    pair = open_pair(WEBSOCKET)
    assert pair.tick(now=25) == ([], [])
    assert pair.server_flush(now=25) == []
    assert pair.client_flush(now=25.5) == []
    assert pair.wire[1:] == [("ws<", "2"), ("ws>", "3")]
    assert pair.server_session.next_deadline() == 50.5


def test_a_ping_that_never_arrives_times_out_both_sides_at_the_same_instant() -> None:
    pair = open_pair(POLLING)
    assert pair.tick(now=25) == ([], [])  # the PING is queued, but no GET carries it
    assert pair.tick(now=44.999) == ([], [])
    assert pair.tick(now=45) == (
        [SessionClosed(CloseReason.PING_TIMEOUT, "no packet from the server for 45 s")],
        [SessionClosed(CloseReason.PING_TIMEOUT, "no PONG within 20.0 s")],
    )
    assert (pair.client.state, pair.server_session.state) == (ClientState.CLOSED, SessionState.CLOSED)
    assert pair.wire == [("GET", OPEN_POLLING)]


# -- closing ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("transport", "wire"), [(POLLING, [("POST", b"4bye\x1e1")]), (WEBSOCKET, [("ws>", "4bye"), ("ws>", "1")])]
)
def test_client_close_delivers_the_queued_message_then_close(
    transport: Transport, wire: list[tuple[str, str | bytes]]
) -> None:
    pair = open_pair(transport)
    pair.client.send_message("bye")
    assert pair.client.close(CloseReason.CLIENT_DISCONNECT) == [SessionClosed(CloseReason.CLIENT_DISCONNECT, "")]
    assert pair.client.state is ClientState.CLOSING
    events = pair.post(now=3) if transport is POLLING else pair.client_flush(now=3)
    assert events == [MessageReceived("bye"), SessionClosed(CloseReason.CLIENT_DISCONNECT, "the client sent CLOSE")]
    assert pair.wire[1:] == wire
    assert (pair.client.state, pair.server_session.state) == (ClientState.CLOSED, SessionState.CLOSED)


@pytest.mark.parametrize(
    ("transport", "wire"), [(POLLING, [("GET", "4last\x1e1")]), (WEBSOCKET, [("ws<", "4last"), ("ws<", "1")])]
)
def test_server_close_delivers_the_queued_message_then_close(
    transport: Transport, wire: list[tuple[str, str | bytes]]
) -> None:
    pair = open_pair(transport)
    pair.server_send("last")
    assert pair.server_close("bye") == [SessionClosed(CloseReason.SERVER_DISCONNECT, "bye")]
    assert pair.server_session.state is SessionState.CLOSING
    events = pair.get(now=3) if transport is POLLING else pair.server_flush(now=3)
    assert events == [MessageReceived("last"), SessionClosed(CloseReason.SERVER_DISCONNECT, "the server sent CLOSE")]
    assert pair.wire[1:] == wire
    assert (pair.client.state, pair.server_session.state) == (ClientState.CLOSED, SessionState.CLOSED)


# -- upgrade ---------------------------------------------------------------------------------------


def test_upgrade_probe_pauses_polling_then_moves_both_sides_to_the_websocket() -> None:
    pair = open_pair(POLLING)
    assert pair.begin_get() is PollDecision.PROCEED  # the client always has a GET waiting
    assert pair.probe(now=1) == []  # probe answered; the client waits for its GET to pause polling
    assert (pair.client.state, pair.server_session.state) == (ClientState.PAUSING, SessionState.UPGRADING)
    pair.client.send_message("during")  # buffered: no POST while paused
    assert pair.client.begin_post() is None
    assert pair.end_get(now=2) == [UpgradeReady()]  # the server released the GET with NOOP
    assert pair.client_flush(now=3) == [UpgradeCompleted(), MessageReceived("during")]
    pair.server_send("after")
    assert pair.server_flush(now=4) == [MessageReceived("after")]
    assert pair.wire[1:] == [
        ("probe>", "2probe"),
        ("probe<", "3probe"),
        ("GET", "6"),
        ("ws>", "5"),
        ("ws>", "4during"),
        ("ws<", "4after"),
    ]
    assert (pair.client.transport, pair.server_session.transport) == (WEBSOCKET, WEBSOCKET)
    assert (pair.client.state, pair.server_session.state) == (ClientState.OPEN, SessionState.OPEN)
    assert pair.server_session.begin_get()[0] is PollDecision.REJECT  # polling is over
