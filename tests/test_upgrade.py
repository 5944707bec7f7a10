"""Upgrading a polling session to websocket, in memory, on virtual time.

Spec references are to the Engine.IO v4 protocol (https://socket.io/docs/v4/engine-io-protocol/),
section "Upgrade": the client opens a websocket with the sid, sends ``2probe``, the server answers
``3probe``, the client sends ``5`` and the websocket becomes the transport.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing
from server_helpers import Poller, Recorder, make_app, start_request, ws_handshake

from trio_engineio import ASGIApp
from trio_engineio.protocol import Packet, PacketType, decode_payload
from trio_engineio.testing import WebSocketClosed, WebSocketRejected, WebSocketSession, open_websocket

NOOP = Packet(PacketType.NOOP)


def message(data: str | bytes) -> Packet:
    return Packet(PacketType.MESSAGE, data)


@asynccontextmanager
async def open_probe(app: ASGIApp, sid: str) -> AsyncIterator[WebSocketSession]:
    """The websocket a client opens to upgrade session ``sid``."""
    async with open_websocket(app, query={"EIO": "4", "transport": "websocket", "sid": sid}) as ws:
        yield ws


async def test_full_upgrade(autojump_clock: trio.testing.MockClock) -> None:
    """spec: the server MUST send NOOP to a pending GET and answer ``2probe`` with ``3probe``; a GET
    during the upgrade gets NOOP after 0.1 s (the reference server's tick), and after ``5`` the
    websocket carries everything queued meanwhile, first and in order, none lost or duplicated."""
    eio, app = make_app()
    recorder = Recorder(eio)
    async with eio, Poller.open(app) as poller, trio.open_nursery() as nursery:
        await poller.handshake()
        await eio.send(poller.sid, "before")
        assert await poller.get() == [message("before")]
        pending = await start_request(nursery, poller.get_response)

        async with open_probe(app, poller.sid) as ws:
            await ws.send("2probe")
            assert await ws.receive() == "3probe"
            released = await pending.result()
            assert (released.status_code, released.text) == (200, "6")
            assert eio.transport(poller.sid) == "polling"

            for i in range(5):
                await eio.send(poller.sid, f"meanwhile {i}")
            await eio.send(poller.sid, b"\x00binary")
            start = trio.current_time()
            assert await poller.get() == [NOOP]  # it takes nothing
            assert trio.current_time() == start + 0.1
            await poller.post(message("posted during the upgrade"))

            await ws.send("5")
            for i in range(5):
                assert await ws.receive() == f"4meanwhile {i}"
            assert await ws.receive() == b"\x00binary"
            assert eio.transport(poller.sid) == "websocket"

            await eio.send(poller.sid, "after")
            assert await ws.receive() == "4after"
            await ws.send("4from websocket")
            await trio.testing.wait_all_tasks_blocked()
            assert [data for _, data in recorder.messages] == ["posted during the upgrade", "from websocket"]
            assert recorder.disconnects == []


async def test_packets_queued_before_the_websocket_arrive_on_it(autojump_clock: trio.testing.MockClock) -> None:
    """Packets that no GET took before the upgrade go out first on the websocket: nothing is dropped."""
    eio, app = make_app()
    async with eio, Poller.open(app) as poller:
        await poller.handshake()
        await eio.send(poller.sid, "queued 1")
        await eio.send(poller.sid, "queued 2")
        async with open_probe(app, poller.sid) as ws:
            await ws.send("2probe")
            assert await ws.receive() == "3probe"
            await eio.send(poller.sid, "queued 3")
            await ws.send("5")
            assert [await ws.receive() for _ in range(3)] == ["4queued 1", "4queued 2", "4queued 3"]


async def test_after_the_upgrade_polling_is_refused_and_a_second_websocket_closed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """After the upgrade the sid no longer polls (400), and spec: a client MUST NOT open more than one
    websocket per session; should it happen, the server MUST close the websocket. As the reference
    server does, it is accepted, then closed (an HTTP refusal is an error event to the ``ws`` package)."""
    eio, app = make_app()
    recorder = Recorder(eio)
    async with eio, Poller.open(app) as poller:
        await poller.handshake()
        async with open_probe(app, poller.sid) as ws:
            await ws.send("2probe")
            assert await ws.receive() == "3probe"
            await ws.send("5")
            await trio.testing.wait_all_tasks_blocked()
            assert eio.transport(poller.sid) == "websocket"

            get = await poller.get_response()
            assert get.status_code == 400
            assert get.json()["code"] == 3
            assert (await poller.post_response("4x")).status_code == 400

            async with open_probe(app, poller.sid) as second:
                assert await second.wait_closed() == 1000

            # The upgraded session is unharmed by all that.
            await eio.send(poller.sid, "still here")
            assert await ws.receive() == "4still here"
            assert recorder.disconnects == []
            assert [data for _, data in recorder.messages] == []


@pytest.mark.parametrize("probed", [False, True])
async def test_a_second_probe_during_an_upgrade_is_closed(autojump_clock: trio.testing.MockClock, probed: bool) -> None:
    """Only one websocket may probe a session at a time: a second one is accepted and closed, as the
    reference server does, before or after the first one's probe; the upgrade goes on."""
    eio, app = make_app()
    async with eio, Poller.open(app) as poller:
        await poller.handshake()
        async with open_probe(app, poller.sid) as ws:
            if probed:
                await ws.send("2probe")
                assert await ws.receive() == "3probe"
            async with open_probe(app, poller.sid) as second:
                await second.send("2probe")  # ignored: it is closed
                assert await second.wait_closed() == 1000
            if not probed:
                await ws.send("2probe")
                assert await ws.receive() == "3probe"
            await ws.send("5")
            await eio.send(poller.sid, "upgraded")
            assert await ws.receive() == "4upgraded"


@pytest.mark.parametrize("get_arrives", ["before the probe is read", "after the probe is answered", "right after"])
async def test_a_get_sent_after_2probe_and_5_is_answered_400(
    autojump_clock: trio.testing.MockClock, get_arrives: str
) -> None:
    """spec: a client may send ``2probe`` and, without waiting for ``3probe``, ``5``; a polling GET
    it sends after them is answered 400 (the session is on websocket), as by the reference server,
    even when the GET is read before the websocket's frames (it waits for the upgrade's outcome)."""
    eio, app = make_app()
    recorder = Recorder(eio)
    async with eio, Poller.open(app) as poller, trio.open_nursery() as nursery:
        await poller.handshake()
        async with open_probe(app, poller.sid) as ws:
            if get_arrives == "before the probe is read":
                pending = await start_request(nursery, poller.get_response)
                await ws.send("2probe")
                await ws.send("5")
            elif get_arrives == "after the probe is answered":
                await ws.send("2probe")
                assert await ws.receive() == "3probe"
                pending = await start_request(nursery, poller.get_response)
                await ws.send("5")
            else:
                await ws.send("2probe")
                await ws.send("5")
                pending = await start_request(nursery, poller.get_response)
            response = await pending.result()
            assert response.status_code == 400
            assert response.json() == {"code": 3, "message": "Bad request"}
            assert trio.current_time() == 0  # the outcome, not a timer, answered it
            assert eio.transport(poller.sid) == "websocket"
            if get_arrives != "after the probe is answered":
                assert await ws.receive() == "3probe"
            await eio.send(poller.sid, "on the websocket")
            assert await ws.receive() == "4on the websocket"
            assert recorder.disconnects == []


@pytest.mark.parametrize("how", ["a bad packet on the probe", "the probe websocket closes"])
async def test_a_get_waiting_on_an_abandoned_upgrade_is_served_as_usual(
    autojump_clock: trio.testing.MockClock, how: str
) -> None:
    """A GET that arrives after the probe was answered waits for the upgrade's outcome; when the
    upgrade is abandoned it is served as any GET: it waits for, and carries, the next message."""
    eio, app = make_app()
    async with eio, Poller.open(app) as poller, trio.open_nursery() as nursery:
        await poller.handshake()
        async with open_probe(app, poller.sid) as ws:
            await ws.send("2probe")
            assert await ws.receive() == "3probe"
            pending = await start_request(nursery, poller.get_response)
            if how == "a bad packet on the probe":
                await ws.send("4not an upgrade")
                await ws.wait_closed()
            else:
                await ws.close()
        await trio.testing.wait_all_tasks_blocked()
        assert not pending.done.is_set()  # neither NOOP nor 400: an ordinary GET, waiting
        await trio.sleep(1)
        assert not pending.done.is_set()
        await eio.send(poller.sid, "after the upgrade failed")
        response = await pending.result()
        assert decode_payload(response.text) == [message("after the upgrade failed")]
        assert eio.transport(poller.sid) == "polling"


async def test_a_get_begun_after_the_websocket_attached_gets_noop_soon_after_the_probe(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A client that keeps polling while its websocket connects, and waits for that GET before it
    sends ``5`` (the official client pauses its polling so), gets NOOP 0.1 s after the probe is
    answered (the reference server's tick), not at the end of ``upgrade_timeout``."""
    eio, app = make_app()
    async with eio, Poller.open(app) as poller, trio.open_nursery() as nursery:
        await poller.handshake()
        async with open_probe(app, poller.sid) as ws:
            await trio.sleep(1)
            pending = await start_request(nursery, poller.get_response)
            await ws.send("2probe")
            assert await ws.receive() == "3probe"
            response = await pending.result()
            assert (response.status_code, response.text) == (200, "6")
            assert trio.current_time() == 1.1
            await ws.send("5")
            await eio.send(poller.sid, "upgraded")
            assert await ws.receive() == "4upgraded"


@pytest.mark.parametrize(
    ("before_probe", "after_probe"),
    [
        ([], ["4not an upgrade"]),
        ([], ["2probe"]),
        ([], ["9garbage"]),
        (["4too early"], []),
        (["2notprobe"], []),
    ],
)
async def test_anything_but_upgrade_on_the_probe_closes_it_and_polling_goes_on(
    autojump_clock: trio.testing.MockClock, before_probe: list[str], after_probe: list[str]
) -> None:
    """spec: anything other than ``2probe`` then ``5`` on the probe websocket closes the probe;
    the session goes on polling and loses nothing."""
    eio, app = make_app()
    recorder = Recorder(eio)
    async with eio, Poller.open(app) as poller:
        await poller.handshake()
        async with open_probe(app, poller.sid) as ws:
            for frame in before_probe:
                await ws.send(frame)
            if after_probe:
                await ws.send("2probe")
                assert await ws.receive() == "3probe"
                await eio.send(poller.sid, "during")
                for frame in after_probe:
                    await ws.send(frame)
            with pytest.raises(WebSocketClosed):
                await ws.receive()
        await eio.send(poller.sid, "after")
        expected = [message("during"), message("after")] if after_probe else [message("after")]
        assert await poller.get() == expected
        await poller.post(message("polling still works"))
        await trio.testing.wait_all_tasks_blocked()
        assert eio.transport(poller.sid) == "polling"
    assert [data for _, data in recorder.messages] == ["polling still works"]
    assert recorder.disconnects[0][1] == "server disconnect"  # only the shutdown at the end


@pytest.mark.parametrize("probed", [True, False])
async def test_no_upgrade_within_upgrade_timeout_closes_the_probe(
    autojump_clock: trio.testing.MockClock, probed: bool
) -> None:
    """No ``5`` within upgrade_timeout of the websocket's arrival: the probe is closed at exactly
    that instant and the session goes on polling."""
    eio, app = make_app(upgrade_timeout=4)
    recorder = Recorder(eio)
    async with eio, Poller.open(app) as poller:
        await poller.handshake()
        await trio.sleep(2)
        async with open_probe(app, poller.sid) as ws:
            if probed:
                await ws.send("2probe")
                assert await ws.receive() == "3probe"
                assert await poller.get() == [NOOP]
            with pytest.raises(WebSocketClosed):
                await ws.receive()
            assert trio.current_time() == 6
        await eio.send(poller.sid, "polling again")
        assert await poller.get() == [message("polling again")]
        assert recorder.disconnects == []


async def test_probe_websocket_closing_early_leaves_the_session_polling(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A probe websocket that goes away before ``5`` ends the upgrade attempt, not the session;
    a later upgrade may succeed."""
    eio, app = make_app()
    recorder = Recorder(eio)
    async with eio, Poller.open(app) as poller:
        await poller.handshake()
        async with open_probe(app, poller.sid) as ws:
            await ws.send("2probe")
            assert await ws.receive() == "3probe"
            await eio.send(poller.sid, "not lost")
        await trio.testing.wait_all_tasks_blocked()
        assert await poller.get() == [message("not lost")]
        assert eio.transport(poller.sid) == "polling"
        assert recorder.disconnects == []

        async with open_probe(app, poller.sid) as ws:
            await ws.send("2probe")
            assert await ws.receive() == "3probe"
            await ws.send("5")
            await eio.send(poller.sid, "second try")
            assert await ws.receive() == "4second try"
            assert eio.transport(poller.sid) == "websocket"


async def test_upgraded_session_heartbeat_runs_on_the_websocket(autojump_clock: trio.testing.MockClock) -> None:
    """After the upgrade the pings come on the websocket at the session's ping_interval, and a
    missing pong still times the session out exactly on time."""
    eio, app = make_app(ping_interval=25, ping_timeout=20)
    recorder = Recorder(eio)
    async with eio, Poller.open(app) as poller:
        await poller.handshake()
        await trio.sleep(5)
        async with open_probe(app, poller.sid) as ws:
            await ws.send("2probe")
            assert await ws.receive() == "3probe"
            await ws.send("5")
            assert await ws.receive() == "2"
            assert trio.current_time() == 25
            await ws.send("3")
            assert await ws.receive() == "2"
            assert trio.current_time() == 50
            await ws.wait_closed()
            assert trio.current_time() == 70
    assert [reason for _, reason in recorder.disconnects] == ["ping timeout"]


async def test_upgrade_refused_when_upgrades_are_disallowed(autojump_clock: trio.testing.MockClock) -> None:
    """``allow_upgrades=False``: a websocket for a polling sid is refused; polling goes on."""
    eio, app = make_app(allow_upgrades=False)
    async with eio, Poller.open(app) as poller:
        await poller.handshake()
        with pytest.raises(WebSocketRejected) as info:
            async with open_probe(app, poller.sid):
                pass
        assert info.value.status_code == 400
        await eio.send(poller.sid, "still polling")
        assert await poller.get() == [message("still polling")]


async def test_a_message_racing_the_probe_is_delivered_exactly_once(autojump_clock: trio.testing.MockClock) -> None:
    """A message sent in the same instant as the probe releases the pending GET goes out once: either
    in that GET's response or on the websocket, never both, never neither. The trials stagger the
    probe by 0 to 5 scheduler turns, so they cover the GET winning, the probe winning, and the GET
    taking the message just before the probe releases it."""
    eio, app = make_app()
    async with eio, Poller.open(app) as poller:
        outcomes: set[str] = set()

        for trial in range(60):
            await poller.handshake()

            async def probe(ws: WebSocketSession, turns: int) -> None:
                for _ in range(turns):
                    await trio.lowlevel.checkpoint()
                await ws.send("2probe")

            async with trio.open_nursery() as nursery:
                pending = await start_request(nursery, poller.get_response)
                async with open_probe(app, poller.sid) as ws:
                    async with trio.open_nursery() as race:
                        race.start_soon(eio.send, poller.sid, "raced")
                        race.start_soon(probe, ws, trial % 6)
                    assert await ws.receive() == "3probe"
                    response = await pending.result()
                    via_get = [p.data for p in decode_payload(response.text) if p.type is PacketType.MESSAGE]
                    await ws.send("5")
                    await eio.send(poller.sid, "end")
                    via_websocket = []
                    while (frame := await ws.receive()) != "4end":
                        via_websocket.append(frame)
                    assert via_get + via_websocket in (["raced"], ["4raced"]), (via_get, via_websocket)
                    assert (via_get == ["raced"]) != (via_websocket == ["4raced"])
                    outcomes.add(f"{'get' if via_get else 'websocket'} {response.text}")
            await eio.disconnect(poller.sid)
        assert outcomes == {"get 4raced", "websocket 6"}


async def test_websocket_only_session_cannot_be_upgraded_or_polled(autojump_clock: trio.testing.MockClock) -> None:
    """A websocket-only session has nothing to upgrade: another websocket with its sid is accepted
    and closed (as by the reference server), and polling requests with its sid get 400; the session
    is unharmed."""
    eio, app = make_app()
    async with eio, open_websocket(app) as ws, Poller.open(app) as poller:
        poller.sid = (await ws_handshake(ws))["sid"]
        async with open_probe(app, poller.sid) as second:
            assert await second.wait_closed() == 1000
        assert (await poller.get_response()).status_code == 400
        assert (await poller.post_response("4x")).status_code == 400
        await eio.send(poller.sid, "fine")
        assert await ws.receive() == "4fine"
