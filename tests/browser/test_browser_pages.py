"""The echo page (what ``make run`` serves) and the latency page, used in Debian's headless Chromium (pages.mjs)."""

from __future__ import annotations

import re

from browser_runner import run_browser_script

from examples.echo.app import app as echo_app
from examples.latency.app import app as latency_app
from trio_engineio.testing import serve_hypercorn

MILLISECONDS = re.compile(r"\d+\.\d ms")


async def test_the_echo_and_latency_pages_work_in_a_browser() -> None:
    async with serve_hypercorn(echo_app) as echo_url, serve_hypercorn(latency_app) as latency_url:
        result = await run_browser_script("pages.mjs", {"echoUrl": echo_url, "latencyUrl": latency_url})

    echo = result["echo"]
    assert echo["pageErrors"] == []
    assert echo["transport"] == "websocket"
    assert echo["log"].splitlines() == ["connected", "echo: hello, echo"]
    assert len(echo["websockets"]) == 1

    for transport, page in result["latency"].items():
        assert page["pageErrors"] == []
        assert page["transport"] == transport
        assert int(page["count"]) >= 5
        assert page["bars"] == min(int(page["count"]), 60)  # the page keeps the last 60
        assert MILLISECONDS.fullmatch(page["last"]), page
        assert MILLISECONDS.fullmatch(page["average"]), page
        low, high = page["range"].split(" / ")
        assert MILLISECONDS.fullmatch(low), page
        assert MILLISECONDS.fullmatch(high), page
        assert float(low.split()[0]) <= float(high.split()[0])
    assert result["latency"]["polling"]["websockets"] == []
