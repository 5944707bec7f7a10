from typing import Any

import pytest
import trio
import trio.testing
from echo_app import create_app

from trio_engineio.protocol import Packet, PacketType
from trio_engineio.testing import RawPollingClient, RawWebSocketClient, open_lifespan


def record_disconnects(app: Any) -> list[tuple[str, float]]:
    """The server's disconnect reasons, with the virtual instant of each."""
    seen: list[tuple[str, float]] = []
    app.engineio_server.on("disconnect", lambda sid, reason: seen.append((reason, trio.current_time())))
    return seen


async def test_a_client_that_stops_answering_pings(autojump_clock: trio.testing.MockClock) -> None:
    app = create_app(ping_interval=25, ping_timeout=20)
    disconnects = record_disconnects(app)
    async with open_lifespan(app), RawWebSocketClient.open(app) as ws:
        assert await ws.receive_packet() == Packet(PacketType.PING)  # at 25 s
        await ws.send_packet(Packet(PacketType.PONG))
        assert await ws.receive_packet() == Packet(PacketType.PING)  # at 50 s: no answer this time
        assert await ws.wait_closed() == 1000
    assert disconnects == [("ping timeout", 70)]


async def test_a_polling_client_that_stops_answering_pings(autojump_clock: trio.testing.MockClock) -> None:
    app = create_app(ping_interval=25, ping_timeout=20)
    disconnects = record_disconnects(app)
    async with open_lifespan(app), RawPollingClient.open(app) as poller:
        await poller.handshake()
        assert await poller.get() == [Packet(PacketType.PING)]  # at 25 s, never answered
        response = await poller.get_response()  # the server gives up at 45 s
        assert response.text == "1"  # a CLOSE packet
    assert disconnects == [("ping timeout", 45)]


async def test_a_client_that_aborts_a_poll(autojump_clock: trio.testing.MockClock) -> None:
    app = create_app()
    async with open_lifespan(app), RawPollingClient.open(app) as poller:
        await poller.handshake()
        async with trio.open_nursery() as nursery:
            pending = await poller.start_get(nursery)  # returns once the GET waits in the app
            pending.abort()  # the app is told http.disconnect
        assert await pending.response() is None
        await poller.post(Packet(PacketType.MESSAGE, "nothing was lost"))
        assert await poller.get() == [Packet(PacketType.MESSAGE, "nothing was lost")]


@pytest.mark.parametrize(("fault", "status"), [("post_oversize", 413), ("post_malformed", 400)])
async def test_a_polling_client_that_posts_garbage(
    autojump_clock: trio.testing.MockClock, fault: str, status: int
) -> None:
    app = create_app(max_http_buffer_size=1000)
    disconnects = record_disconnects(app)
    async with open_lifespan(app), RawPollingClient.open(app) as poller:
        await poller.handshake()
        response = await getattr(poller, fault)()  # maxPayload + 1 bytes, or "x"
        assert response.status_code == status
    assert disconnects == [("transport error", 0)]


@pytest.mark.parametrize(("fault", "close_code"), [("send_oversize", 1009), ("send_malformed", 1002)])
async def test_a_websocket_client_that_sends_garbage(
    autojump_clock: trio.testing.MockClock, fault: str, close_code: int
) -> None:
    app = create_app(max_http_buffer_size=1000)
    disconnects = record_disconnects(app)
    async with open_lifespan(app), RawWebSocketClient.open(app) as ws:
        await getattr(ws, fault)()
        assert await ws.wait_closed() == close_code
    assert disconnects == [("transport error", 0)]


async def test_a_client_that_vanishes_mid_upgrade(autojump_clock: trio.testing.MockClock) -> None:
    app = create_app()
    disconnects = record_disconnects(app)
    async with open_lifespan(app), RawPollingClient.open(app) as poller:
        await poller.handshake()
        async with poller.open_probe() as probe:  # 2probe sent, 3probe received
            await probe.vanish()  # the websocket drops, no UPGRADE, no close frame
        await poller.post(Packet(PacketType.MESSAGE, "still here"))
        assert await poller.get() == [Packet(PacketType.MESSAGE, "still here")]
        assert disconnects == []  # the session goes on polling
