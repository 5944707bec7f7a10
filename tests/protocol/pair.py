"""A client session machine wired to a server session machine in memory, as h11's ``ConnectionPair``.

The test is the clock and the network: every step says ``now``, and every step carries what one
side has to send to the other, through the wire encodings (polling bodies, websocket frames),
in one call. What crossed the wire is logged in :attr:`Pair.wire`, so a test asserts the exact
exchange of the spec, and each step returns the events of the side that received.

The server machine keeps its own outbound queue (the application's messages, its PINGs, the CLOSE
of a server close) and answers GETs from it, so the harness only carries what the machines say:
:meth:`Pair.server_send` and :meth:`Pair.server_close` are what ``AsyncServer.send`` and
``disconnect`` ask of the machine.
"""

from __future__ import annotations

from collections.abc import Collection

from trio_engineio.exceptions import CloseReason
from trio_engineio.protocol import (
    ClientEvent,
    ClientSession,
    ClientState,
    Connected,
    Event,
    Packet,
    PacketType,
    PollDecision,
    ServerSession,
    Transport,
    UpgradeProbed,
    decode_frame,
    decode_payload,
    decode_payload_bytes,
    encode_frame,
    encode_payload,
    open_packet,
)

WireRecord = tuple[str, str | bytes]
"""One crossing of the wire: ``(channel, data)``. Channels: ``"GET"`` (a polling response body),
``"POST"`` (a polling request body), ``"ws>"`` / ``"ws<"`` (a websocket frame from the client /
from the server), ``"probe>"`` / ``"probe<"`` (a frame on the websocket being probed)."""

_CLOSE = Packet(PacketType.CLOSE)


class Pair:
    """A :class:`ClientSession` and a :class:`ServerSession` that talk to each other in memory.

    Args:
        transport: the transport of the handshake.
        upgrades: the transports the server offers in its OPEN packet.
        ping_interval: the server's ping interval, in seconds.
        ping_timeout: the server's ping timeout, in seconds.
        upgrade_timeout: the server's upgrade timeout, in seconds.
        max_payload: the server's ``maxPayload``, in bytes.
        sid: the session id the server hands out.

    Example::

        pair = Pair(Transport.POLLING)
        pair.handshake(now=0)
        pair.client.send_message("hi")
        assert pair.post(now=1) == [MessageReceived("hi")]
        assert pair.wire[-1] == ("POST", b"4hi")
    """

    def __init__(
        self,
        transport: Transport,
        *,
        upgrades: Collection[Transport] = (Transport.WEBSOCKET,),
        ping_interval: float = 25.0,
        ping_timeout: float = 20.0,
        upgrade_timeout: float = 10.0,
        max_payload: int = 1_000_000,
        sid: str = "sid1",
    ) -> None:
        self.client = ClientSession(transport)
        self.server: ServerSession | None = None
        self.wire: list[WireRecord] = []
        self._transport = transport
        self._upgrades = upgrades
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._upgrade_timeout = upgrade_timeout
        self._max_payload = max_payload
        self._sid = sid

    @property
    def server_session(self) -> ServerSession:
        """The server's machine, once :meth:`handshake` created it."""
        assert self.server is not None, "no handshake yet"
        return self.server

    # -- the server side's Trio layer ------------------------------------------------------------

    def server_send(self, data: str | bytes) -> None:
        """The server application sends a message (queued by the machine, as ``AsyncServer.send`` has it)."""
        self.server_session.queue_packet(Packet(PacketType.MESSAGE, data))

    def server_close(self, detail: str = "") -> list[Event]:
        """The server application closes the session: the machine queues its CLOSE behind the rest."""
        return self.server_session.close(CloseReason.SERVER_DISCONNECT, detail)

    def _client_delivered(self) -> None:
        # As the client's writer: once the queue is empty, a CLOSING session's CLOSE is out.
        if self.client.state is ClientState.CLOSING and not self.client.has_packets_to_send:
            self.client.finish()

    # -- handshake and time -----------------------------------------------------------------------

    def handshake(self, now: float) -> Connected:
        """The handshake request: the server opens the session, the client reads its OPEN packet."""
        self.server = ServerSession(
            self._sid,
            self._transport,
            ping_interval=self._ping_interval,
            ping_timeout=self._ping_timeout,
            upgrade_timeout=self._upgrade_timeout,
            now=now,
        )
        hello = open_packet(
            self._sid,
            upgrades=self._upgrades,
            ping_interval_ms=round(self._ping_interval * 1000),
            ping_timeout_ms=round(self._ping_timeout * 1000),
            max_payload=self._max_payload,
        )
        if self._transport is Transport.POLLING:
            body = encode_payload([hello])
            self.wire.append(("GET", body))
            [received] = decode_payload(body)
        else:
            frame = encode_frame(hello)
            self.wire.append(("ws<", frame))
            received = decode_frame(frame)
        return self.client.receive_open(received, now)

    def tick(self, now: float) -> tuple[list[ClientEvent], list[Event]]:
        """Time passes on both sides: ``(client events, server events)``."""
        client_events = self.client.handle_timeout(now)
        server_events = self.server_session.handle_timeout(now)
        return client_events, server_events

    # -- polling ----------------------------------------------------------------------------------

    def begin_get(self) -> PollDecision:
        """The client starts a polling GET; the server's decision about it."""
        assert self.client.begin_get(), "the client may not start a GET now"
        decision, events = self.server_session.begin_get()
        assert events == [], events
        return decision

    def end_get(self, now: float) -> list[ClientEvent]:
        """The server answers the GET in flight as its machine says; the client reads it."""
        packets = self.server_session.poll_response(now)
        assert isinstance(packets, list), f"nothing to send: this GET would wait ({packets})"
        body = encode_payload(packets)
        self.wire.append(("GET", body))
        self.server_session.poll_sent()
        self.server_session.end_get()
        events: list[ClientEvent] = []
        for packet in decode_payload(body):
            events += self.client.receive_packet(packet, now)
        events += self.client.end_get()
        return events

    def get(self, now: float) -> list[ClientEvent]:
        """A whole polling GET: :meth:`begin_get` (which must proceed), then :meth:`end_get`."""
        assert self.begin_get() is PollDecision.PROCEED
        return self.end_get(now)

    def post(self, now: float) -> list[Event]:
        """A polling POST of what the client queued; the server's events."""
        body = self.client.begin_post()
        assert body is not None, "the client has nothing to POST now"
        self.wire.append(("POST", body))
        decision, events = self.server_session.begin_post()
        assert decision is PollDecision.PROCEED, decision
        for packet in decode_payload_bytes(body):
            events += self.server_session.receive_packet(packet, now, via=Transport.POLLING)
        self.server_session.end_post()
        assert self.client.end_post() == []
        self._client_delivered()
        return events

    # -- websocket --------------------------------------------------------------------------------

    def client_flush(self, now: float) -> list[Event]:
        """The client writes what it queued on its websocket; the server's events."""
        events: list[Event] = []
        for packet in self.client.packets_to_send():
            frame = encode_frame(packet)
            self.wire.append(("ws>", frame))
            events += self.server_session.receive_packet(decode_frame(frame), now, via=Transport.WEBSOCKET)
        self._client_delivered()
        return events

    def server_flush(self, now: float) -> list[ClientEvent]:
        """The server writes what it queued on its websocket; the client's events."""
        assert self.server_session.transport is Transport.WEBSOCKET
        packets = self.server_session.packets_to_send()
        events: list[ClientEvent] = []
        for packet in packets:
            frame = encode_frame(packet)
            self.wire.append(("ws<", frame))
            events += self.client.receive_packet(decode_frame(frame), now)
        if _CLOSE in packets:  # as the session's websocket writer, once the CLOSE is written
            self.server_session.finish()
        return events

    # -- upgrade ----------------------------------------------------------------------------------

    def probe(self, now: float) -> list[ClientEvent]:
        """The client opens a websocket for the session and probes it; the client's events."""
        assert self.server_session.attach_probe(now), "the server refused the websocket"
        frame = encode_frame(self.client.start_probe())
        self.wire.append(("probe>", frame))
        [probed] = self.server_session.receive_packet(decode_frame(frame), now, via=Transport.WEBSOCKET)
        assert isinstance(probed, UpgradeProbed), probed
        reply = encode_frame(probed.reply)
        self.wire.append(("probe<", reply))
        return self.client.receive_probe_packet(decode_frame(reply), now)
