"""One client-side Engine.IO session as a state machine, with no I/O.

The machine is told what happened (the OPEN packet arrived, a packet arrived,
a polling GET or POST began or ended, time passed, the application sent a
message) and answers with events for the application and with what to write
on the wire. It never reads a clock: every call that depends on time takes
``now``, and the watchdog is driven by :meth:`ClientSession.next_deadline` and
:meth:`ClientSession.handle_timeout`.

States and the triggers that move between them are one table,
:data:`CLIENT_TRANSITIONS`::

    CONNECTING ──open──▶ OPEN ──probe──▶ PROBING ──probe_answered──▶ PAUSING ──paused──▶ UPGRADING ──upgrade──▶ OPEN
                           ▲                │                            │                                 (websocket)
                           └─────abandon────┴────────────────────────────┘
    OPEN / PROBING / PAUSING / UPGRADING ──close──▶ CLOSING ──finish──▶ CLOSED
    any state but CLOSED ──finish──▶ CLOSED

The upgrade follows the reference client: while polling goes on, a websocket
is opened and probed (``2probe`` → ``3probe``); then polling is *paused*: no new
GET or POST starts, and the machine waits for the ones in flight to end. Once
polling is idle, the websocket becomes the transport: the UPGRADE packet (``5``)
is first in line, followed by every packet buffered meanwhile, so nothing is
lost or reordered.

``CLOSING`` exists for a close the client starts: its CLOSE packet still has to
reach the server behind the packets already queued.
"""

from __future__ import annotations

import enum
import json
import math
from collections import deque
from dataclasses import dataclass

from trio_engineio.exceptions import CloseReason, LocalProtocolError, RemoteProtocolError, SocketIsClosedError
from trio_engineio.protocol.handshake import Transport
from trio_engineio.protocol.packet import Packet, PacketType
from trio_engineio.protocol.payload import RECORD_SEPARATOR, encode_payload_packet, split_batch
from trio_engineio.protocol.server_session import MessageReceived, SessionClosed, UpgradeAbandoned

__all__ = [
    "CLIENT_TRANSITIONS",
    "DEFAULT_MAX_PACKETS_PER_POST",
    "PROBE_PACKET",
    "ClientEvent",
    "ClientSession",
    "ClientState",
    "ClientTrigger",
    "Connected",
    "HandshakeInfo",
    "UpgradeReady",
    "parse_open_packet",
]

DEFAULT_MAX_PACKETS_PER_POST = 16
"""The most packets one POST holds by default (python-engineio servers drop bigger bodies)."""

_PROBE = "probe"
PROBE_PACKET = Packet(PacketType.PING, _PROBE)
"""The packet that probes a websocket before an upgrade (``2probe``)."""
_UPGRADE_PACKET = Packet(PacketType.UPGRADE)


class ClientState(enum.Enum):
    """Where a client session is in its life.

    Example:
        >>> ClientSession(Transport.POLLING).state
        <ClientState.CONNECTING: 'connecting'>
    """

    CONNECTING = "connecting"
    """The handshake is under way; the OPEN packet is awaited."""
    OPEN = "open"
    """Exchanging packets on the current transport."""
    PROBING = "probing"
    """Polling goes on while a websocket is probed (``2probe`` sent, ``3probe`` awaited)."""
    PAUSING = "pausing"
    """The probe was answered; no GET or POST starts, the ones in flight are awaited."""
    UPGRADING = "upgrading"
    """Polling is paused; the websocket is the transport and the UPGRADE packet is first in line."""
    CLOSING = "closing"
    """The client closed the session; its CLOSE packet is on its way."""
    CLOSED = "closed"
    """Over. Nothing more is sent or received."""


class ClientTrigger(enum.Enum):
    """What moves a client session from one state to another (the columns of :data:`CLIENT_TRANSITIONS`).

    Example:
        >>> CLIENT_TRANSITIONS[ClientState.PROBING, ClientTrigger.PROBE_ANSWERED]
        <ClientState.PAUSING: 'pausing'>
    """

    OPEN = "open"
    PROBE = "probe"
    PROBE_ANSWERED = "probe_answered"
    PAUSED = "paused"
    UPGRADE = "upgrade"
    ABANDON = "abandon"
    CLOSE = "close"
    FINISH = "finish"


_S = ClientState
_T = ClientTrigger
CLIENT_TRANSITIONS: dict[tuple[ClientState, ClientTrigger], ClientState] = {
    (_S.CONNECTING, _T.OPEN): _S.OPEN,
    (_S.OPEN, _T.PROBE): _S.PROBING,
    (_S.PROBING, _T.PROBE_ANSWERED): _S.PAUSING,
    (_S.PAUSING, _T.PAUSED): _S.UPGRADING,
    (_S.UPGRADING, _T.UPGRADE): _S.OPEN,
    (_S.PROBING, _T.ABANDON): _S.OPEN,
    (_S.PAUSING, _T.ABANDON): _S.OPEN,
    (_S.OPEN, _T.CLOSE): _S.CLOSING,
    (_S.PROBING, _T.CLOSE): _S.CLOSING,
    (_S.PAUSING, _T.CLOSE): _S.CLOSING,
    (_S.UPGRADING, _T.CLOSE): _S.CLOSING,
    (_S.CONNECTING, _T.FINISH): _S.CLOSED,
    (_S.OPEN, _T.FINISH): _S.CLOSED,
    (_S.PROBING, _T.FINISH): _S.CLOSED,
    (_S.PAUSING, _T.FINISH): _S.CLOSED,
    (_S.UPGRADING, _T.FINISH): _S.CLOSED,
    (_S.CLOSING, _T.FINISH): _S.CLOSED,
}
"""Every allowed ``(state, trigger) -> next state``; anything else is a bug.

Example:
    >>> CLIENT_TRANSITIONS[ClientState.PAUSING, ClientTrigger.PAUSED]
    <ClientState.UPGRADING: 'upgrading'>
"""

_LIVE = frozenset({_S.OPEN, _S.PROBING, _S.PAUSING, _S.UPGRADING})
_UPGRADE_IN_PROGRESS = frozenset({_S.PROBING, _S.PAUSING})


@dataclass(frozen=True, slots=True)
class HandshakeInfo:
    """What the server's OPEN packet says.

    Attributes:
        sid: the session id.
        upgrades: the transports the session may upgrade to (unknown names dropped).
        ping_interval: seconds between the server's pings.
        ping_timeout: seconds the server waits for a pong.
        max_payload: the most bytes the server accepts in one POST body, or
            ``None`` when the server did not say.

    Example:
        >>> parse_open_packet(Packet(PacketType.OPEN, '{"sid":"a","pingInterval":25000,"pingTimeout":20000}'))
        HandshakeInfo(sid='a', upgrades=(), ping_interval=25.0, ping_timeout=20.0, max_payload=None)
    """

    sid: str
    upgrades: tuple[Transport, ...]
    ping_interval: float
    ping_timeout: float
    max_payload: int | None


@dataclass(frozen=True, slots=True)
class Connected:
    """The server accepted the handshake.

    Attributes:
        info: the handshake's parameters.

    Example:
        >>> s = ClientSession(Transport.WEBSOCKET)
        >>> hello = Packet(PacketType.OPEN, '{"sid":"a","pingInterval":25000,"pingTimeout":20000}')
        >>> s.receive_open(hello, now=0).info.sid
        'a'
    """

    info: HandshakeInfo


@dataclass(frozen=True, slots=True)
class UpgradeReady:
    """Polling is paused and idle: the probed websocket is now the transport.

    Start reading it; the UPGRADE packet is first in :meth:`ClientSession.packets_to_send`.

    Example:
        >>> s = ClientSession(Transport.POLLING)
        >>> _ = s.receive_open(Packet(PacketType.OPEN, '{"sid":"a","upgrades":["websocket"],'
        ...     '"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'), now=0)
        >>> s.start_probe()
        Packet(type=<PacketType.PING: 2>, data='probe')
        >>> s.receive_probe_packet(Packet(PacketType.PONG, "probe"), now=1)
        [UpgradeReady()]
        >>> s.packets_to_send()
        [Packet(type=<PacketType.UPGRADE: 5>, data='')]
    """


ClientEvent = Connected | MessageReceived | UpgradeReady | UpgradeAbandoned | SessionClosed
"""Any event a :class:`ClientSession` reports; match on the class (``isinstance`` or ``match``)."""


def _positive_number(handshake: dict[str, object], key: str) -> float:
    value = handshake.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or not math.isfinite(value):
        raise RemoteProtocolError(f"the OPEN packet's {key!r} must be a positive number, not {value!r}")
    return float(value)


def parse_open_packet(packet: Packet) -> HandshakeInfo:
    """Validate the server's OPEN packet.

    Args:
        packet: the first packet of the session.

    Returns:
        The handshake's parameters, with times converted from milliseconds to seconds.

    Raises:
        RemoteProtocolError: the packet is not an OPEN packet or its JSON is
            invalid (not an object; no ``sid``; bad ``upgrades``,
            ``pingInterval``, ``pingTimeout`` or ``maxPayload``).

    Example:
        >>> parse_open_packet(Packet(PacketType.OPEN, '{"sid":"a","upgrades":["websocket"],'
        ...     '"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'))
        HandshakeInfo(sid='a', upgrades=(<Transport.WEBSOCKET: 'websocket'>,), ping_interval=25.0, ping_timeout=20.0, max_payload=1000000)
    """  # noqa: E501
    if packet.type is not PacketType.OPEN:
        raise RemoteProtocolError(f"expected an OPEN packet, got {packet.type.name}")
    if not isinstance(packet.data, str):
        raise RemoteProtocolError("the OPEN packet carries binary data")
    try:
        handshake = json.loads(packet.data)
    except ValueError as exc:
        raise RemoteProtocolError("the OPEN packet's data is not valid JSON") from exc
    if not isinstance(handshake, dict):
        raise RemoteProtocolError("the OPEN packet's data is not a JSON object")
    sid = handshake.get("sid")
    if not isinstance(sid, str) or not sid:
        raise RemoteProtocolError(f"the OPEN packet's 'sid' must be a non-empty string, not {sid!r}")
    raw_upgrades = handshake.get("upgrades", [])
    if not isinstance(raw_upgrades, list) or not all(isinstance(name, str) for name in raw_upgrades):
        raise RemoteProtocolError(f"the OPEN packet's 'upgrades' must be a list of strings, not {raw_upgrades!r}")
    known = {t.value: t for t in Transport}
    upgrades = tuple(known[name] for name in raw_upgrades if name in known)
    ping_interval = _positive_number(handshake, "pingInterval") / 1000
    ping_timeout = _positive_number(handshake, "pingTimeout") / 1000
    max_payload = handshake.get("maxPayload")
    if max_payload is not None and (
        isinstance(max_payload, bool) or not isinstance(max_payload, int) or max_payload <= 0
    ):
        raise RemoteProtocolError(f"the OPEN packet's 'maxPayload' must be a positive integer, not {max_payload!r}")
    return HandshakeInfo(sid, upgrades, ping_interval, ping_timeout, max_payload)


class ClientSession:
    """The protocol state of one client-side session.

    Args:
        transport: the transport of the handshake.
        max_packets_per_post: the most packets one polling POST carries.

    Example:
        >>> s = ClientSession(Transport.WEBSOCKET)
        >>> s.receive_open(Packet(PacketType.OPEN, '{"sid":"a","upgrades":[],'
        ...     '"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'), now=0).info.sid
        'a'
        >>> s.receive_packet(Packet(PacketType.PING), now=3)
        []
        >>> s.packets_to_send()
        [Packet(type=<PacketType.PONG: 3>, data='')]
        >>> s.next_deadline()
        48.0
    """

    def __init__(self, transport: Transport, *, max_packets_per_post: int = DEFAULT_MAX_PACKETS_PER_POST) -> None:
        if max_packets_per_post < 1:
            raise ValueError("max_packets_per_post must be at least 1")
        self.transport = transport
        self.state = ClientState.CONNECTING
        self.info: HandshakeInfo | None = None
        self.close_reason: CloseReason | None = None
        self.close_detail = ""
        self._max_packets_per_post = max_packets_per_post
        self._last_received = 0.0
        self._to_send: deque[Packet] = deque()
        self._get_pending = False
        self._post_pending = False

    # -- state ---------------------------------------------------------------

    def _apply(self, trigger: ClientTrigger) -> None:
        try:
            self.state = CLIENT_TRANSITIONS[self.state, trigger]
        except KeyError:
            raise LocalProtocolError(f"cannot {trigger.value} a session that is {self.state.value}") from None

    @property
    def sid(self) -> str | None:
        """The session id, once the OPEN packet has arrived.

        Example:
            >>> s = ClientSession(Transport.POLLING)
            >>> _ = s.receive_open(Packet(PacketType.OPEN, '{"sid":"a","upgrades":["websocket"],'
            ...     '"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'), now=0)
            >>> s.sid
            'a'
        """
        return None if self.info is None else self.info.sid

    @property
    def is_closed(self) -> bool:
        """Whether the session has closed or is delivering its close.

        Example:
            >>> s = ClientSession(Transport.POLLING)
            >>> _ = s.receive_open(Packet(PacketType.OPEN, '{"sid":"a","upgrades":["websocket"],'
            ...     '"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'), now=0)
            >>> _ = s.close(CloseReason.CLIENT_DISCONNECT)
            >>> s.is_closed, s.state
            (True, <ClientState.CLOSING: 'closing'>)
        """
        return self.state is ClientState.CLOSED or self.state is ClientState.CLOSING

    @property
    def can_upgrade(self) -> bool:
        """Whether a websocket probe may start now (polling, open, and the server offers websocket).

        Example:
            >>> s = ClientSession(Transport.POLLING)
            >>> _ = s.receive_open(Packet(PacketType.OPEN, '{"sid":"a","upgrades":["websocket"],'
            ...     '"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'), now=0)
            >>> s.can_upgrade
            True
        """
        return (
            self.state is ClientState.OPEN
            and self.transport is Transport.POLLING
            and self.info is not None
            and Transport.WEBSOCKET in self.info.upgrades
        )

    # -- receiving -----------------------------------------------------------

    def receive_open(self, packet: Packet, now: float) -> Connected:
        """Process the server's OPEN packet, the first packet of the session.

        Args:
            packet: the packet.
            now: the current time; the watchdog starts from it.

        Returns:
            The :class:`Connected` event with the handshake's parameters.

        Raises:
            RemoteProtocolError: the packet is not a valid OPEN packet (the
                session is then closed with ``TRANSPORT_ERROR``).
            LocalProtocolError: the session is not waiting for an OPEN packet.

        Example:
            >>> s = ClientSession(Transport.POLLING)
            >>> hello = Packet(PacketType.OPEN, '{"sid":"a","pingInterval":25000,"pingTimeout":20000}')
            >>> s.receive_open(hello, now=0).info.sid
            'a'
            >>> s.state
            <ClientState.OPEN: 'open'>
        """
        if self.state is not ClientState.CONNECTING:
            raise LocalProtocolError(f"the OPEN packet was already received (the session is {self.state.value})")
        try:
            info = parse_open_packet(packet)
        except RemoteProtocolError as exc:
            self.close(CloseReason.TRANSPORT_ERROR, exc.message)
            raise
        self.info = info
        self._last_received = now
        self._apply(ClientTrigger.OPEN)
        return Connected(info)

    def receive_packet(self, packet: Packet, now: float) -> list[ClientEvent]:
        """Process one packet from the server, received on the session's transport.

        Args:
            packet: the decoded packet.
            now: the current time (any packet feeds the watchdog).

        Returns:
            The events for the application (a message, or the session's end).
            A PING queues a PONG in the packets to send.

        Example:
            >>> s = ClientSession(Transport.POLLING)
            >>> _ = s.receive_open(Packet(PacketType.OPEN, '{"sid":"a","upgrades":["websocket"],'
            ...     '"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'), now=0)
            >>> s.receive_packet(Packet(PacketType.MESSAGE, "hi"), now=1)
            [MessageReceived(data='hi')]
            >>> s.receive_packet(Packet(PacketType.CLOSE), now=2)
            [SessionClosed(reason=<CloseReason.SERVER_DISCONNECT: 'server disconnect'>, detail='the server sent CLOSE')]
        """
        if self.state is ClientState.CLOSED or self.state is ClientState.CONNECTING:
            return []
        self._last_received = now
        packet_type = packet.type
        if packet_type is PacketType.MESSAGE:
            return [MessageReceived(packet.data)]
        if packet_type is PacketType.PING:
            if self.state is not ClientState.CLOSING:
                self._to_send.append(Packet(PacketType.PONG, packet.data))
            return []
        if packet_type is PacketType.NOOP:
            return []
        if packet_type is PacketType.CLOSE:
            if self.state is ClientState.CLOSING:
                self.finish()
                return []
            return self.close(CloseReason.SERVER_DISCONNECT, "the server sent CLOSE")
        return self.close(CloseReason.TRANSPORT_ERROR, f"the server sent an unexpected {packet_type.name} packet")

    # -- sending -------------------------------------------------------------

    def send_message(self, data: str | bytes) -> None:
        """Queue a message for the server.

        Args:
            data: text (``str``) or binary (``bytes``) data.

        Raises:
            SocketIsClosedError: the session is not open (not yet, or no longer).

        Example:
            >>> s = ClientSession(Transport.POLLING)
            >>> _ = s.receive_open(Packet(PacketType.OPEN, '{"sid":"a","upgrades":["websocket"],'
            ...     '"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'), now=0)
            >>> s.send_message("hello")
            >>> s.begin_post()
            b'4hello'
        """
        if self.state not in _LIVE:
            raise SocketIsClosedError(f"cannot send on a session that is {self.state.value}")
        self._to_send.append(Packet(PacketType.MESSAGE, data))

    @property
    def send_queue_size(self) -> int:
        """How many packets wait to be sent.

        Example:
            >>> s = ClientSession(Transport.POLLING)
            >>> _ = s.receive_open(Packet(PacketType.OPEN, '{"sid":"a","upgrades":["websocket"],'
            ...     '"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'), now=0)
            >>> s.send_message("a"); s.send_message("b")
            >>> s.send_queue_size
            2
        """
        return len(self._to_send)

    @property
    def has_packets_to_send(self) -> bool:
        """Whether :meth:`begin_post` or :meth:`packets_to_send` would return something now.

        Example:
            >>> s = ClientSession(Transport.POLLING)
            >>> _ = s.receive_open(Packet(PacketType.OPEN, '{"sid":"a","upgrades":["websocket"],'
            ...     '"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'), now=0)
            >>> s.has_packets_to_send
            False
            >>> s.send_message("hello")
            >>> s.has_packets_to_send
            True
        """
        if not self._to_send:
            return False
        if self.transport is Transport.POLLING:
            return self._polling_may_post()
        return self.state is not ClientState.CLOSED

    def packets_to_send(self) -> list[Packet]:
        """Take every packet waiting to go out on the websocket transport.

        Returns:
            The packets, in order; ``[]`` when the transport is polling (use
            :meth:`begin_post`) or the session is closed. Taking the UPGRADE
            packet completes an upgrade.

        Example:
            >>> s = ClientSession(Transport.WEBSOCKET)
            >>> hello = Packet(PacketType.OPEN, '{"sid":"a","pingInterval":25000,"pingTimeout":20000}')
            >>> _ = s.receive_open(hello, now=0)
            >>> s.send_message(b"\\x01")
            >>> s.packets_to_send()
            [Packet(type=<PacketType.MESSAGE: 4>, data=b'\\x01')]
        """
        if self.transport is not Transport.WEBSOCKET or self.state is ClientState.CLOSED:
            return []
        packets = list(self._to_send)
        self._to_send.clear()
        if self.state is ClientState.UPGRADING:
            self._apply(ClientTrigger.UPGRADE)
        return packets

    # -- polling -------------------------------------------------------------

    def _polling_active(self) -> bool:
        return self.transport is Transport.POLLING and (
            self.state is ClientState.OPEN or self.state is ClientState.PROBING
        )

    def _polling_may_post(self) -> bool:
        return not self._post_pending and (self._polling_active() or self.state is ClientState.CLOSING)

    def begin_get(self) -> bool:
        """Whether a polling GET may start now; if so it counts as in flight until :meth:`end_get`.

        Returns:
            ``False`` while a GET is in flight, polling is paused for an
            upgrade, the transport is a websocket, or the session is closing or closed.

        Example:
            >>> s = ClientSession(Transport.POLLING)
            >>> _ = s.receive_open(Packet(PacketType.OPEN, '{"sid":"a","upgrades":["websocket"],'
            ...     '"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'), now=0)
            >>> s.begin_get(), s.begin_get()
            (True, False)
        """
        if self._get_pending or not self._polling_active():
            return False
        self._get_pending = True
        return True

    def end_get(self) -> list[ClientEvent]:
        """The GET that :meth:`begin_get` allowed is over (its packets already received).

        Returns:
            ``[UpgradeReady()]`` when this was the last request an upgrade waited for.

        Example:
            >>> s = ClientSession(Transport.POLLING)
            >>> _ = s.receive_open(Packet(PacketType.OPEN, '{"sid":"a","upgrades":["websocket"],'
            ...     '"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'), now=0)
            >>> s.begin_get()
            True
            >>> _ = s.start_probe()
            >>> s.receive_probe_packet(Packet(PacketType.PONG, "probe"), now=1)  # waits for the GET
            []
            >>> s.end_get()
            [UpgradeReady()]
        """
        self._get_pending = False
        return self._maybe_paused()

    def begin_post(self) -> bytes | None:
        """Take the next POST body, if one may be sent now; it is in flight until :meth:`end_post`.

        A body holds as many leading packets as fit in the server's
        ``maxPayload`` bytes and the packet limit; the rest waits for the next POST.

        Returns:
            The UTF-8 body, or ``None`` when nothing is waiting, a POST is in
            flight, or polling may not send now.

        Example:
            >>> s = ClientSession(Transport.POLLING)
            >>> _ = s.receive_open(Packet(PacketType.OPEN, '{"sid":"a","upgrades":["websocket"],'
            ...     '"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'), now=0)
            >>> s.send_message("a"); s.send_message(b"\\x01")
            >>> s.begin_post()
            b'4a\\x1ebAQ=='
            >>> s.begin_post() is None  # one POST at a time
            True
        """
        if not self._to_send or not self._polling_may_post():
            return None
        candidates = [encode_payload_packet(p) for p in _head(self._to_send, self._max_packets_per_post)]
        sizes = [len(text.encode("utf-8")) for text in candidates]
        max_payload = self.info.max_payload if self.info is not None else None
        if max_payload is None:  # the server set no limit: only the packet count bounds a body
            max_payload = sum(sizes) + len(sizes)
        count = split_batch(sizes, max_bytes=max_payload, max_packets=self._max_packets_per_post)
        for _ in range(count):
            self._to_send.popleft()
        self._post_pending = True
        return RECORD_SEPARATOR.join(candidates[:count]).encode("utf-8")

    def end_post(self) -> list[ClientEvent]:
        """The POST that :meth:`begin_post` allowed is over.

        Returns:
            ``[UpgradeReady()]`` when this was the last request an upgrade waited for.

        Example:
            >>> s = ClientSession(Transport.POLLING)
            >>> _ = s.receive_open(Packet(PacketType.OPEN, '{"sid":"a","upgrades":["websocket"],'
            ...     '"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'), now=0)
            >>> s.send_message("a")
            >>> s.begin_post()
            b'4a'
            >>> s.end_post()
            []
        """
        self._post_pending = False
        return self._maybe_paused()

    @property
    def polling_idle(self) -> bool:
        """Whether no polling GET or POST is in flight.

        Example:
            >>> s = ClientSession(Transport.POLLING)
            >>> _ = s.receive_open(Packet(PacketType.OPEN, '{"sid":"a","upgrades":["websocket"],'
            ...     '"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'), now=0)
            >>> s.polling_idle
            True
            >>> s.begin_get(), s.polling_idle
            (True, False)
        """
        return not self._get_pending and not self._post_pending

    # -- upgrade -------------------------------------------------------------

    def start_probe(self) -> Packet:
        """A websocket for the upgrade is connected: probe it.

        Returns:
            The packet to send on the probe websocket (``2probe``).

        Raises:
            LocalProtocolError: no upgrade is possible now (see :attr:`can_upgrade`).

        Example:
            >>> s = ClientSession(Transport.POLLING)
            >>> _ = s.receive_open(Packet(PacketType.OPEN, '{"sid":"a","upgrades":["websocket"],'
            ...     '"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'), now=0)
            >>> s.start_probe()
            Packet(type=<PacketType.PING: 2>, data='probe')
            >>> s.state
            <ClientState.PROBING: 'probing'>
        """
        if not self.can_upgrade:
            raise LocalProtocolError(f"cannot upgrade a {self.transport.value} session that is {self.state.value}")
        self._apply(ClientTrigger.PROBE)
        return PROBE_PACKET

    def receive_probe_packet(self, packet: Packet, now: float) -> list[ClientEvent]:
        """Process a packet received on the probe websocket.

        Args:
            packet: the packet; ``3probe`` answers the probe, anything else abandons the upgrade.
            now: the current time.

        Returns:
            ``[UpgradeReady()]`` if polling is already idle, ``[UpgradeAbandoned(...)]``
            on a wrong answer, else ``[]`` (wait for :meth:`end_get` / :meth:`end_post`).

        Example:
            >>> s = ClientSession(Transport.POLLING)
            >>> _ = s.receive_open(Packet(PacketType.OPEN, '{"sid":"a","upgrades":["websocket"],'
            ...     '"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'), now=0)
            >>> _ = s.start_probe()
            >>> s.receive_probe_packet(Packet(PacketType.NOOP), now=1)
            [UpgradeAbandoned(detail="the probe was answered with NOOP ''")]
        """
        if self.state is not ClientState.PROBING:
            return []
        self._last_received = now
        if packet.type is not PacketType.PONG or packet.data != _PROBE:
            return self.abandon_upgrade(f"the probe was answered with {packet.type.name} {packet.data!r}")
        self._apply(ClientTrigger.PROBE_ANSWERED)
        return self._maybe_paused()

    def _maybe_paused(self) -> list[ClientEvent]:
        if self.state is not ClientState.PAUSING or not self.polling_idle:
            return []
        self._apply(ClientTrigger.PAUSED)
        self.transport = Transport.WEBSOCKET
        self._to_send.appendleft(_UPGRADE_PACKET)
        return [UpgradeReady()]

    def abandon_upgrade(self, detail: str) -> list[ClientEvent]:
        """The probe websocket failed before polling was paused: go on polling.

        Args:
            detail: why, for logs.

        Returns:
            ``[UpgradeAbandoned(detail)]`` while probing or pausing, else ``[]``
            (once the websocket is the transport, its failure closes the session).

        Example:
            >>> s = ClientSession(Transport.POLLING)
            >>> _ = s.receive_open(Packet(PacketType.OPEN, '{"sid":"a","upgrades":["websocket"],'
            ...     '"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'), now=0)
            >>> _ = s.start_probe()
            >>> s.abandon_upgrade("the probe timed out")
            [UpgradeAbandoned(detail='the probe timed out')]
            >>> s.state
            <ClientState.OPEN: 'open'>
        """
        if self.state not in _UPGRADE_IN_PROGRESS:
            return []
        self._apply(ClientTrigger.ABANDON)
        return [UpgradeAbandoned(detail)]

    # -- time ----------------------------------------------------------------

    def next_deadline(self) -> float:
        """When :meth:`handle_timeout` next needs calling (``inf`` if never).

        The watchdog fires ``pingInterval + pingTimeout`` after the last packet received.

        Returns:
            A time on the caller's clock.

        Example:
            >>> s = ClientSession(Transport.POLLING)
            >>> _ = s.receive_open(Packet(PacketType.OPEN, '{"sid":"a","upgrades":["websocket"],'
            ...     '"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'), now=0)
            >>> s.next_deadline()
            45.0
            >>> _ = s.receive_packet(Packet(PacketType.PING), now=25)
            >>> s.next_deadline()
            70.0
        """
        if self.state not in _LIVE or self.info is None:
            return math.inf
        return self._last_received + self.info.ping_interval + self.info.ping_timeout

    def handle_timeout(self, now: float) -> list[ClientEvent]:
        """Let time pass: close with ``PING_TIMEOUT`` when the server fell silent.

        Args:
            now: the current time.

        Returns:
            ``[SessionClosed(PING_TIMEOUT, ...)]`` if the deadline passed, else ``[]``.

        Example:
            >>> s = ClientSession(Transport.POLLING)
            >>> _ = s.receive_open(Packet(PacketType.OPEN, '{"sid":"a","upgrades":["websocket"],'
            ...     '"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'), now=0)
            >>> s.handle_timeout(44)
            []
            >>> s.handle_timeout(45)[0].reason
            <CloseReason.PING_TIMEOUT: 'ping timeout'>
        """
        if now < self.next_deadline():
            return []
        assert self.info is not None
        silence = self.info.ping_interval + self.info.ping_timeout
        return self.close(CloseReason.PING_TIMEOUT, f"no packet from the server for {silence:g} s")

    # -- closing -------------------------------------------------------------

    def close(self, reason: CloseReason, detail: str = "") -> list[ClientEvent]:
        """End the session; idempotent.

        A close the client starts (``CLIENT_DISCONNECT``) on an open session
        enters ``CLOSING``: a CLOSE packet is queued behind the waiting packets
        (an upgrade still probing or pausing is abandoned, so it goes out by
        polling); the caller delivers it, then calls :meth:`finish`. Any other
        reason ends the session at once and drops the waiting packets.

        Args:
            reason: why.
            detail: a human-readable explanation, for logs.

        Returns:
            ``[SessionClosed(reason, detail)]`` the first time, ``[]`` afterwards.

        Example:
            >>> s = ClientSession(Transport.POLLING)
            >>> _ = s.receive_open(Packet(PacketType.OPEN, '{"sid":"a","upgrades":["websocket"],'
            ...     '"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'), now=0)
            >>> s.send_message("bye")
            >>> s.close(CloseReason.CLIENT_DISCONNECT)
            [SessionClosed(reason=<CloseReason.CLIENT_DISCONNECT: 'client disconnect'>, detail='')]
            >>> s.begin_post()
            b'4bye\\x1e1'
        """
        if self.is_closed:
            return []
        self.close_reason = reason
        self.close_detail = detail
        if reason is CloseReason.CLIENT_DISCONNECT and self.state in _LIVE:
            self._apply(ClientTrigger.CLOSE)
            self._to_send.append(Packet(PacketType.CLOSE))
        else:
            self._apply(ClientTrigger.FINISH)
            self._to_send.clear()
        return [SessionClosed(reason, detail)]

    def finish(self) -> None:
        """The CLOSE packet was delivered (or cannot be): the session is over.

        Example:
            >>> s = ClientSession(Transport.POLLING)
            >>> _ = s.receive_open(Packet(PacketType.OPEN, '{"sid":"a","upgrades":["websocket"],'
            ...     '"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'), now=0)
            >>> _ = s.close(CloseReason.CLIENT_DISCONNECT)
            >>> s.finish()
            >>> s.state
            <ClientState.CLOSED: 'closed'>
        """
        if self.state is not ClientState.CLOSED:
            self._apply(ClientTrigger.FINISH)
            self._to_send.clear()


def _head(packets: deque[Packet], count: int) -> list[Packet]:
    out: list[Packet] = []
    for packet in packets:
        if len(out) == count:
            break
        out.append(packet)
    return out
