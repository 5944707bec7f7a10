"""One server-side Engine.IO session as a state machine, with no I/O.

The machine is fed what happened (a packet arrived, a GET or POST began or
ended, time passed) and answers with events for the application and packets
for the peer. It never reads a clock: every call that depends on time takes
``now``, and the heartbeat is driven by :meth:`ServerSession.next_deadline`
and :meth:`ServerSession.handle_timeout`.

States and the triggers that move between them are one table,
:data:`TRANSITIONS`::

    OPEN ──attach_probe──▶ PROBING ──probe──▶ UPGRADING ──upgrade──▶ OPEN (websocket)
      ▲                       │                   │
      └──────abandon──────────┴───────────────────┘
    OPEN / PROBING / UPGRADING ──close──▶ CLOSING ──finish──▶ CLOSED
    any state but CLOSED ──finish──▶ CLOSED

``CLOSING`` exists for a close the server starts: the CLOSE packet still has to
reach the client behind the packets already queued.

The machine also keeps the session's outbound queue (the *outbox*): the
application's messages (:meth:`ServerSession.queue_packet`) and its own PINGs and
CLOSE, in order. A websocket writer takes them all (:meth:`ServerSession.packets_to_send`);
a polling GET asks :meth:`ServerSession.poll_response`, which batches them by
bytes and count, or says why the GET gets something else (NOOP during an
upgrade, CLOSE after an error) or must wait. The I/O layer keeps the waiting
(a send that finds the buffer full, a GET with nothing to take); the machine
keeps the bookkeeping. A session closed while
``UPGRADING`` still takes the client's UPGRADE packet in ``CLOSING`` (only the
transport changes), so that the CLOSE reaches the client on its websocket.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from trio_engineio.exceptions import CloseReason, LocalProtocolError, SocketIsClosedError
from trio_engineio.protocol.handshake import Transport
from trio_engineio.protocol.packet import Packet, PacketType
from trio_engineio.protocol.payload import encode_payload_packet, split_batch

__all__ = [
    "TRANSITIONS",
    "UPGRADING_GET_NOOP_DELAY",
    "Event",
    "MessageReceived",
    "PollDecision",
    "ServerSession",
    "SessionClosed",
    "SessionState",
    "Trigger",
    "UpgradeAbandoned",
    "UpgradeCompleted",
    "UpgradeProbed",
]


class SessionState(enum.Enum):
    """Where a session is in its life.

    Example:
        >>> s = ServerSession("x", Transport.POLLING, ping_interval=25, ping_timeout=20, upgrade_timeout=10, now=0)
        >>> s.state
        <SessionState.OPEN: 'open'>
    """

    OPEN = "open"
    """Exchanging packets on the current transport."""
    PROBING = "probing"
    """A websocket has attached for an upgrade; its ``2probe`` is awaited."""
    UPGRADING = "upgrading"
    """The probe was answered; the client's UPGRADE packet is awaited. GETs wait for the outcome."""
    CLOSING = "closing"
    """The server closed the session; the CLOSE packet is on its way."""
    CLOSED = "closed"
    """Over. Nothing more is sent or received."""


class Trigger(enum.Enum):
    """What moves a session from one state to another (the columns of :data:`TRANSITIONS`).

    Example:
        >>> TRANSITIONS[SessionState.OPEN, Trigger.ATTACH_PROBE]
        <SessionState.PROBING: 'probing'>
    """

    ATTACH_PROBE = "attach_probe"
    PROBE = "probe"
    UPGRADE = "upgrade"
    ABANDON = "abandon"
    CLOSE = "close"
    FINISH = "finish"


_S = SessionState
_T = Trigger
TRANSITIONS: dict[tuple[SessionState, Trigger], SessionState] = {
    (_S.OPEN, _T.ATTACH_PROBE): _S.PROBING,
    (_S.PROBING, _T.PROBE): _S.UPGRADING,
    (_S.UPGRADING, _T.UPGRADE): _S.OPEN,
    (_S.PROBING, _T.ABANDON): _S.OPEN,
    (_S.UPGRADING, _T.ABANDON): _S.OPEN,
    (_S.OPEN, _T.CLOSE): _S.CLOSING,
    (_S.PROBING, _T.CLOSE): _S.CLOSING,
    (_S.UPGRADING, _T.CLOSE): _S.CLOSING,
    (_S.OPEN, _T.FINISH): _S.CLOSED,
    (_S.PROBING, _T.FINISH): _S.CLOSED,
    (_S.UPGRADING, _T.FINISH): _S.CLOSED,
    (_S.CLOSING, _T.FINISH): _S.CLOSED,
}
"""Every allowed ``(state, trigger) -> next state``; anything else is a bug.

Example:
    >>> TRANSITIONS[SessionState.UPGRADING, Trigger.UPGRADE]
    <SessionState.OPEN: 'open'>
    >>> (SessionState.CLOSED, Trigger.CLOSE) in TRANSITIONS
    False
"""


_PROBE = "probe"
_PROBE_REPLY = Packet(PacketType.PONG, _PROBE)
_NOOP = Packet(PacketType.NOOP)
_CLOSE = Packet(PacketType.CLOSE)
UPGRADING_GET_NOOP_DELAY = 0.1
"""Seconds a GET begun during an upgrade waits for its outcome before it answers NOOP.

The reference server answers a GET during an upgrade with NOOP on its next 100 ms tick; a
client that sent ``5`` before its GET is answered 400 by then, and the official client, which
waits for that GET before it sends ``5``, is not held up for longer than with the reference.
"""


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """The client sent a message (``str`` or ``bytes``).

    Attributes:
        data: the message, as received (text is not JSON-decoded here).

    Example:
        >>> s = ServerSession("x", Transport.POLLING, ping_interval=25, ping_timeout=20, upgrade_timeout=10, now=0)
        >>> s.receive_packet(Packet(PacketType.MESSAGE, b"\\x01"), now=1, via=Transport.POLLING)
        [MessageReceived(data=b'\\x01')]
    """

    data: str | bytes


@dataclass(frozen=True, slots=True)
class UpgradeProbed:
    """The probe websocket sent ``2probe``: send :attr:`reply` on it; a pending GET now answers
    as :meth:`ServerSession.pending_get_decision` says (NOOP, unless it began during the upgrade).

    Attributes:
        reply: the packet to send on the probe websocket (``3probe``).

    Example:
        >>> s = ServerSession("x", Transport.POLLING, ping_interval=25, ping_timeout=20, upgrade_timeout=10, now=0)
        >>> s.attach_probe(now=1)
        True
        >>> s.receive_packet(Packet(PacketType.PING, "probe"), now=2, via=Transport.WEBSOCKET)
        [UpgradeProbed(reply=Packet(type=<PacketType.PONG: 3>, data='probe'))]
    """

    reply: Packet = _PROBE_REPLY


@dataclass(frozen=True, slots=True)
class UpgradeCompleted:
    """The client sent UPGRADE: the websocket is now the transport; polling is over.

    Example:
        >>> s = ServerSession("x", Transport.POLLING, ping_interval=25, ping_timeout=20, upgrade_timeout=10, now=0)
        >>> s.attach_probe(now=1)
        True
        >>> s.receive_packet(Packet(PacketType.PING, "probe"), now=2, via=Transport.WEBSOCKET)[0].reply
        Packet(type=<PacketType.PONG: 3>, data='probe')
        >>> s.receive_packet(Packet(PacketType.UPGRADE), now=3, via=Transport.WEBSOCKET), s.transport
        ([UpgradeCompleted()], <Transport.WEBSOCKET: 'websocket'>)
    """


@dataclass(frozen=True, slots=True)
class UpgradeAbandoned:
    """The upgrade failed; close the probe websocket, the session goes on polling.

    Attributes:
        detail: why, for logs.

    Example:
        >>> s = ServerSession("x", Transport.POLLING, ping_interval=25, ping_timeout=20, upgrade_timeout=10, now=0)
        >>> s.attach_probe(now=1)
        True
        >>> s.handle_timeout(11)  # no UPGRADE within upgrade_timeout
        [UpgradeAbandoned(detail='no UPGRADE packet within 10 s')]
    """

    detail: str


@dataclass(frozen=True, slots=True)
class SessionClosed:
    """The session ended (reported once).

    Attributes:
        reason: why, as reported to ``disconnect`` handlers.
        detail: a human-readable explanation, for logs.

    Example:
        >>> s = ServerSession("x", Transport.POLLING, ping_interval=25, ping_timeout=20, upgrade_timeout=10, now=0)
        >>> s.receive_packet(Packet(PacketType.CLOSE), now=1, via=Transport.POLLING)
        [SessionClosed(reason=<CloseReason.CLIENT_DISCONNECT: 'client disconnect'>, detail='the client sent CLOSE')]
    """

    reason: CloseReason
    detail: str = ""


Event = MessageReceived | UpgradeProbed | UpgradeCompleted | UpgradeAbandoned | SessionClosed
"""Any event a :class:`ServerSession` reports; match on the class (``isinstance`` or ``match``)."""


class PollDecision(enum.Enum):
    """How to answer a polling request, from :meth:`ServerSession.begin_get` / ``begin_post``.

    Example:
        >>> s = ServerSession("x", Transport.POLLING, ping_interval=25, ping_timeout=20, upgrade_timeout=10, now=0)
        >>> s.begin_get()
        (<PollDecision.PROCEED: 'proceed'>, [])
    """

    PROCEED = "proceed"
    """Serve it (a GET waits for packets, a POST is read)."""
    NOOP = "noop"
    """Answer a GET with NOOP now: the probe was answered, and the client waits for this GET,
    which began before the websocket attached, to pause its polling and send UPGRADE."""
    AWAIT_UPGRADE = "await_upgrade"
    """Hold a GET that began during an upgrade, taking no packets, until the upgrade's
    outcome decides (see :meth:`ServerSession.pending_get_decision`): REJECT once it
    completed (the client moved to the websocket), PROCEED once it was abandoned. A client
    may also wait for this GET before it sends UPGRADE (the official client pauses its
    polling on it): answer NOOP after a short delay, as the reference server does."""
    REJECT = "reject"
    """Answer 400 (the session is closed or no longer polls)."""
    OVERLAP = "overlap"
    """Answer 400; a second concurrent request closed the session."""


class ServerSession:
    """The protocol state of one server-side session.

    Args:
        sid: the session id.
        transport: the transport of the handshake.
        ping_interval: seconds between the server's pings.
        ping_timeout: seconds the client has to answer a ping.
        upgrade_timeout: seconds an attached websocket has to finish the upgrade.
        now: the current time, in seconds, on the caller's clock.
        outbound_buffer_size: how many queued packets make :attr:`backlogged` true
            (the I/O layer makes sends wait then).
        max_packets_per_poll: the most packets one poll response carries.
        max_poll_bytes: the byte budget of one poll response (a larger packet goes alone).

    Example:
        >>> s = ServerSession("x", Transport.POLLING, ping_interval=25, ping_timeout=20, upgrade_timeout=10, now=0)
        >>> s.receive_packet(Packet(PacketType.MESSAGE, "hi"), now=1, via=Transport.POLLING)
        [MessageReceived(data='hi')]
        >>> s.next_deadline()
        25
    """

    # One per open session: slots rather than a __dict__ (about 160 bytes less each).
    __slots__ = (
        "_get_awaits_upgrade",
        "_get_noop_at",
        "_get_pending",
        "_in_flight",
        "_max_packets_per_poll",
        "_max_poll_bytes",
        "_next_ping_at",
        "_outbound_buffer_size",
        "_outbox",
        "_ping_interval",
        "_ping_timeout",
        "_pong_deadline",
        "_post_pending",
        "_upgrade_deadline",
        "_upgrade_timeout",
        "_upgrade_while_closing",
        "close_detail",
        "close_reason",
        "is_closed",
        "sid",
        "state",
        "transport",
    )

    def __init__(
        self,
        sid: str,
        transport: Transport,
        *,
        ping_interval: float,
        ping_timeout: float,
        upgrade_timeout: float,
        now: float,
        outbound_buffer_size: int = 1024,
        max_packets_per_poll: int = 16,
        max_poll_bytes: int = 1_000_000,
    ) -> None:
        self.sid = sid
        self.transport = transport
        self.state = SessionState.OPEN
        self.is_closed = False
        """Whether the session has closed or is delivering its close (kept by ``_apply``)."""
        self.close_reason: CloseReason | None = None
        self.close_detail = ""
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._upgrade_timeout = upgrade_timeout
        self._next_ping_at = now + ping_interval
        self._pong_deadline: float | None = None
        self._upgrade_deadline: float | None = None
        self._get_pending = False
        self._get_awaits_upgrade = False
        self._post_pending = False
        self._upgrade_while_closing = False
        self._outbound_buffer_size = outbound_buffer_size
        self._max_packets_per_poll = max_packets_per_poll
        self._max_poll_bytes = max_poll_bytes
        # Queued and not yet taken, oldest first; then what the last poll response took.
        # A list, not a deque: an empty deque holds a 64-slot block (~0.5 KiB) in every idle
        # session, and the queue is short, taken whole by a websocket or a batch at a time.
        self._outbox: list[Packet] = []
        self._in_flight: list[Packet] = []
        self._get_noop_at = math.inf

    # -- state ---------------------------------------------------------------

    def _apply(self, trigger: Trigger) -> None:
        try:
            self.state = TRANSITIONS[self.state, trigger]
        except KeyError:
            raise LocalProtocolError(f"cannot {trigger.value} a session that is {self.state.value}") from None
        self.is_closed = self.state is SessionState.CLOSED or self.state is SessionState.CLOSING

    @property
    def get_pending(self) -> bool:
        """Whether a polling GET is waiting for packets.

        Example:
            >>> s = ServerSession("x", Transport.POLLING, ping_interval=25, ping_timeout=20, upgrade_timeout=10, now=0)
            >>> _ = s.begin_get()
            >>> s.get_pending
            True
        """
        return self._get_pending

    # -- packets -------------------------------------------------------------

    def receive_packet(self, packet: Packet, now: float, *, via: Transport) -> list[Event]:
        """Process one packet from the client.

        Args:
            packet: the decoded packet.
            now: the current time.
            via: the transport it came on; a websocket that is probing for an
                upgrade is not yet the session's transport.

        Returns:
            The events for the application and the transport layer. A packet the
            client may not send here (a PING, an UPGRADE on an established
            transport, a PONG when no PING awaits one) closes the session with
            ``TRANSPORT_ERROR``.

        Example:
            >>> s = ServerSession("x", Transport.POLLING, ping_interval=25, ping_timeout=20, upgrade_timeout=10, now=0)
            >>> s.receive_packet(Packet(PacketType.MESSAGE, "hi"), now=1, via=Transport.POLLING)
            [MessageReceived(data='hi')]
            >>> s.receive_packet(Packet(PacketType.PING), now=2, via=Transport.POLLING)[0].reason
            <CloseReason.TRANSPORT_ERROR: 'transport error'>
        """
        if self.is_closed:
            if (
                self._upgrade_while_closing
                and self.state is SessionState.CLOSING
                and via is not self.transport
                and packet.type is PacketType.UPGRADE
            ):
                # The server closed the session after answering the probe: the client
                # completes the upgrade regardless and stops polling, so the CLOSE packet
                # must go on the websocket (as the reference server does), not wait for a
                # GET that never comes (it used to, until close_timeout).
                self._upgrade_while_closing = False
                self.transport = Transport.WEBSOCKET
                return [UpgradeCompleted()]
            return []
        if via is not self.transport and (self.state is SessionState.PROBING or self.state is SessionState.UPGRADING):
            return self._receive_on_probe(packet, now)
        packet_type = packet.type
        if packet_type is PacketType.MESSAGE:
            return [MessageReceived(packet.data)]
        if packet_type is PacketType.PONG:
            if self._pong_deadline is None:
                # One PONG answers one PING: a client sends no more PONGs than it got PINGs
                # (the official client only answers pings). More is a flood, not a heartbeat.
                return self.close(CloseReason.TRANSPORT_ERROR, "the client sent PONG with no PING outstanding")
            self._pong_deadline = None
            self._next_ping_at = now + self._ping_interval
            return []
        if packet_type is PacketType.NOOP:
            return []
        if packet_type is PacketType.CLOSE:
            return self.close(CloseReason.CLIENT_DISCONNECT, "the client sent CLOSE")
        if packet_type is PacketType.PING:
            detail = "the client sent PING (in v4 the server pings)"
        else:
            detail = f"the client sent {packet_type.name} on an established {via.value} transport"
        return self.close(CloseReason.TRANSPORT_ERROR, detail)

    def _receive_on_probe(self, packet: Packet, now: float) -> list[Event]:
        if self.state is SessionState.PROBING and packet.type is PacketType.PING and packet.data == _PROBE:
            self._apply(Trigger.PROBE)
            return [UpgradeProbed()]
        if self.state is SessionState.UPGRADING and packet.type is PacketType.UPGRADE:
            self._apply(Trigger.UPGRADE)
            self.transport = Transport.WEBSOCKET
            self._upgrade_deadline = None
            return [UpgradeCompleted()]
        if self.state is SessionState.UPGRADING and packet.type is PacketType.NOOP:
            return []
        return self._abandon_upgrade(f"unexpected {packet.type.name} packet during the upgrade")

    def _abandon_upgrade(self, detail: str) -> list[Event]:
        self._apply(Trigger.ABANDON)
        self._upgrade_deadline = None
        self._get_awaits_upgrade = False  # served as any GET from now on
        return [UpgradeAbandoned(detail)]

    # -- outbound ------------------------------------------------------------

    def queue_packet(self, packet: Packet) -> None:
        """Queue a packet for the client, behind those already queued.

        The machine sets no bound here: the I/O layer makes sends wait while
        :attr:`backlogged` (and lets them past it during an upgrade, when nothing
        can drain the queue until the client's UPGRADE).

        Raises:
            SocketIsClosedError: the session is closed or closing.

        Example:
            >>> s = ServerSession("x", Transport.WEBSOCKET, ping_interval=25, ping_timeout=20,
            ...                   upgrade_timeout=10, now=0)
            >>> s.queue_packet(Packet(PacketType.MESSAGE, "hi"))
            >>> s.packets_to_send()
            [Packet(type=<PacketType.MESSAGE: 4>, data='hi')]
        """
        if self.is_closed:
            raise SocketIsClosedError(f"session {self.sid} is {self.state.value}")
        self._outbox.append(packet)

    @property
    def queued_count(self) -> int:
        """How many packets are queued and not yet taken for sending.

        Example:
            >>> s = ServerSession("x", Transport.POLLING, ping_interval=25, ping_timeout=20, upgrade_timeout=10, now=0)
            >>> s.queue_packet(Packet(PacketType.MESSAGE, "a")); s.queue_packet(Packet(PacketType.MESSAGE, "b"))
            >>> s.queued_count
            2
        """
        return len(self._outbox)

    @property
    def backlogged(self) -> bool:
        """Whether a send should wait before queueing more: ``outbound_buffer_size`` packets wait.

        Never during an upgrade (the queue cannot drain until the client's UPGRADE, which
        may wait for a POST that waits for the send), and never once closed (a send fails).

        Example:
            >>> s = ServerSession("x", Transport.POLLING, ping_interval=25, ping_timeout=20, upgrade_timeout=10, now=0,
            ...                   outbound_buffer_size=1)
            >>> s.queue_packet(Packet(PacketType.MESSAGE, "a"))
            >>> s.backlogged
            True
        """
        state = self.state
        if state is not SessionState.OPEN:
            return False
        return len(self._outbox) >= self._outbound_buffer_size

    def packets_to_send(self) -> list[Packet]:
        """Take every queued packet, for a websocket writer.

        Returns:
            The packets, oldest first (PINGs and a server close's CLOSE among them); the
            next call returns only newer ones.

        Example:
            >>> s = ServerSession("x", Transport.WEBSOCKET, ping_interval=25, ping_timeout=20,
            ...                   upgrade_timeout=10, now=0)
            >>> s.handle_timeout(25)
            []
            >>> s.packets_to_send()
            [Packet(type=<PacketType.PING: 2>, data='')]
        """
        packets, self._outbox = self._outbox, []
        return packets

    def poll_response(self, now: float) -> list[Packet] | PollDecision:
        """What the GET that :meth:`begin_get` let proceed answers now.

        Args:
            now: the current time (a GET held during an upgrade answers NOOP after
                :data:`UPGRADING_GET_NOOP_DELAY`).

        Returns:
            The packets to answer with, or, when there is nothing to answer yet,
            :attr:`PollDecision.PROCEED` (wait for a packet) or
            :attr:`PollDecision.AWAIT_UPGRADE` (wait for the upgrade's outcome, until
            :meth:`poll_deadline`); :attr:`PollDecision.REJECT` means answer 400 (the
            client moved to its websocket). Packets taken from the queue (a batch of at
            most ``max_packets_per_poll`` packets and ``max_poll_bytes`` bytes) are in
            flight until :meth:`poll_sent` or :meth:`poll_not_sent`; NOOP (the upgrade
            released the GET, or the client closed) and CLOSE (the session ended on an
            error) are not taken from the queue.

        Example:
            >>> s = ServerSession("x", Transport.POLLING, ping_interval=25, ping_timeout=20, upgrade_timeout=10, now=0)
            >>> _ = s.begin_get()
            >>> s.poll_response(now=1)
            <PollDecision.PROCEED: 'proceed'>
            >>> s.queue_packet(Packet(PacketType.MESSAGE, "hi"))
            >>> s.poll_response(now=2)
            [Packet(type=<PacketType.MESSAGE: 4>, data='hi')]
        """
        if self.state is SessionState.CLOSED:
            # Released by the session's end: a client that said goodbye gets NOOP, any other
            # end (an error, a timeout, a server close past its delivery) CLOSE.
            return [_NOOP] if self.close_reason is CloseReason.CLIENT_DISCONNECT else [_CLOSE]
        decision = self.pending_get_decision()
        if decision is PollDecision.NOOP:
            return [_NOOP]
        if decision is PollDecision.AWAIT_UPGRADE:
            if self._get_noop_at == math.inf:
                self._get_noop_at = now + UPGRADING_GET_NOOP_DELAY
            elif now >= self._get_noop_at:
                return [_NOOP]
            return decision
        if decision is PollDecision.REJECT or not self._outbox:
            return decision
        outbox = self._outbox
        candidates = outbox[: self._max_packets_per_poll]
        sizes = [len(encode_payload_packet(packet).encode()) for packet in candidates]
        count = split_batch(sizes, max_bytes=self._max_poll_bytes, max_packets=self._max_packets_per_poll)
        del outbox[:count]
        self._in_flight = candidates[:count]
        return list(self._in_flight)

    def poll_deadline(self) -> float:
        """When a GET held for the upgrade's outcome asks :meth:`poll_response` again (else ``inf``).

        Example:
            >>> s = ServerSession("x", Transport.POLLING, ping_interval=25, ping_timeout=20, upgrade_timeout=10, now=0)
            >>> s.poll_deadline()
            inf
        """
        if self.pending_get_decision() is PollDecision.AWAIT_UPGRADE:
            return self._get_noop_at
        return math.inf

    def poll_sent(self) -> bool:
        """The response :meth:`poll_response` gave was sent.

        Returns:
            Whether it carried the CLOSE of a server close: then the session is over
            (``CLOSED``).

        Example:
            >>> s = ServerSession("x", Transport.POLLING, ping_interval=25, ping_timeout=20, upgrade_timeout=10, now=0)
            >>> _ = s.close(CloseReason.SERVER_DISCONNECT)
            >>> _ = s.begin_get()
            >>> s.poll_response(now=1)
            [Packet(type=<PacketType.CLOSE: 1>, data='')]
            >>> s.poll_sent(), s.state
            (True, <SessionState.CLOSED: 'closed'>)
        """
        in_flight, self._in_flight = self._in_flight, []
        if in_flight and in_flight[-1].type is PacketType.CLOSE:
            self.finish()
            return True
        return False

    def poll_not_sent(self) -> None:
        """The response :meth:`poll_response` gave could not be sent: its packets go back, first in line.

        Example:
            >>> s = ServerSession("x", Transport.POLLING, ping_interval=25, ping_timeout=20, upgrade_timeout=10, now=0)
            >>> s.queue_packet(Packet(PacketType.MESSAGE, "a"))
            >>> _ = s.begin_get()
            >>> _ = s.poll_response(now=1)
            >>> s.poll_not_sent()
            >>> s.queued_count
            1
        """
        self._outbox[:0] = self._in_flight
        self._in_flight = []

    # -- upgrade -------------------------------------------------------------

    def attach_probe(self, now: float) -> bool:
        """A websocket with this sid connected to upgrade the session.

        Args:
            now: the current time; the upgrade must complete within
                ``upgrade_timeout`` of it.

        Returns:
            ``True`` if it may proceed to the probe; ``False`` if it must be
            refused (not polling, already upgrading or upgraded, or closed).

        Example:
            >>> s = ServerSession("x", Transport.POLLING, ping_interval=25, ping_timeout=20, upgrade_timeout=10, now=0)
            >>> s.attach_probe(now=1), s.attach_probe(now=2)
            (True, False)
        """
        if self.state is not SessionState.OPEN or self.transport is not Transport.POLLING:
            return False
        self._apply(Trigger.ATTACH_PROBE)
        self._upgrade_deadline = now + self._upgrade_timeout
        return True

    def probe_lost(self) -> list[Event]:
        """The probe websocket went away before the upgrade completed.

        Returns:
            ``[UpgradeAbandoned(...)]`` during an upgrade, else ``[]``.

        Example:
            >>> s = ServerSession("x", Transport.POLLING, ping_interval=25, ping_timeout=20, upgrade_timeout=10, now=0)
            >>> s.attach_probe(now=1)
            True
            >>> s.probe_lost()
            [UpgradeAbandoned(detail='the probe websocket closed')]
        """
        if self.state is SessionState.PROBING or self.state is SessionState.UPGRADING:
            return self._abandon_upgrade("the probe websocket closed")
        return []

    # -- polling -------------------------------------------------------------

    def begin_get(self) -> tuple[PollDecision, list[Event]]:
        """A polling GET arrived. Call :meth:`end_get` when a PROCEEDed GET is answered.

        A GET that begins once a websocket has attached to upgrade the session may come
        from a client that has already sent ``2probe`` and ``5`` on it (the spec lets it),
        whose frames the server has not read yet: its answer waits for the upgrade's
        outcome (see :meth:`pending_get_decision`). While the probe is awaited it is
        served as usual (PROCEED); once the probe is answered it is held (AWAIT_UPGRADE).

        Returns:
            The :class:`PollDecision` and the events it caused (a second GET
            while one waits closes the session).

        Example:
            >>> s = ServerSession("x", Transport.POLLING, ping_interval=25, ping_timeout=20, upgrade_timeout=10, now=0)
            >>> s.begin_get()
            (<PollDecision.PROCEED: 'proceed'>, [])
            >>> s.begin_get()[0]
            <PollDecision.OVERLAP: 'overlap'>
        """
        if self.state is SessionState.CLOSED or self.transport is not Transport.POLLING:
            return PollDecision.REJECT, []
        if self._get_pending:
            return PollDecision.OVERLAP, self.close(CloseReason.TRANSPORT_ERROR, "overlapping GET requests")
        self._get_pending = True
        upgrading = self.state is SessionState.UPGRADING
        self._get_awaits_upgrade = upgrading or self.state is SessionState.PROBING
        return (PollDecision.AWAIT_UPGRADE if upgrading else PollDecision.PROCEED), []

    def pending_get_decision(self) -> PollDecision:
        """What the GET that :meth:`begin_get` let wait should do now (ask again after a change).

        Returns:
            For a GET that began during an upgrade: REJECT once the upgrade completed,
            AWAIT_UPGRADE while the client's UPGRADE is awaited, else PROCEED (the probe
            is still awaited, or the upgrade was abandoned). For any other GET: NOOP once
            the probe was answered (the client pauses its polling on it), else PROCEED.

        Example:
            >>> s = ServerSession("x", Transport.POLLING, ping_interval=25, ping_timeout=20, upgrade_timeout=10, now=0)
            >>> s.attach_probe(now=1)
            True
            >>> s.begin_get()  # after the websocket attached: maybe after the client's 2probe and 5
            (<PollDecision.PROCEED: 'proceed'>, [])
            >>> _ = s.receive_packet(Packet(PacketType.PING, "probe"), now=2, via=Transport.WEBSOCKET)
            >>> s.pending_get_decision()
            <PollDecision.AWAIT_UPGRADE: 'await_upgrade'>
            >>> _ = s.receive_packet(Packet(PacketType.UPGRADE), now=3, via=Transport.WEBSOCKET)
            >>> s.pending_get_decision()  # the client is on the websocket now: 400
            <PollDecision.REJECT: 'reject'>
        """
        if self._get_awaits_upgrade:
            if self.transport is not Transport.POLLING:
                return PollDecision.REJECT
            if self.state is SessionState.UPGRADING:
                return PollDecision.AWAIT_UPGRADE
            return PollDecision.PROCEED
        if self.state is SessionState.UPGRADING or self.transport is not Transport.POLLING:
            return PollDecision.NOOP
        return PollDecision.PROCEED

    def end_get(self) -> None:
        """The GET that :meth:`begin_get` let proceed has been answered or abandoned.

        Example:
            >>> s = ServerSession("x", Transport.POLLING, ping_interval=25, ping_timeout=20, upgrade_timeout=10, now=0)
            >>> _ = s.begin_get()
            >>> s.end_get()
            >>> s.get_pending
            False
        """
        self._get_pending = False
        self._get_awaits_upgrade = False
        self._get_noop_at = math.inf

    def begin_post(self) -> tuple[PollDecision, list[Event]]:
        """A polling POST arrived. Call :meth:`end_post` when a PROCEEDed POST is answered.

        Returns:
            The :class:`PollDecision` and the events it caused (a second POST
            while one is read closes the session).

        Example:
            >>> s = ServerSession("x", Transport.POLLING, ping_interval=25, ping_timeout=20, upgrade_timeout=10, now=0)
            >>> s.begin_post()
            (<PollDecision.PROCEED: 'proceed'>, [])
        """
        if self.is_closed or self.transport is not Transport.POLLING:
            return PollDecision.REJECT, []
        if self._post_pending:
            return PollDecision.OVERLAP, self.close(CloseReason.TRANSPORT_ERROR, "overlapping POST requests")
        self._post_pending = True
        return PollDecision.PROCEED, []

    def end_post(self) -> None:
        """The POST that :meth:`begin_post` let proceed is finished.

        Example:
            >>> s = ServerSession("x", Transport.POLLING, ping_interval=25, ping_timeout=20, upgrade_timeout=10, now=0)
            >>> _ = s.begin_post()
            >>> s.end_post()
            >>> s.begin_post()[0]
            <PollDecision.PROCEED: 'proceed'>
        """
        self._post_pending = False

    # -- time ----------------------------------------------------------------

    def next_deadline(self) -> float:
        """When :meth:`handle_timeout` next needs calling (``inf`` if never).

        Returns:
            A time on the caller's clock (the next PING, the PONG deadline, or the
            upgrade deadline, whichever comes first).

        Example:
            >>> s = ServerSession("x", Transport.POLLING, ping_interval=25, ping_timeout=20, upgrade_timeout=10, now=0)
            >>> s.next_deadline()
            25
            >>> s.handle_timeout(25)  # PING sent
            []
            >>> s.next_deadline()  # the PONG is due
            45
        """
        if self.is_closed:
            return math.inf
        deadline = self._next_ping_at if self._pong_deadline is None else self._pong_deadline
        if self._upgrade_deadline is not None and self._upgrade_deadline < deadline:
            return self._upgrade_deadline
        return deadline

    def handle_timeout(self, now: float) -> list[Event]:
        """Let time pass: send a ping, time out a missing pong or a stalled upgrade.

        A ping to send is queued (see :meth:`packets_to_send` and :meth:`poll_response`).

        Args:
            now: the current time.

        Returns:
            The events (an abandoned upgrade, a ``PING_TIMEOUT`` close).

        Example:
            >>> s = ServerSession("x", Transport.POLLING, ping_interval=25, ping_timeout=20, upgrade_timeout=10, now=0)
            >>> s.handle_timeout(25)
            []
            >>> s.handle_timeout(45)
            [SessionClosed(reason=<CloseReason.PING_TIMEOUT: 'ping timeout'>, detail='no PONG within 20 s')]
        """
        if self.is_closed:
            return []
        events: list[Event] = []
        if self._upgrade_deadline is not None and now >= self._upgrade_deadline:
            events += self._abandon_upgrade(f"no UPGRADE packet within {self._upgrade_timeout} s")
        if self._pong_deadline is not None:
            if now >= self._pong_deadline:
                events += self.close(CloseReason.PING_TIMEOUT, f"no PONG within {self._ping_timeout} s")
        elif now >= self._next_ping_at:
            self._outbox.append(Packet(PacketType.PING))
            self._pong_deadline = now + self._ping_timeout
        return events

    # -- closing -------------------------------------------------------------

    def close(self, reason: CloseReason, detail: str = "") -> list[Event]:
        """End the session; idempotent.

        A close the server starts (``SERVER_DISCONNECT``) enters ``CLOSING`` and
        queues a CLOSE packet behind the queued ones; the session is over once it
        is delivered (:meth:`poll_sent`, or :meth:`finish` from the websocket
        writer or when delivery gives up). Any other reason ends the session at once.

        Args:
            reason: why.
            detail: a human-readable explanation, for logs.

        Returns:
            ``[SessionClosed(...)]`` the first time, ``[]`` afterwards.

        Example:
            >>> s = ServerSession("x", Transport.POLLING, ping_interval=25, ping_timeout=20, upgrade_timeout=10, now=0)
            >>> s.close(CloseReason.SERVER_DISCONNECT, "bye")
            [SessionClosed(reason=<CloseReason.SERVER_DISCONNECT: 'server disconnect'>, detail='bye')]
            >>> s.state
            <SessionState.CLOSING: 'closing'>
            >>> s.close(CloseReason.SERVER_DISCONNECT)
            []
        """
        if self.is_closed:
            return []
        self._upgrade_while_closing = reason is CloseReason.SERVER_DISCONNECT and self.state is SessionState.UPGRADING
        self.close_reason = reason
        self.close_detail = detail
        self._pong_deadline = None
        self._upgrade_deadline = None
        if reason is CloseReason.SERVER_DISCONNECT:
            self._apply(Trigger.CLOSE)
            self._outbox.append(_CLOSE)
        else:
            self._apply(Trigger.FINISH)
            self._outbox.clear()  # nothing more reaches a client that left or failed
        return [SessionClosed(reason, detail)]

    def finish(self) -> None:
        """The CLOSE packet was delivered (or cannot be): the session is over; the queue is dropped.

        Example:
            >>> s = ServerSession("x", Transport.POLLING, ping_interval=25, ping_timeout=20, upgrade_timeout=10, now=0)
            >>> _ = s.close(CloseReason.SERVER_DISCONNECT)
            >>> s.finish()
            >>> s.state
            <SessionState.CLOSED: 'closed'>
        """
        if self.state is not SessionState.CLOSED:
            self._apply(Trigger.FINISH)
        self._outbox.clear()
