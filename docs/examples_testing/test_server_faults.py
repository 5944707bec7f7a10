import trio
import trio.testing
from echo_app import create_app

from trio_engineio import CloseReason
from trio_engineio.testing import BASE_URL, InMemoryWebSocketConnector, SilentServer, open_client, open_lifespan


async def test_a_server_that_stops_pinging(autojump_clock: trio.testing.MockClock) -> None:
    reasons: list[str] = []
    async with open_client(SilentServer(ping_interval=25, ping_timeout=20)) as client:
        client.on("disconnect", reasons.append)
        await client.connect(BASE_URL, transports=["websocket"])
        await client.wait()
        assert trio.current_time() == 25 + 20  # after the OPEN packet, nothing came
    assert reasons == [CloseReason.PING_TIMEOUT]


async def test_a_network_partition(autojump_clock: trio.testing.MockClock) -> None:
    app = create_app(ping_interval=25, ping_timeout=20)
    server_saw: list[tuple[str, float]] = []
    app.engineio_server.on("disconnect", lambda sid, reason: server_saw.append((reason, trio.current_time())))
    connector = InMemoryWebSocketConnector(app)
    async with open_lifespan(app), open_client(app, websocket_connector=connector) as client:
        await client.connect(BASE_URL, transports=["websocket"])
        await trio.sleep(30)  # the PING at 25 s was answered
        connector.partition()
        await client.wait()
        # The client heard last at 25 s: it gives up at 25 + pingInterval + pingTimeout.
        assert trio.current_time() == 70
    # The server's PING at 50 s went unanswered: it gave up at 50 + pingTimeout.
    assert server_saw == [("ping timeout", 70)]
