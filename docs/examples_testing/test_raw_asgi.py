import trio
import trio.testing
from echo_app import create_app

from trio_engineio.testing import open_http_client, open_lifespan, open_websocket


async def test_raw_websocket_frames(autojump_clock: trio.testing.MockClock) -> None:
    app = create_app(ping_interval=25, ping_timeout=20)
    async with open_lifespan(app), open_websocket(app) as ws:
        assert str(await ws.receive()).startswith("0{")  # the OPEN packet
        await ws.send("4hello")
        assert await ws.receive() == "4hello"
        assert await ws.receive() == "2"  # PING, at 25 s
        assert trio.current_time() == 25
        assert await ws.wait_closed() == 1000  # not answered: closed at 45 s
        assert trio.current_time() == 45


async def test_raw_http(autojump_clock: trio.testing.MockClock) -> None:
    app = create_app()
    async with open_lifespan(app), open_http_client(app) as http:
        response = await http.get("/engine.io/", params={"EIO": "4", "transport": "bogus"})
        assert response.status_code == 400
        assert response.json() == {"code": 0, "message": "Transport unknown"}
