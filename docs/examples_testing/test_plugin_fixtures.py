import httpx
import trio
import trio.testing

from trio_engineio import AsyncClient
from trio_engineio.testing import BASE_URL


async def test_in_memory_client(engineio_client: AsyncClient, autojump_clock: trio.testing.MockClock) -> None:
    await engineio_client.connect(BASE_URL)
    await engineio_client.send({"op": "subscribe"})
    assert await engineio_client.receive() == {"op": "subscribe"}


async def test_in_memory_http(engineio_http: httpx.AsyncClient, autojump_clock: trio.testing.MockClock) -> None:
    response = await engineio_http.get("/engine.io/", params={"EIO": "4", "transport": "polling"})
    assert response.status_code == 200
    assert response.text.startswith('0{"sid":')


async def test_real_sockets(engineio_url: str) -> None:  # no autojump_clock with real sockets
    async with AsyncClient() as client:
        await client.connect(engineio_url, transports=["websocket"])
        await client.send("over TCP")
        assert await client.receive() == "over TCP"
