import pytest
import trio
import trio.testing
from echo_app import create_app

from trio_engineio.testing import BASE_URL, open_client, open_lifespan


@pytest.mark.parametrize("transports", [["polling"], ["websocket"], None])
async def test_echo(autojump_clock: trio.testing.MockClock, transports: list[str] | None) -> None:
    app = create_app()
    async with open_lifespan(app), open_client(app) as client:
        await client.connect(BASE_URL, transports=transports)  # None: polling, then upgrade
        await client.send("hello")
        assert await client.receive() == "hello"
        await client.send(b"\x00\x01")
        assert await client.receive() == b"\x00\x01"


async def test_an_hour_of_heartbeats_in_virtual_time(autojump_clock: trio.testing.MockClock) -> None:
    app = create_app(ping_interval=25, ping_timeout=20)
    async with open_lifespan(app), open_client(app) as client:
        await client.connect(BASE_URL)
        start = trio.current_time()
        await trio.sleep(3600)  # virtual: 144 pings and pongs, no wall time
        assert trio.current_time() == start + 3600
        assert client.state == "connected"


async def test_a_hundred_messages_never_wait_on_the_clock(autojump_clock: trio.testing.MockClock) -> None:
    app = create_app()
    async with open_lifespan(app), open_client(app) as client:
        await client.connect(BASE_URL, transports=["websocket"])
        start = trio.current_time()
        for i in range(100):
            await client.send(str(i))
            assert await client.receive() == str(i)
        assert trio.current_time() == start  # nothing in memory sleeps
