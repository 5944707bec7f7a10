"""examples/echo (what ``make run`` serves) and examples/client/simple.py, on hypercorn's trio worker."""

from __future__ import annotations

import httpx
import pytest
from example_scripts import run_example_script

from examples.client import simple
from examples.echo.app import app
from trio_engineio.testing import serve_hypercorn


async def test_the_echo_page_and_the_client_bundle_are_served() -> None:
    async with serve_hypercorn(app) as url, httpx.AsyncClient(base_url=url) as http:
        page = await http.get("/")
        bundle = await http.get("/engine.io.min.js")
    assert page.status_code == 200
    assert '<script src="/engine.io.min.js">' in page.text
    assert bundle.status_code == 200
    assert bundle.headers["content-type"] == "application/javascript"
    assert b"Socket" in bundle.content


@pytest.mark.parametrize("transport", [None, "polling", "websocket"])
async def test_the_simple_client_gets_every_message_echoed(transport: str | None) -> None:
    async with serve_hypercorn(app) as url:
        replies = await simple.talk(url, [transport] if transport else None)
    # Text comes back as text, binary as bytes, and JSON text decoded, as python-engineio's client does.
    assert replies == simple.MESSAGES


async def test_the_simple_client_script_runs_against_the_echo_server() -> None:
    async with serve_hypercorn(app) as url:
        output = await run_example_script("client/simple.py", url, "--transport", "websocket")
    lines = output.splitlines()
    assert lines[0].startswith("connected: sid ")
    assert lines[0].endswith(", transport websocket")
    assert lines[1:] == [
        "received 'hello from Trio' (transport websocket)",
        "received b'\\x00\\x01\\x02 binary' (transport websocket)",
        "received {'json': ['is', 'fine']} (transport websocket)",
        "disconnected",
    ]
