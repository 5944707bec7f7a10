"""The Trio runner of one server session.

A :class:`Session` wraps the sans-IO :class:`~trio_engineio.protocol.ServerSession`
and owns a task group in the server's nursery::

    server nursery
    └── Session.run()                      one per sid; this task is the session's timer
        │                                  (PINGs, PONG and upgrade deadlines), then its wind-down
        └── session nursery
            ├── _run_handlers()            the message handler runner (async_handlers=True),
            │                              from the first message on: one client's messages in
            │                              order, beside the transport
            └── _websocket_writer()        while packets wait for it (the transport task)

An idle websocket session is one task (plus hypercorn's request task, which reads
its websocket and feeds the session): its runner starts with its first message, and
its writer only when a packet cannot be written from the sending task (another
write is under way, or the packet is the machine's PING or CLOSE). What only some
sessions need (the outbound channel, a parking lot for waits) is made when first
needed: at 10,000 sessions every object an idle one holds counts, in memory and in
each pass of the cyclic garbage collector.

Request tasks (hypercorn's) talk to the session through its methods; they
never touch another session. The outbound path: the application's sends wait
for room in a bounded memory channel (the waiting is Trio's); the transport
moves what it is about to send from the channel into the machine's queue,
which also holds the machine's PINGs and CLOSE and decides what goes out, in
which order and in which batches (the bookkeeping is the sans-IO core's). When
nothing is queued and no write is in flight, a websocket ``send`` writes from
the calling task instead of hopping through the writer (the hop costs more
than this whole layer; see ``docs/design.rst``).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import trio

from trio_engineio._http import Receive
from trio_engineio._logging import LoggerLike
from trio_engineio.exceptions import CloseReason, QueueFull, SocketIsClosedError
from trio_engineio.protocol import (
    Event,
    MessageReceived,
    Packet,
    PacketType,
    PollDecision,
    ServerSession,
    SessionClosed,
    SessionState,
    Transport,
    UpgradeAbandoned,
    UpgradeCompleted,
    UpgradeProbed,
    encode_frame,
)

__all__ = ["PollOutcome", "Session", "SessionCallbacks", "SessionConfig", "WebSocketWriter"]

WebSocketWriter = Callable[[str | bytes], Awaitable[bool]]
"""Writes one websocket message; raises :class:`SocketIsClosedError` when the socket is gone.

Returns whether the write surely reached a Trio scheduling point: a write straight to the
socket does not, and neither may an ASGI server's ``send`` (hypercorn's returns at once, frame
dropped, once the client has gone), so only a writer that knows says ``True``.
"""

_CLIENT_CLOSE_GRACE = 1.0
"""Seconds a client that sent CLOSE has to close its websocket before the server does."""
# async_handlers=True: at most this many handlers of one client wait at once; the messages
# behind them queue in order (one client cannot make the server start tasks without bound).
_MAX_HANDLER_RUNNERS = 32
# How soon a message queued behind a busy handler is looked at again: if the handler then
# waits, the message gets a runner of its own (a waiting handler found at once needs no timer).
_HANDLER_RECHECK = 0.2


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """What a session needs of its server's configuration, fixed when the session opens."""

    ping_interval: float
    ping_timeout: float
    upgrade_timeout: float
    close_timeout: float
    outbound_buffer_size: int
    max_packets_per_poll: int
    max_http_buffer_size: int
    async_handlers: bool


@dataclass(frozen=True, slots=True)
class SessionCallbacks:
    """How a session reaches its server: the application's handlers, and the sid registry.

    Attributes:
        message: runs the ``message`` handler with ``(sid, data)``.
        disconnect: runs the ``disconnect`` handler with ``(sid, reason, description)``.
        finished: the session is over and its tasks have ended: forget it.
        decode: turns a received message into what handlers get (JSON decoding).
        logger: where the session logs.
    """

    message: Callable[[str, Any], Awaitable[None]]
    disconnect: Callable[[str, CloseReason | None, str], Awaitable[None]]
    finished: Callable[[Session], None]
    decode: Callable[[str | bytes], Any]
    logger: LoggerLike


class PollOutcome:
    """What a polling GET answers: packets to send, or nothing (the client left), and the status."""

    __slots__ = ("packets", "status")

    def __init__(self, packets: list[Packet] | None, status: int = 200) -> None:
        self.packets = packets
        self.status = status


class Session:
    """One Engine.IO session, run as a task group in the server's nursery."""

    # Slots, not a __dict__: one per open session, ~1.5 KiB less each at 10,000 sessions.
    __slots__ = (
        "_busy_runner",
        "_callbacks",
        "_cancel_requested",
        "_close_delivered",
        "_closed",
        "_disconnect_handled",
        "_finished",
        "_get_scope",
        "_handler_recheck_at",
        "_handlers_awaiting_end",
        "_handlers_running",
        "_in_channel",
        "_inbound_receive",
        "_inbound_send",
        "_nursery",
        "_outbound_receive",
        "_outbound_send",
        "_probe_scope",
        "_room_waiters",
        "_runner_generation",
        "_runner_tasks",
        "_runners",
        "_sends_released",
        "_state_changed",
        "_timer_scope",
        "_transport_closed",
        "_waiting_for_handlers",
        "_writer_running",
        "_writer_scope",
        "_writing",
        "_ws_abort",
        "_ws_reader_scope",
        "_ws_write",
        "config",
        "connected",
        "logger",
        "machine",
        "sid",
        "user_session",
    )

    def __init__(self, config: SessionConfig, callbacks: SessionCallbacks, sid: str, transport: Transport) -> None:
        self.config = config
        self._callbacks = callbacks
        self.logger = callbacks.logger
        self.sid = sid
        self.user_session: dict[str, Any] = {}
        self.machine = ServerSession(
            sid,
            transport,
            ping_interval=config.ping_interval,
            ping_timeout=config.ping_timeout,
            upgrade_timeout=config.upgrade_timeout,
            now=trio.current_time(),
            outbound_buffer_size=config.outbound_buffer_size,
            max_packets_per_poll=config.max_packets_per_poll,
            max_poll_bytes=config.max_http_buffer_size,
        )
        # The bounded outbound channel, made when a packet first cannot go straight to the
        # transport (see _outbound_channel); a session whose sends all write at once has none.
        self._outbound_send: trio.MemorySendChannel[Packet] | None = None
        self._outbound_receive: trio.MemoryReceiveChannel[Packet] | None = None
        self._sends_released = False  # the session ended: no channel any more, sends refused
        # Packets in the channel or in sends parked on it (moved to the machine by _pull).
        self._in_channel = 0
        # The websocket writer task runs only while packets wait for it (see _ensure_writer).
        self._writer_running = False
        self._writer_scope: trio.CancelScope | None = None
        # Sends waiting for the machine's queue to drain (it took more than the buffer during
        # an upgrade); parked, or woken and not yet run: send_packet_nowait must not overtake them.
        self._room_waiters = 0
        # Every wait of this session that is not on the channel (room in the machine's queue,
        # a write under way, the handlers, the CLOSE's delivery, the end) parks here and checks
        # its condition again when woken, as with a condition variable: one lot, made by the
        # first wait, instead of an Event or a lot for each (see _wait_until).
        self._state_changed: trio.lowlevel.ParkingLot | None = None
        self._ws_write: WebSocketWriter | None = None
        self._ws_reader_scope: trio.CancelScope | None = None
        self._ws_abort: Callable[[], None] | None = None
        self._writing = False
        self._get_scope: trio.CancelScope | None = None
        self._probe_scope: trio.CancelScope | None = None
        self._timer_scope: trio.CancelScope | None = None
        # The session's nursery while run() is in it; until then (run() is started with
        # start_soon) what needs a task is started by run() itself.
        self._nursery: trio.Nursery | None = None
        self._cancel_requested = False
        self._transport_closed = False  # the wind-down has begun: no new writer
        self._closed = False
        self._close_delivered = False
        self._disconnect_handled = False
        self._finished = False
        self.connected = False
        # async_handlers=True: made with the first message's runner (an idle session has neither).
        self._inbound_send: trio.MemorySendChannel[Any] | None = None
        self._inbound_receive: trio.MemoryReceiveChannel[Any] | None = None
        # async_handlers=True: the runner task while it is inside a handler, how many runners
        # run, and which one owns the queue (see _deliver_message).
        self._busy_runner: trio.lowlevel.Task | None = None
        self._runners = 0
        self._handlers_running = 0
        self._handlers_awaiting_end = 0
        self._runner_tasks: set[trio.lowlevel.Task] | None = None
        self._waiting_for_handlers = False  # the session's end waits for them (then wake it)
        self._runner_generation = 0
        self._handler_recheck_at = math.inf

    # -- life ----------------------------------------------------------------

    async def run(self) -> None:
        """The session's task group; returns when the session is over and its tasks have ended.

        Started with ``start_soon``: a message, a send or a close may come before it runs, and
        what they need a task for is started here.
        """
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                if self._cancel_requested:
                    nursery.cancel_scope.cancel()
                if self._inbound_receive is not None and not self._runners:
                    self._start_runner(nursery)
                self._ensure_writer()
                await self._heartbeat()  # this task is the session's timer until it closes
                await self._wind_down()
        finally:
            self._nursery = None
            # Wake every send still waiting for room in the outbound buffer: nothing will
            # drain it any more (without this, such a send hung forever).
            self._release_waiting_sends()
            if self._inbound_receive is not None:
                self._inbound_receive.close()
            # When cancel() (shutdown after close_timeout) interrupts the wind-down, its own
            # _stop_transports() call is skipped: the request tasks (a pending GET, the
            # websocket or probe reader) live outside this session and would wait forever.
            self._stop_transports()
            self._disconnect_handled = True
            self._finished = True
            self._notify()
            self._callbacks.finished(self)

    def _release_waiting_sends(self) -> None:
        self._sends_released = True
        if self._outbound_receive is not None:
            self._outbound_receive.close()
        self._notify()

    def cancel(self) -> None:
        """Stop the session now, handlers included (server shutdown)."""
        self._cancel_requested = True
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    async def wait_finished(self) -> None:
        """Wait until the session is over and its tasks have ended (a checkpoint, even when they have)."""
        await self._wait_until(lambda: self._finished)

    async def _wait_until(self, condition: Callable[[], bool]) -> None:
        """Wait until ``condition()`` holds; always a checkpoint.

        Whatever changes a condition some wait may be on calls :meth:`_notify`.
        """
        if condition():
            await trio.lowlevel.checkpoint()
            return
        while not condition():
            if self._state_changed is None:
                self._state_changed = trio.lowlevel.ParkingLot()
            await self._state_changed.park()

    def _notify(self) -> None:
        """Something a wait may be on changed: every wait checks its condition again."""
        lot = self._state_changed
        if lot:  # a lot, and someone parked in it
            lot.unpark_all()

    async def _wind_down(self) -> None:
        # Handlers, the disconnect handler, then the CLOSE's delivery: close_timeout in all.
        deadline = trio.current_time() + self.config.close_timeout
        if self._inbound_send is not None:
            self._inbound_send.close()  # handlers finish what has arrived, then end
            # The disconnect handler comes after the handlers of what arrived (Socket.IO
            # relies on it), waiting for them until the deadline at most.
            if self._handlers_pending():
                self._waiting_for_handlers = True
                with trio.move_on_at(deadline):
                    await self._wait_until(lambda: not self._handlers_pending())
        if self.connected:
            machine = self.machine
            await self._callbacks.disconnect(self.sid, machine.close_reason, machine.close_detail)
        self._disconnect_handled = True
        self._notify()
        if self.machine.state is SessionState.CLOSING:
            # A server close: the CLOSE packet rides behind the queued ones.
            with trio.move_on_at(deadline):
                await self._wait_until(lambda: self._close_delivered)
            self.machine.finish()
        self._transport_closed = True  # no writer starts any more
        if self._writing and self._ws_abort is not None and self._nursery is not None:
            # No write starts once the session is closed: only one under way can stall.
            self._nursery.start_soon(self._abort_stalled_write, self._ws_abort)
        if self._writer_scope is not None:
            self._writer_scope.cancel()
        if self._writer_running:  # started, maybe not running yet: it sees _transport_closed
            await self._wait_until(lambda: not self._writer_running)
        # Nothing drains the outbound buffer any more: sends of handlers still waiting for
        # room end now (the session is closed) rather than hold the session's nursery open.
        self._release_waiting_sends()
        self._stop_transports()

    async def _abort_stalled_write(self, abort: Callable[[], None]) -> None:
        """Bound the wind-down: a write stuck on a peer that does not read is abandoned.

        hypercorn's trio worker writes in a shielded scope, so cancellation cannot end a
        write to a client that stopped reading; the session's tasks would wait for it
        forever. After ``close_timeout`` the connection is aborted underneath, which
        ends the write with an error.
        """
        with trio.move_on_after(self.config.close_timeout):
            await self._wait_until(lambda: not self._writing)
            return
        if self._writing:
            self.logger.warning(
                "session %s: a write to the client was still blocked %s s after the session ended; "
                "aborting its connection",
                self.sid,
                self.config.close_timeout,
            )
            abort()

    def _stop_transports(self) -> None:
        self._wake_get()  # the machine answers it (NOOP after a client's goodbye, else CLOSE)
        if self._ws_reader_scope is not None:
            if self.machine.close_reason is CloseReason.CLIENT_DISCONNECT:
                # The client said goodbye and is closing the websocket itself: let the reader
                # see that (then it sends no close) rather than race it. Crossing closes crash
                # hypercorn's trio worker (its unlocked send_eof meets the reply to the
                # client's close frame). A client that never closes is cut off after a second.
                deadline = trio.current_time() + _CLIENT_CLOSE_GRACE
                if deadline < self._ws_reader_scope.deadline:
                    self._ws_reader_scope.deadline = deadline
            else:
                self._ws_reader_scope.cancel()
        if self._probe_scope is not None:
            self._probe_scope.cancel()

    async def close(self, reason: CloseReason, detail: str = "") -> bool:
        """Close the session; returns whether this call closed it (False: it already was)."""
        if reason is CloseReason.SERVER_DISCONNECT and not self.machine.is_closed:
            self._pull()  # the machine's CLOSE goes behind everything sent so far
        return await self._dispatch(self.machine.close(reason, detail))

    def _on_closed(self, event: SessionClosed) -> None:
        if event.reason is CloseReason.SERVER_DISCONNECT:
            self._wake_transport()  # the machine queued the CLOSE
        else:
            self._close_delivered = True
            self._notify()
            # Wake a pending GET now: a client close gets NOOP, an error gets CLOSE.
            self._stop_transports()
        logger = self.logger
        log = logger.info if event.reason is not CloseReason.TRANSPORT_ERROR else logger.warning
        log("session %s closed: %s%s", self.sid, event.reason.value, f" ({event.detail})" if event.detail else "")
        self._closed = True
        if self._timer_scope is not None:
            self._timer_scope.cancel()  # the timer task goes on to the wind-down

    # -- events --------------------------------------------------------------

    async def _dispatch(self, events: list[Event]) -> bool:
        closed = False
        for event in events:
            if type(event) is MessageReceived:
                await self._deliver_message(event.data)
            elif type(event) is SessionClosed:
                self._on_closed(event)
                closed = True
            elif type(event) is UpgradeCompleted:
                self._on_upgraded()
            elif type(event) is UpgradeAbandoned:
                self.logger.info("session %s: upgrade abandoned: %s", self.sid, event.detail)
                if self._probe_scope is not None:
                    self._probe_scope.cancel()
                self._wake_get()  # a GET that waited for the outcome is served as usual
            elif type(event) is UpgradeProbed:  # pragma: no branch
                # The probe's reply is written by the probe's reader (_websocket._read_websocket
                # with probing=True), its only writer until the upgrade completes. A GET begun
                # before the websocket attached is released with NOOP (the client pauses polling
                # on it); one begun after waits for the upgrade's outcome (the machine says which).
                # Until UPGRADE nothing drains the buffer, and the client sends UPGRADE only once
                # its POST is answered, which may wait on a send parked for room: move the
                # buffer's packets (and with them the parked sends) into the machine, in order.
                self._pull()
                self._wake_get()
        return closed

    async def _deliver_message(self, data: str | bytes) -> None:
        decoded = self._callbacks.decode(data)
        if not self.config.async_handlers:
            await self._callbacks.message(self.sid, decoded)
            return
        inbound = self._inbound_send
        if inbound is None:
            # The first message: its runner and channel start now, so that an idle session
            # holds no handler task (one that has had messages keeps its runner).
            inbound, self._inbound_receive = trio.open_memory_channel[Any](self.config.outbound_buffer_size)
            self._inbound_send = inbound
            self._runner_tasks = set()
            if self._nursery is not None:  # else run() starts it
                self._start_runner(self._nursery)
        if self._busy_runner is not None:
            self._unblock_handlers()
        # The _nowait calls skip the scheduling point that send() and receive() make even
        # when they need not wait: on the hot path that point costs more than the hop itself.
        # The reader still checkpoints in its own receive().
        try:
            inbound.send_nowait(decoded)
            return
        except trio.WouldBlock:
            pass  # wait below, outside the except block (where the exception would stay alive)
        except trio.ClosedResourceError:
            return
        # ClosedResourceError: the session closed while this message waited for room.
        with contextlib.suppress(trio.ClosedResourceError):
            await inbound.send(decoded)

    def _unblock_handlers(self) -> None:
        """Messages wait behind a handler under way: if it waits, they get a runner of their own.

        The handler may wait for this very client's next message (a request/response over
        Engine.IO); one runner would then wait for ever. Handlers that do not wait keep strict
        order. A handler not waiting yet is looked at again shortly (it may start to).
        """
        runner = self._busy_runner
        if runner is None:
            return
        if self._runners >= _MAX_HANDLER_RUNNERS:
            self._schedule_handler_recheck(_HANDLER_RECHECK)  # a runner may be free by then
        elif _waiting(runner):
            assert self._nursery is not None  # a runner runs in it
            self._busy_runner = None
            self._start_runner(self._nursery, spilled=True)
        else:
            self._schedule_handler_recheck(_HANDLER_RECHECK)

    def _schedule_handler_recheck(self, delay: float) -> None:
        at = trio.current_time() + delay
        if at < self._handler_recheck_at:
            self._handler_recheck_at = at
            self._reschedule_timer()

    def _handlers_pending(self) -> bool:
        """Whether message handlers run (other than those waiting for this very wind-down), or
        messages wait for one."""
        inbound = self._inbound_receive
        running = self._handlers_running - self._handlers_awaiting_end
        return bool(running or (inbound is not None and inbound.statistics().current_buffer_used))

    async def wait_disconnect_handled(self) -> None:
        """Wait until the ``disconnect`` handler has run (a checkpoint, even when it has).

        Called from one of this session's own message handlers (``await eio.disconnect(sid)``),
        that handler is not waited for by the wind-down, which it is waiting for.
        """
        runner_tasks = self._runner_tasks
        if runner_tasks is None or trio.lowlevel.current_task() not in runner_tasks:
            await self._wait_until(lambda: self._disconnect_handled)
            return
        self._handlers_awaiting_end += 1
        if self._waiting_for_handlers:
            self._notify()
        try:
            await self._wait_until(lambda: self._disconnect_handled)
        finally:
            self._handlers_awaiting_end -= 1

    def _start_runner(self, nursery: trio.Nursery, *, spilled: bool = False) -> None:
        assert self._inbound_receive is not None
        self._runner_generation += 1
        self._runners += 1
        nursery.start_soon(self._run_handlers, self._inbound_receive.clone(), self._runner_generation, spilled)

    async def _run_handlers(
        self, inbound: trio.MemoryReceiveChannel[Any], generation: int, spilled: bool = False
    ) -> None:
        """Run message handlers one at a time, in arrival order, beside the transport.

        A runner hands the queue over when its handler waits while messages arrive (see
        :meth:`_deliver_message`): it finishes that handler and ends.
        """
        trigger = self._callbacks.message
        task = trio.lowlevel.current_task()
        runner_tasks = self._runner_tasks
        assert runner_tasks is not None  # made with the inbound channel
        runner_tasks.add(task)
        try:
            async with inbound:
                while True:
                    if generation != self._runner_generation:
                        # Handed over. If the queue's owner now waits with messages behind it
                        # (it found no runner free, at the bound), take the queue back.
                        owner = self._busy_runner
                        if owner is None or not _waiting(owner) or not inbound.statistics().current_buffer_used:
                            return
                        self._busy_runner = None
                        self._runner_generation += 1
                        generation = self._runner_generation
                    try:
                        data = inbound.receive_nowait()
                    except trio.WouldBlock:
                        # Waited for below, not in this block: an idle runner would hold the
                        # exception, its traceback and their frames for as long as it waits.
                        data = _NOTHING
                    except trio.EndOfChannel:
                        return
                    if data is _NOTHING:
                        try:
                            data = await inbound.receive()
                        except trio.EndOfChannel:
                            return
                    self._busy_runner = task
                    if spilled:
                        # Started for messages behind a waiting handler: this handler may wait
                        # too, so the rest is looked at as soon as it has begun.
                        spilled = False
                        if inbound.statistics().current_buffer_used:
                            self._schedule_handler_recheck(0)
                    elif self._handler_recheck_at == math.inf and inbound.statistics().current_buffer_used:
                        self._schedule_handler_recheck(_HANDLER_RECHECK)
                    self._handlers_running += 1
                    try:
                        await trigger(self.sid, data)
                    finally:
                        self._handlers_running -= 1
                        if self._waiting_for_handlers:
                            self._notify()
                        if self._busy_runner is task:
                            self._busy_runner = None
        finally:
            self._runners -= 1
            runner_tasks.discard(task)

    async def receive_packet(self, packet: Packet, *, via: Transport) -> list[Event]:
        """Process one packet from the client (from a POST or a websocket reader).

        Returns:
            The machine's events, already acted on (a probe's reader looks for
            :class:`UpgradeProbed` and :class:`UpgradeCompleted`).
        """
        events = self.machine.receive_packet(packet, trio.current_time(), via=via)
        if packet.type is PacketType.PONG:
            self._reschedule_timer()
        if events:
            await self._dispatch(events)
        return events

    # -- heartbeat -----------------------------------------------------------

    async def _heartbeat(self) -> None:
        """The session's timer: PINGs, the PONG and upgrade deadlines, handler rechecks; returns
        once the session has closed."""
        machine = self.machine
        while not self._closed:
            with trio.move_on_at(min(machine.next_deadline(), self._handler_recheck_at)) as scope:
                self._timer_scope = scope
                # trio.sleep_forever() without its frame and lambda: this wait is every idle
                # session's, for as long as it is idle.
                await trio.lowlevel.wait_task_rescheduled(_abort_sleep)
            self._timer_scope = None
            if self._closed:
                return
            now = trio.current_time()
            if now >= self._handler_recheck_at:
                self._handler_recheck_at = math.inf
                inbound = self._inbound_receive
                if inbound is not None and inbound.statistics().current_buffer_used:
                    self._unblock_handlers()  # reschedules itself while the handler is busy
            queued = machine.queued_count
            events = machine.handle_timeout(now)
            if machine.queued_count != queued:
                # A PING: the GET or a websocket writer task sends it, never this task, which
                # must stay free to time the session out (a write to a client that does not
                # read can block for ever under hypercorn).
                self._wake_transport()
            await self._dispatch(events)

    def _reschedule_timer(self) -> None:
        # Only an earlier deadline needs the timer moved; a later one is noticed when it wakes.
        scope = self._timer_scope
        if scope is not None:
            deadline = min(self.machine.next_deadline(), self._handler_recheck_at)
            if deadline < scope.deadline:
                scope.deadline = deadline

    # -- outbound ------------------------------------------------------------

    async def send_packet(self, packet: Packet) -> bool:
        """Queue a packet for the client; waits while the outbound buffer is full.

        Not a checkpoint by itself: the caller checks for cancellation first and adds
        the scheduling point when this did not reach one (see :meth:`AsyncServer.send_packet`).

        Returns:
            Whether it surely reached a scheduling point (a write from this task may not).

        Raises:
            SocketIsClosedError: the session is closed (before any scheduling point),
                or closed while this send waited for room (after one).
        """
        machine = self.machine
        if machine.is_closed:
            raise SocketIsClosedError(f"session {self.sid} is closed")
        write = self._ws_write
        if write is not None and not self._writing and not self._in_channel and not machine.queued_count:
            # Fast path: nothing waits ahead of this packet, so write it from this task.
            self._writing = True
            try:
                return await write(encode_frame(packet))
            except SocketIsClosedError:
                await self.close(CloseReason.TRANSPORT_CLOSE, "the websocket closed while sending")
                return False
            finally:
                self._writing = False
                self._notify()  # the writer task or the stall watchdog may wait; usually nobody
        if machine.backlogged:
            # The machine holds a full buffer's worth (taken past the bound during an upgrade):
            # wait for it to drain first, so that this packet stays behind it.
            self._room_waiters += 1
            try:
                await self._wait_until(lambda: not machine.backlogged)
            finally:
                self._room_waiters -= 1
            if machine.is_closed:
                raise SocketIsClosedError(f"session {self.sid} closed before the packet could be queued")
        if self._transport_waiting():
            self._hand_over(packet)
            await trio.lowlevel.cancel_shielded_checkpoint()
            return True
        if self._upgrading and self._channel_full():
            # During an upgrade GETs answer NOOP and nothing drains the buffer until the
            # client's UPGRADE, which waits for its POST, which may be waiting on this
            # send: waiting here would deadlock the upgrade. The excess is bounded by what
            # the application sends within upgrade_timeout.
            self._overflow(packet)
            await trio.lowlevel.cancel_shielded_checkpoint()
            return True
        channel = self._outbound_channel()
        self._in_channel += 1
        try:
            await channel.send(packet)  # a full checkpoint, even with room
        except trio.BrokenResourceError as exc:
            # The session ended while this send waited for room (see run()).
            self._in_channel -= 1
            raise SocketIsClosedError(f"session {self.sid} closed before the packet could be queued") from exc
        except BaseException:
            self._in_channel -= 1
            raise
        self._wake_transport()
        return True

    def send_packet_nowait(self, packet: Packet) -> None:
        """Queue a packet for the client without waiting, or refuse it.

        It waits for nothing, so it never writes from the calling task (no fast path): the
        packet goes through the channel, which wakes the websocket writer or a waiting GET.
        It is refused exactly when :meth:`send_packet` would wait: the buffer is full, or
        sends are waiting for the machine's queue to drain (this packet must not overtake
        them). During an upgrade the rules of :meth:`send_packet` apply: past the bound it
        goes to the machine's queue.

        Raises:
            QueueFull: the outbound buffer is full; nothing was queued.
            SocketIsClosedError: the session is closed.
        """
        machine = self.machine
        if machine.is_closed:
            raise SocketIsClosedError(f"session {self.sid} is closed")
        if machine.backlogged or self._room_waiters:
            raise QueueFull(f"the outbound buffer of session {self.sid} is full")
        if self._transport_waiting():
            self._hand_over(packet)
            return
        if self._upgrading and self._channel_full():
            self._overflow(packet)
            return
        channel = self._outbound_channel()
        try:
            channel.send_nowait(packet)
        except trio.WouldBlock:
            # Full, or sends are parked for room: the channel keeps their order.
            raise QueueFull(f"the outbound buffer of session {self.sid} is full") from None
        except trio.BrokenResourceError as exc:
            raise SocketIsClosedError(f"session {self.sid} is closed") from exc
        self._in_channel += 1
        self._wake_transport()

    @property
    def _upgrading(self) -> bool:
        state = self.machine.state
        return state is SessionState.PROBING or state is SessionState.UPGRADING

    def _channel_full(self) -> bool:
        return self._in_channel >= self.config.outbound_buffer_size

    def _outbound_channel(self) -> trio.MemorySendChannel[Packet]:
        """The bounded outbound channel, made by the first packet that needs it.

        Raises:
            SocketIsClosedError: the session has ended (its channel was closed, or never made).
        """
        channel = self._outbound_send
        if channel is None:
            if self._sends_released:
                raise SocketIsClosedError(f"session {self.sid} is closed")
            channel, self._outbound_receive = trio.open_memory_channel[Packet](self.config.outbound_buffer_size)
            self._outbound_send = channel
        return channel

    def _transport_waiting(self) -> bool:
        """Whether a GET or the websocket (its writer idle) waits for a packet with none queued before it."""
        return (
            (self._get_scope is not None or (self._ws_write is not None and not self._writer_running))
            and not self._in_channel
            and not self.machine.queued_count
        )

    def _hand_over(self, packet: Packet) -> None:
        """Give a packet to the transport that waits for it (as a channel hands it to a waiting receiver)."""
        self.machine.queue_packet(packet)
        self._wake_transport()

    def _overflow(self, packet: Packet) -> None:
        """Queue past the channel's bound (during an upgrade): behind everything in it."""
        self._pull()
        self.machine.queue_packet(packet)
        self._wake_transport()

    def _pull(self, limit: float = math.inf) -> None:
        """Move up to ``limit`` packets from the channel into the machine's queue, oldest first.

        Taking from the channel lets sends parked on it in, in their order.
        """
        receive = self._outbound_receive
        machine = self.machine
        while self._in_channel and limit > 0 and receive is not None:
            try:
                packet = receive.receive_nowait()
            except (trio.WouldBlock, trio.ClosedResourceError):  # pragma: no cover - the count says it is there
                self._in_channel = 0
                return
            self._in_channel -= 1
            limit -= 1
            if not machine.is_closed:  # else dropped: nothing more goes to a client that left
                machine.queue_packet(packet)

    @property
    def pending_count(self) -> int:
        """Packets sent by the application or the machine and not yet taken by the transport."""
        return self._in_channel + self.machine.queued_count

    def _wake_transport(self) -> None:
        """Something was queued: a waiting GET takes it, or the websocket writer does."""
        scope = self._get_scope
        if scope is not None:
            scope.cancel()
        elif self._ws_write is not None and not self._writer_running:
            self._ensure_writer()

    def _ensure_writer(self) -> None:
        """Start the websocket writer task for what is queued (it ends once it has written it all)."""
        nursery = self._nursery
        if (
            not self._writer_running
            and nursery is not None
            and self._ws_write is not None
            and not self._transport_closed
            and self.pending_count
        ):
            self._writer_running = True
            nursery.start_soon(self._websocket_writer, self._ws_write)

    def _drained(self) -> None:
        """The machine's queue got shorter: sends waiting for it to drain may go on."""
        if self._room_waiters and not self.machine.backlogged:
            self._notify()

    # -- polling -------------------------------------------------------------

    async def handle_get(self, receive: Receive) -> PollOutcome:
        """Serve a polling GET: wait for packets, or for the client to leave."""
        machine = self.machine
        decision, events = machine.begin_get()
        if decision is PollDecision.REJECT:
            return PollOutcome(None, 400)
        if decision is PollDecision.OVERLAP:
            await self._dispatch(events)
            return PollOutcome(None, 400)
        try:
            while True:
                # What a response can carry, from the channel into the machine, which answers.
                self._pull(self.config.max_packets_per_poll - machine.queued_count)
                answer = machine.poll_response(trio.current_time())
                if type(answer) is list:
                    self._drained()
                    return PollOutcome(answer)
                if answer is PollDecision.REJECT:
                    return PollOutcome(None, 400)  # the upgrade completed: the client is on its websocket
                # Nothing to send yet (or, begun during an upgrade, its outcome is awaited): wait in
                # this task, with no helper task, for the client to leave (ASGI's http.disconnect)
                # or for this scope to be cancelled by a packet being queued, a change of the
                # upgrade or the session's end (_wake_get), or the machine's poll deadline.
                with trio.CancelScope(deadline=machine.poll_deadline()) as scope:
                    self._get_scope = scope
                    while (await receive())["type"] != "http.disconnect":
                        pass  # the GET's empty http.request
                    return PollOutcome(None)  # the client went away
                self._get_scope = None
        finally:
            self._get_scope = None
            machine.end_get()

    def poll_sent(self) -> None:
        """The GET response was sent."""
        if self.machine.poll_sent():
            self._close_delivered = True
            self._notify()

    def poll_not_sent(self) -> None:
        """The GET response could not be sent: its queued packets go back, first in line."""
        self.machine.poll_not_sent()
        self._wake_transport()  # after an upgrade, the websocket writer sends them

    def _wake_get(self) -> None:
        """A GET waiting asks the machine again (a no-op when none waits)."""
        scope = self._get_scope
        if scope is not None:
            scope.cancel()

    def begin_post(self) -> tuple[PollDecision, list[Event]]:
        """A POST arrived; see :meth:`ServerSession.begin_post`."""
        return self.machine.begin_post()

    async def dispatch(self, events: list[Event]) -> None:
        """Act on events the caller got from the machine."""
        await self._dispatch(events)

    # -- websocket -----------------------------------------------------------

    def attach_websocket(
        self, write: WebSocketWriter, reader_scope: trio.CancelScope, abort: Callable[[], None] | None = None
    ) -> None:
        """Make a websocket the transport (a websocket-only session, or after an upgrade).

        ``abort`` aborts the connection underneath, where the ASGI server allows it
        (see :func:`trio_engineio._hypercorn.connection_aborter`).
        """
        self._ws_write = write
        self._ws_reader_scope = reader_scope
        self._ws_abort = abort
        if self._in_channel or self.machine.queued_count:
            self._ensure_writer()  # what was queued before (during an upgrade) goes out first

    def begin_probe(self, probe_scope: trio.CancelScope) -> bool:
        """A websocket wants to upgrade this session; ``False`` refuses it."""
        if not self.machine.attach_probe(trio.current_time()):
            return False
        self._probe_scope = probe_scope
        self._reschedule_timer()
        return True

    def end_probe(self) -> None:
        """The probe websocket's reader has stopped (upgraded, abandoned or closed)."""
        self._probe_scope = None
        self.machine.probe_lost()

    def _on_upgraded(self) -> None:
        self._probe_scope = None
        # The polling scope ends here: a GET still waiting is released with NOOP, or answered
        # 400 if it began during the upgrade (the client has left polling; the machine says which).
        self._wake_get()

    async def _websocket_writer(self, write: WebSocketWriter) -> None:
        """Write what is queued onto the websocket, in order, after any fast-path write; end
        when nothing is left (the next packet queued starts a writer again)."""
        try:
            # The wind-down cancels a writer (it may wait on a write under way, or write
            # through an ASGI server whose send can be cancelled).
            with trio.CancelScope() as self._writer_scope:
                if self._writing:  # a fast-path write under way goes first
                    await self._wait_until(lambda: not self._writing)
                if not self._transport_closed:
                    await self._write_queued(write)
        finally:
            self._writer_scope = None
            self._writer_running = False
            self._notify()

    async def _write_queued(self, write: WebSocketWriter) -> None:
        machine = self.machine
        self._writing = True
        try:
            while True:
                packets = machine.packets_to_send()
                if not packets:
                    if not self._in_channel:
                        return
                    self._pull(1)  # one at a time: the channel's bound holds while this writes
                    continue
                self._drained()
                for packet in packets:
                    try:
                        await write(encode_frame(packet))
                    except SocketIsClosedError:
                        await self.close(CloseReason.TRANSPORT_CLOSE, "the websocket closed while sending")
                        return
                    if packet.type is PacketType.CLOSE:
                        self._close_delivered = True
                        return
        finally:
            self._writing = False  # the writer's finally notifies


def _abort_sleep(_: Any) -> trio.lowlevel.Abort:
    return trio.lowlevel.Abort.SUCCEEDED


_NOTHING: Any = object()
"""No message taken yet (a message may be any object, ``None`` included)."""


def _waiting(task: trio.lowlevel.Task) -> bool:
    """Whether ``task`` is blocked waiting for something (not merely at a checkpoint).

    Trio has no public name for it: a blocked task holds the abort function of its wait,
    which is cleared when it is rescheduled. A Trio without that attribute counts every
    busy runner as waiting (correct: the next message runs beside it; only slower).
    """
    return getattr(task, "_abort_func", True) is not None
