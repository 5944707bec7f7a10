"""examples/latency and examples/client/latency.py, on hypercorn's trio worker."""

from __future__ import annotations

import re

import httpx
import pytest
from example_scripts import run_example_script

from examples.client import latency as latency_client
from examples.latency.app import app
from trio_engineio.testing import serve_hypercorn

SUMMARY = re.compile(r"^(\d+) round trips: min ([\d.]+) ms, mean ([\d.]+) ms, max ([\d.]+) ms$")


async def test_the_page_is_served() -> None:
    async with serve_hypercorn(app) as url, httpx.AsyncClient(base_url=url) as http:
        page = await http.get("/")
        bundle = await http.get("/engine.io.min.js")
    assert page.status_code == 200
    assert 'socket.send("ping")' in page.text
    assert bundle.status_code == 200


@pytest.mark.parametrize("transport", ["polling", "websocket"])
async def test_the_client_measures_round_trips(transport: str) -> None:
    async with serve_hypercorn(app) as url:
        round_trips = await latency_client.run(url, count=5, pause=0, transports=[transport])
    assert len(round_trips) == 5
    assert all(0 < seconds < 5 for seconds in round_trips)


async def test_the_client_script_prints_each_pong_and_a_summary() -> None:
    async with serve_hypercorn(app) as url:
        output = await run_example_script("client/latency.py", url, "--count", "3", "--pause", "0")
    *pongs, summary = output.splitlines()
    assert len(pongs) == 3
    assert all(re.fullmatch(r"pong after [\d.]+ ms over (polling|websocket)", line) for line in pongs), pongs
    match = SUMMARY.match(summary)
    assert match is not None, summary
    count, low, mean, high = match.groups()
    assert count == "3"
    assert float(low) <= float(mean) <= float(high)


def test_the_summary_line() -> None:
    assert latency_client.summary([0.001, 0.002, 0.003]) == "3 round trips: min 1.00 ms, mean 2.00 ms, max 3.00 ms"
