"""``AsyncServer.send_nowait``: the slow-consumer policy (queue without waiting, or ``QueueFull``).

In memory, on virtual time. The invariants: what ``send_nowait`` accepted is delivered, once and
in order with the session's other packets; it refuses exactly when ``send`` would wait; it never
overtakes a ``send`` that is waiting for room; a gone sid is logged, as ``send`` logs it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
import trio
import trio.testing
from server_helpers import Poller, make_app, probe, upgrade_query, ws_handshake

import trio_engineio
from trio_engineio import LocalProtocolError, QueueFull
from trio_engineio._http import Send
from trio_engineio.protocol import Packet, PacketType
from trio_engineio.testing import open_websocket

PING = Packet(PacketType.PING)


def message(data: str | bytes) -> Packet:
    return Packet(PacketType.MESSAGE, data)


def fill(eio: trio_engineio.AsyncServer, sid: str, prefix: str = "") -> list[str]:
    """``send_nowait`` numbered messages until ``QueueFull``; returns those accepted."""
    accepted: list[str] = []
    while True:
        data = f"{prefix}{len(accepted)}"
        try:
            eio.send_nowait(sid, data)
        except QueueFull:
            return accepted
        accepted.append(data)
        assert len(accepted) < 100, "never full"


class StalledReaders:
    """Websocket writes that block while that client is not reading (clients that stopped reading).

    Websockets are numbered in the order the app accepts them: ``stop(0)`` stalls the first one.
    """

    def __init__(self) -> None:
        self._stopped: dict[int, trio.Event] = {}
        self._count = 0

    def stop(self, index: int = 0) -> None:
        self._stopped.setdefault(index, trio.Event())

    def resume(self, index: int = 0) -> None:
        self._stopped.pop(index).set()

    def writer(self, send: Send, enabled: bool = True) -> Callable[[str | bytes], Any]:
        channel = send.__self__  # type: ignore[attr-defined]  # the driver's MemorySendChannel.send
        assert type(channel) is trio.MemorySendChannel
        index = self._count
        self._count += 1

        async def write(frame: str | bytes) -> bool:
            while (resumed := self._stopped.get(index)) is not None:
                await resumed.wait()
            await trio.lowlevel.checkpoint()
            channel.send_nowait({"type": "websocket.send", "text" if isinstance(frame, str) else "bytes": frame})
            return True

        return write


@pytest.fixture
def stalled(monkeypatch: pytest.MonkeyPatch) -> StalledReaders:
    readers = StalledReaders()
    monkeypatch.setattr(trio_engineio._hypercorn, "fast_websocket_writer", readers.writer)
    return readers


# -- delivery ------------------------------------------------------------------------------


async def test_delivers_in_order_over_websocket_with_send(autojump_clock: trio.testing.MockClock) -> None:
    """str, bytes and JSON, interleaved with ``send``: every message once, in call order."""
    eio, app = make_app()
    async with eio, open_websocket(app) as ws:
        sid = (await ws_handshake(ws))["sid"]
        eio.send_nowait(sid, "a")
        eio.send_nowait(sid, b"\x00b")
        await eio.send(sid, "c")  # behind the two queued: not the fast path
        eio.send_nowait(sid, {"d": [1]})
        eio.send_nowait(sid, b"e")
        assert [await ws.receive() for _ in range(5)] == ["4a", b"\x00b", "4c", '4{"d":[1]}', b"e"]
        await trio.testing.wait_all_tasks_blocked()
        assert eio._sessions[sid].pending_count == 0


async def test_delivers_in_order_over_polling_and_wakes_a_waiting_get(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A GET waiting for packets is answered at once by ``send_nowait``; later ones batch, in order."""
    eio, app = make_app()
    async with eio, Poller.open(app) as poller, trio.open_nursery() as nursery:
        await poller.handshake()
        pending = await poller.start_get(nursery)
        await trio.sleep(3)
        eio.send_nowait(poller.sid, "first")
        response = await pending.response()
        assert response is not None
        assert response.text == "4first"
        assert trio.current_time() == 3
        eio.send_nowait(poller.sid, "x")
        await eio.send(poller.sid, b"y")
        eio.send_nowait(poller.sid, ["z"])
        assert await poller.get() == [message("x"), message(b"y"), message('["z"]')]


# -- a full buffer -------------------------------------------------------------------------


async def test_polling_full_buffer_raises_queue_full_and_loses_nothing(autojump_clock: trio.testing.MockClock) -> None:
    """With ``outbound_buffer_size=4`` and no GET, the fifth is refused; the four arrive, and once a
    GET has made room ``send_nowait`` is accepted again."""
    eio, app = make_app(outbound_buffer_size=4)
    async with eio, Poller.open(app) as poller:
        await poller.handshake()
        assert fill(eio, poller.sid) == ["0", "1", "2", "3"]
        with pytest.raises(QueueFull, match="outbound buffer"):
            eio.send_nowait(poller.sid, "refused")
        assert await poller.get() == [message(str(i)) for i in range(4)]
        assert fill(eio, poller.sid, "again ") == [f"again {i}" for i in range(4)]
        assert await poller.get() == [message(f"again {i}") for i in range(4)]
        assert eio._sessions[poller.sid].pending_count == 0


async def test_websocket_client_that_stops_reading(
    autojump_clock: trio.testing.MockClock, stalled: StalledReaders
) -> None:
    """A websocket whose client stopped reading: one packet in the writer's hands plus
    ``outbound_buffer_size`` queued, then ``QueueFull``; once it reads again every accepted
    packet arrives, in order, and the session is alive."""
    eio, app = make_app(outbound_buffer_size=4)
    async with eio, open_websocket(app) as ws:
        sid = (await ws_handshake(ws))["sid"]
        await trio.testing.wait_all_tasks_blocked()  # the writer task waits for packets
        stalled.stop()
        accepted = fill(eio, sid)
        await trio.testing.wait_all_tasks_blocked()
        assert accepted == ["0", "1", "2", "3", "4"]  # "0" is being written
        assert fill(eio, sid, "still full ") == []
        stalled.resume()
        assert [await ws.receive() for _ in range(5)] == [f"4{i}" for i in range(5)]
        eio.send_nowait(sid, "after")
        assert await ws.receive() == "4after"


async def test_a_broadcast_is_not_held_up_by_a_client_that_stopped_reading(
    autojump_clock: trio.testing.MockClock, stalled: StalledReaders
) -> None:
    """The recipe: ``send_nowait`` and skip on ``QueueFull``. The loop never waits on the stalled
    client, the others get every message, and the stalled one is not disconnected by it."""
    eio, app = make_app(outbound_buffer_size=4)
    async with eio, open_websocket(app) as slow, open_websocket(app) as fast:
        slow_sid = (await ws_handshake(slow))["sid"]
        fast_sid = (await ws_handshake(fast))["sid"]
        await trio.testing.wait_all_tasks_blocked()
        stalled.stop(0)
        skipped = {slow_sid: 0, fast_sid: 0}
        start = trio.current_time()
        for i in range(20):
            for sid in (slow_sid, fast_sid):
                try:
                    eio.send_nowait(sid, str(i))
                except QueueFull:
                    skipped[sid] += 1
            assert await fast.receive() == f"4{i}"
        assert trio.current_time() == start
        assert skipped == {slow_sid: 20 - 5, fast_sid: 0}  # 1 being written + 4 buffered
        assert slow_sid in eio.sockets
        stalled.resume(0)
        assert [await slow.receive() for _ in range(5)] == [f"4{i}" for i in range(5)]


# -- order with waiting sends ----------------------------------------------------------------


async def test_does_not_overtake_a_send_waiting_for_room(autojump_clock: trio.testing.MockClock) -> None:
    """A ``send`` parked on the full channel stays ahead of a later ``send_nowait``."""
    eio, app = make_app(outbound_buffer_size=4)
    async with eio, Poller.open(app) as poller, trio.open_nursery() as nursery:
        await poller.handshake()
        assert fill(eio, poller.sid) == ["0", "1", "2", "3"]
        nursery.start_soon(eio.send, poller.sid, "parked")
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(QueueFull):
            eio.send_nowait(poller.sid, "late")
        assert await poller.get() == [message(d) for d in ["0", "1", "2", "3", "parked"]]
        eio.send_nowait(poller.sid, "late")
        assert await poller.get() == [message("late")]


class HookedParkingLot:
    """A ParkingLot that calls ``hook`` right after ``unpark_all``: in the instant the woken
    tasks are runnable but have not run."""

    def __init__(self, hook: Callable[[], None]) -> None:
        self._lot = trio.lowlevel.ParkingLot()
        self._hook = hook

    def __bool__(self) -> bool:
        return bool(self._lot)

    async def park(self) -> None:
        await self._lot.park()

    def unpark_all(self) -> list[trio.lowlevel.Task]:
        woken = self._lot.unpark_all()
        self._hook()
        return woken


async def test_does_not_overtake_a_send_waiting_for_the_backlog(autojump_clock: trio.testing.MockClock) -> None:
    """Sends past the bound during an upgrade that is then abandoned leave the session holding more
    than its buffer: later sends park until it has drained (they must stay behind it).
    ``send_nowait`` is refused while they wait, and in the instant the backlog drains, when the
    parked send is woken but has not run yet; after that it queues behind the send."""
    eio, app = make_app(outbound_buffer_size=4, max_packets_per_poll=4)
    async with eio, Poller.open(app) as poller, trio.open_nursery() as nursery:
        await poller.handshake()
        session = eio._sessions[poller.sid]
        refused_in_the_instant: list[bool] = []

        def try_send_nowait() -> None:
            try:
                eio.send_nowait(poller.sid, "overtaking")
            except QueueFull:
                refused_in_the_instant.append(True)

        session._state_changed = HookedParkingLot(try_send_nowait)  # type: ignore[assignment]
        async with open_websocket(app, query=upgrade_query(poller.sid)) as ws:
            await ws.send("2probe")
            assert await ws.receive() == "3probe"
            for i in range(10):  # past the bound: nothing drains the buffer during the upgrade
                eio.send_nowait(poller.sid, str(i))
        await trio.testing.wait_all_tasks_blocked()  # the probe closed: abandoned, polling goes on
        assert eio.transport(poller.sid) == "polling"
        with pytest.raises(QueueFull):
            eio.send_nowait(poller.sid, "refused")
        nursery.start_soon(eio.send, poller.sid, "parked")
        await trio.testing.wait_all_tasks_blocked()
        assert await poller.get() == [message(str(i)) for i in range(4)]
        with pytest.raises(QueueFull):  # 6 still wait ahead of "parked"
            eio.send_nowait(poller.sid, "late")
        assert refused_in_the_instant == []
        assert await poller.get() == [message(str(i)) for i in range(4, 8)]
        assert refused_in_the_instant == [True]
        await trio.testing.wait_all_tasks_blocked()
        eio.send_nowait(poller.sid, "late")
        assert await poller.get() == [message("8"), message("9"), message("parked"), message("late")]


async def test_during_an_upgrade_it_goes_past_the_bound_as_send_does(autojump_clock: trio.testing.MockClock) -> None:
    """Once the probe is answered nothing drains the buffer until UPGRADE: as ``send`` there,
    ``send_nowait`` overflows instead of refusing, and everything arrives on the websocket in order."""
    eio, app = make_app(outbound_buffer_size=4)
    async with eio, Poller.open(app) as poller, trio.open_nursery() as nursery:
        await poller.handshake()
        pending = await poller.start_get(nursery)
        async with open_websocket(app, query=upgrade_query(poller.sid)) as ws:
            assert (await probe(ws, pending)).text == "6"
            for i in range(10):
                eio.send_nowait(poller.sid, str(i))
            await ws.send("5")
            assert [await ws.receive() for _ in range(10)] == [f"4{i}" for i in range(10)]
            assert eio.transport(poller.sid) == "websocket"
            await trio.testing.wait_all_tasks_blocked()
            # Upgraded, the bound applies again (the first is handed to the idle writer at once).
            assert len(fill(eio, poller.sid)) == 5


# -- what send refuses, and gone sids ---------------------------------------------------------


async def test_unknown_or_closed_sid_is_logged_and_ignored(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """As ``send``: a warning, no exception."""
    eio, app = make_app()
    release = trio.Event()

    @eio.on("disconnect")
    async def disconnect(sid: str) -> None:
        await release.wait()  # keeps the closed session known while it is sent to

    async with eio:
        async with open_websocket(app) as ws:
            sid = (await ws_handshake(ws))["sid"]
        await trio.testing.wait_all_tasks_blocked()
        assert eio._sessions[sid].machine.is_closed
        with caplog.at_level(logging.WARNING, logger="trio_engineio.server"):
            eio.send_nowait("no-such-sid", "x")
            eio.send_nowait(sid, "x")
        release.set()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["Cannot send to sid no-such-sid", f"Cannot send to sid {sid}: the session is closed"]


async def test_unsendable_data_raises_and_queues_nothing(autojump_clock: trio.testing.MockClock) -> None:
    """The data rules of ``send``: non-JSON data is a TypeError, a lone surrogate a LocalProtocolError."""
    eio, app = make_app()
    async with eio, open_websocket(app) as ws:
        sid = (await ws_handshake(ws))["sid"]
        with pytest.raises(TypeError):
            eio.send_nowait(sid, {"x": object()})
        with pytest.raises(LocalProtocolError):
            eio.send_nowait(sid, "\ud800")
        assert eio._sessions[sid].pending_count == 0
        eio.send_nowait(sid, "ok")
        assert await ws.receive() == "4ok"
