"""examples/starlette_app.py and examples/quart_trio_app.py: Engine.IO beside a framework, on hypercorn's trio worker.

Each example mounts the same thing: the framework answers ``/``, ``/engine.io.min.js``,
``/api/clients`` and ``POST /api/broadcast`` (which calls ``eio.send`` from the
framework's request task), Engine.IO answers ``/engine.io/``, and ASGI lifespan
reaches both.
"""

from __future__ import annotations

from types import ModuleType

import httpx
import pytest
import trio

from examples import quart_trio_app, starlette_app
from trio_engineio import AsyncClient
from trio_engineio.testing import serve_hypercorn


def started(example: ModuleType) -> bool:
    """Whether the framework's own lifespan startup ran (and its shutdown did not yet)."""
    if example is starlette_app:
        return bool(starlette_app.starlette_app.state.started)
    return bool(quart_trio_app.quart_app.config["STARTED"])


async def wait_for_clients(http: httpx.AsyncClient, expected: list[str]) -> None:
    """Poll ``/api/clients`` until it lists ``expected`` (the disconnect handler runs after the client left)."""
    with trio.fail_after(5):
        # What the framework's HTTP API reports has no event to wait on: poll it, with a deadline.
        while (await http.get("/api/clients")).json()["clients"] != expected:  # noqa: ASYNC110
            await trio.sleep(0.01)


@pytest.mark.parametrize("example", [starlette_app, quart_trio_app], ids=["starlette", "quart-trio"])
@pytest.mark.parametrize("transport", [None, "polling"])
async def test_engineio_and_the_framework_share_one_app(example: ModuleType, transport: str | None) -> None:
    async with serve_hypercorn(example.app) as url, httpx.AsyncClient(base_url=url) as http:
        assert started(example)
        page = await http.get("/")
        assert page.status_code == 200
        assert '<script src="/engine.io.min.js">' in page.text
        bundle = await http.get("/engine.io.min.js")
        assert bundle.status_code == 200
        assert bundle.headers["content-type"].startswith("application/javascript")
        assert (await http.get("/no/such/page")).status_code == 404
        assert (await http.get("/api/clients")).json() == {"started": True, "clients": []}

        async with AsyncClient() as client:
            await client.connect(url, transports=[transport] if transport else None)
            assert client.sid is not None
            await client.send("through the shared app")
            with trio.fail_after(5):
                assert await client.receive() == "through the shared app"
            await wait_for_clients(http, [client.sid])

            answer = await http.post("/api/broadcast", content="from a framework route")
            assert answer.json() == {"sent": 1}
            with trio.fail_after(5):
                assert await client.receive() == "from a framework route"
        await wait_for_clients(http, [])
    assert not started(example)
