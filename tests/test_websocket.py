"""The websocket transport of the server (websocket-only sessions), in memory, on virtual time.

Spec references are to the Engine.IO v4 protocol (https://socket.io/docs/v4/engine-io-protocol/).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import pytest
import trio
import trio.testing
from server_helpers import Recorder, make_app, ws_handshake

from trio_engineio.testing import WebSocketClosed, WebSocketRejected, open_websocket

WEBSOCKET = {"EIO": "4", "transport": "websocket"}


async def test_websocket_only_handshake(autojump_clock: trio.testing.MockClock) -> None:
    """spec: the server MUST respond with an OPEN packet (here the first message); a websocket-only
    session offers no upgrades."""
    eio, app = make_app()
    recorder = Recorder(eio)
    async with eio, open_websocket(app) as ws:
        opened = await ws_handshake(ws)
        assert set(opened) == {"sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"}
        assert opened["upgrades"] == []
        assert (opened["pingInterval"], opened["pingTimeout"], opened["maxPayload"]) == (25000, 20000, 1_000_000)
        assert recorder.connects == [opened["sid"]]
        assert eio.transport(opened["sid"]) == "websocket"


async def test_text_and_binary_both_ways(autojump_clock: trio.testing.MockClock) -> None:
    """spec (v4): text messages are ``4<text>`` text frames; binary messages are raw binary frames
    with no type byte, in both directions."""
    eio, app = make_app()
    recorder = Recorder(eio)
    async with eio, open_websocket(app) as ws:
        sid = (await ws_handshake(ws))["sid"]
        await ws.send("4héllo")
        await ws.send(b"\x04\x00\xff")
        await eio.send(sid, "wörld")
        await eio.send(sid, b"\x04\x01")
        assert await ws.receive() == "4wörld"
        assert await ws.receive() == b"\x04\x01"
        await trio.testing.wait_all_tasks_blocked()
    assert recorder.messages == [(sid, "héllo"), (sid, b"\x04\x00\xff")]


# -- heartbeat --------------------------------------------------------------------------------


async def test_ping_every_ping_interval_and_pong_resets_from_its_instant(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """spec: the server sends PING every pingInterval; the next interval counts from the PONG."""
    eio, app = make_app(ping_interval=25, ping_timeout=20)
    recorder = Recorder(eio)
    async with eio, open_websocket(app) as ws:
        await ws_handshake(ws)
        assert await ws.receive() == "2"
        assert trio.current_time() == 25
        await trio.sleep(3)
        await ws.send("3")
        assert await ws.receive() == "2"
        assert trio.current_time() == 28 + 25
        await trio.sleep(19.5)  # just inside the ping timeout
        await ws.send("3")
        assert await ws.receive() == "2"
        assert trio.current_time() == 53 + 19.5 + 25
    assert recorder.disconnects[0][1] == "transport close"


async def test_ping_timeout_is_exactly_on_time(autojump_clock: trio.testing.MockClock) -> None:
    """spec: without a PONG within pingTimeout of a PING the server SHOULD consider the connection
    closed: reason 'ping timeout', at exactly ping_interval + ping_timeout."""
    eio, app = make_app(ping_interval=25, ping_timeout=20)
    closed_at: list[tuple[float, str]] = []
    eio.on("disconnect", lambda sid, reason: closed_at.append((trio.current_time(), reason)))
    async with eio, open_websocket(app) as ws:
        sid = (await ws_handshake(ws))["sid"]
        assert await ws.receive() == "2"
        assert trio.current_time() == 25
        with pytest.raises(WebSocketClosed):
            await ws.receive()
        assert trio.current_time() == 45
        assert closed_at == [(45, "ping timeout")]
        await trio.testing.wait_all_tasks_blocked()
        assert sid not in eio.sockets


async def test_ping_timeout_after_a_late_pong(autojump_clock: trio.testing.MockClock) -> None:
    """The timeout is measured from the latest PING: after a PONG at 30, the next PING is at 55
    and the session times out at 75."""
    eio, app = make_app(ping_interval=25, ping_timeout=20)
    closed_at: list[tuple[float, str]] = []
    eio.on("disconnect", lambda sid, reason: closed_at.append((trio.current_time(), reason)))
    async with eio, open_websocket(app) as ws:
        await ws_handshake(ws)
        assert await ws.receive() == "2"
        await trio.sleep(5)
        await ws.send("3")
        assert await ws.receive() == "2"
        assert trio.current_time() == 55
        await ws.wait_closed()
    assert closed_at == [(75, "ping timeout")]


async def test_messages_do_not_replace_pongs(autojump_clock: trio.testing.MockClock) -> None:
    """Only a PONG answers a PING: a chatty client that never pongs still times out."""
    eio, app = make_app(ping_interval=10, ping_timeout=5)
    recorder = Recorder(eio)
    async with eio, open_websocket(app) as ws:
        await ws_handshake(ws)
        for _ in range(14):
            await trio.sleep(1)
            await ws.send("4still here")
        await ws.wait_closed()
        assert trio.current_time() == 15
    assert recorder.disconnects[0][1] == "ping timeout"


async def test_client_ping_closes_the_session(autojump_clock: trio.testing.MockClock) -> None:
    """spec (v4): the server sends the pings; a client PING is a protocol error that closes the session."""
    eio, app = make_app()
    recorder = Recorder(eio)
    async with eio, open_websocket(app) as ws:
        sid = (await ws_handshake(ws))["sid"]
        await ws.send("2")
        await ws.wait_closed()
        await recorder.disconnected.wait()
        assert recorder.disconnects == [(sid, "transport error")]
        assert trio.current_time() == 0


async def test_client_close_packet(autojump_clock: trio.testing.MockClock) -> None:
    """spec: a client CLOSE ends the session; the disconnect reason is 'client disconnect'."""
    eio, app = make_app()
    recorder = Recorder(eio)
    async with eio, open_websocket(app) as ws:
        sid = (await ws_handshake(ws))["sid"]
        await ws.send("1")
        await ws.wait_closed()
        await recorder.disconnected.wait()
    assert recorder.disconnects == [(sid, "client disconnect")]


async def test_client_going_away_is_transport_close(autojump_clock: trio.testing.MockClock) -> None:
    """A websocket that closes without a CLOSE packet ends the session with 'transport close'."""
    eio, app = make_app()
    recorder = Recorder(eio)
    async with eio:
        async with open_websocket(app) as ws:
            sid = (await ws_handshake(ws))["sid"]
        await recorder.disconnected.wait()
        assert recorder.disconnects == [(sid, "transport close")]
        assert trio.current_time() == 0
        await trio.testing.wait_all_tasks_blocked()
        assert list(eio.sockets) == []


# -- limits and bad frames ----------------------------------------------------------------------


@pytest.mark.parametrize("frame", ["4" + "x" * 100, "4" + "é" * 50, b"\x00" * 101])
async def test_message_over_max_http_buffer_size_closes_with_1009(
    autojump_clock: trio.testing.MockClock, frame: str | bytes
) -> None:
    """A websocket message over max_http_buffer_size (in bytes) closes the socket with 1009;
    the disconnect reason is 'transport error'."""
    eio, app = make_app(max_http_buffer_size=100)
    recorder = Recorder(eio)
    async with eio, open_websocket(app) as ws:
        sid = (await ws_handshake(ws))["sid"]
        await ws.send("4" + "x" * 99)  # exactly at the limit: fine
        await ws.send(b"\x00" * 100)
        await ws.send(frame)
        assert await ws.wait_closed() == 1009
        await recorder.disconnected.wait()
    assert recorder.disconnects == [(sid, "transport error")]
    assert [len(data) for _, data in recorder.messages] == [99, 100]


@pytest.mark.parametrize("frame", ["", "9x", "x4hello", "0", "5"])
async def test_an_invalid_frame_closes_the_session(autojump_clock: trio.testing.MockClock, frame: str) -> None:
    """An undecodable or out-of-place packet on an established websocket closes the session
    (transport error); nothing reaches the message handler."""
    eio, app = make_app()
    recorder = Recorder(eio)
    async with eio, open_websocket(app) as ws:
        sid = (await ws_handshake(ws))["sid"]
        await ws.send(frame)
        await ws.wait_closed()
        await recorder.disconnected.wait()
    assert recorder.disconnects == [(sid, "transport error")]
    assert recorder.messages == []


# -- refused handshakes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "query", "headers", "code"),
    [
        ({"cors_allowed_origins": ["https://good.example"]}, WEBSOCKET, {"Origin": "https://evil.example"}, 4),
        ({}, WEBSOCKET, {"Origin": "http://elsewhere.example"}, 4),
        ({}, {**WEBSOCKET, "sid": "no-such-sid"}, {}, 1),
        ({}, {"EIO": "4", "transport": "carrier-pigeon"}, {}, 0),
        ({"transports": ["polling"]}, WEBSOCKET, {}, 0),
        ({}, {"EIO": "4", "transport": "polling"}, {}, 3),
        ({}, {"EIO": "3", "transport": "websocket"}, {}, 5),
    ],
)
async def test_refused_websocket_is_denied_before_accept(
    autojump_clock: trio.testing.MockClock,
    options: dict[str, Any],
    query: dict[str, str],
    headers: dict[str, str],
    code: int,
) -> None:
    """A websocket handshake that cannot be served (refused Origin, unknown sid, bad query) is denied
    before accept, with 400 and the JSON error body (ASGI websocket denial response); spec: with a
    mandatory query parameter missing the server MUST close the websocket."""
    eio, app = make_app(**options)
    recorder = Recorder(eio)
    async with eio:
        with pytest.raises(WebSocketRejected) as info:
            async with open_websocket(app, query=query, headers=headers):
                pass
        assert info.value.status_code == 400
        assert isinstance(info.value.error_body, dict)
        assert info.value.error_body["code"] == code
        assert recorder.connects == []
        assert list(eio.sockets) == []


async def test_allowed_origin_is_accepted(autojump_clock: trio.testing.MockClock) -> None:
    """The same Origin rules as polling: the server's own origin is allowed by default."""
    eio, app = make_app()
    async with eio, open_websocket(app, headers={"Origin": "http://testserver"}) as ws:
        assert (await ws_handshake(ws))["upgrades"] == []


async def test_refusal_without_the_denial_extension_is_a_close_before_accept(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Where the ASGI server offers no denial-response extension, a refusal is a close before accept."""
    eio, app = make_app()
    sent: list[MutableMapping[str, Any]] = []
    incoming = [{"type": "websocket.connect"}]

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope: dict[str, Any] = {
        "type": "websocket",
        "path": "/engine.io/",
        "query_string": b"EIO=4&transport=websocket&sid=nope",
        "headers": [(b"host", b"testserver")],
    }
    async with eio:
        await app(scope, receive, send)
    assert [message["type"] for message in sent] == ["websocket.close"]


# -- many messages ---------------------------------------------------------------------------------


async def test_many_sends_from_several_tasks_arrive_in_order_none_lost(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """1,000 sends from 5 tasks through a small outbound buffer: every message arrives once,
    each task's messages in the order it sent them."""
    eio, app = make_app(outbound_buffer_size=4)
    async with eio, open_websocket(app) as ws:
        sid = (await ws_handshake(ws))["sid"]

        async def sender(task: int) -> None:
            for i in range(200):
                await eio.send(sid, f"{task}:{i}")
                if i % 7 == 0:
                    await trio.lowlevel.checkpoint()

        received: list[str] = []
        async with trio.open_nursery() as nursery:
            for task in range(5):
                nursery.start_soon(sender, task)
            while len(received) < 1000:
                frame = await ws.receive()
                assert isinstance(frame, str)
                received.append(frame[1:])
        assert sorted(received) == sorted(f"{t}:{i}" for t in range(5) for i in range(200))
        for task in range(5):
            mine = [int(r.split(":")[1]) for r in received if r.startswith(f"{task}:")]
            assert mine == list(range(200))


async def test_many_client_messages_are_handled_in_order(autojump_clock: trio.testing.MockClock) -> None:
    """1,000 client messages reach the handler once each, in order."""
    eio, app = make_app()
    recorder = Recorder(eio)
    async with eio, open_websocket(app) as ws:
        await ws_handshake(ws)
        for i in range(1000):
            await ws.send(f"4{i}")
        await trio.testing.wait_all_tasks_blocked()
    assert [data for _, data in recorder.messages] == [str(i) for i in range(1000)]
