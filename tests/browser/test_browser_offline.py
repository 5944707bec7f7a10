"""The built-in demo and the echo example in headless Chromium with the network unreachable (offline.mjs).

``trio-engineio serve`` runs from a copy of the package outside this checkout, as
an installed package does: no ``tests/js/node_modules`` beside it to borrow the
JavaScript client from. The pages must get the client bundle the package ships,
connect and echo while every request to another host than 127.0.0.1 is aborted.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio
from browser_runner import run_browser_script
from processes import free_port, wait_listening

import trio_engineio
from examples.echo.app import app as echo_app
from trio_engineio.testing import serve_hypercorn

PACKAGE = Path(trio_engineio.__file__).resolve().parent


@asynccontextmanager
async def serve_demo_from_a_copy(tmp_path: Path) -> AsyncIterator[str]:
    """Copy the package to ``tmp_path/site``, run ``python -m trio_engineio serve`` from it; yield its URL."""
    site = tmp_path / "site"
    shutil.copytree(PACKAGE, site / "trio_engineio", ignore=shutil.ignore_patterns("__pycache__"))
    environment = {**os.environ, "PYTHONPATH": str(site)}
    where = await trio.run_process(
        [sys.executable, "-c", "import trio_engineio; print(trio_engineio.__file__)"],
        cwd=tmp_path,
        env=environment,
        capture_stdout=True,
    )
    assert Path(where.stdout.decode().strip()).parent == site / "trio_engineio"  # the copy, not this checkout
    port = free_port()
    with (tmp_path / "serve.log").open("wb") as output:
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "trio_engineio", "serve", "--bind", f"127.0.0.1:{port}"],
            cwd=tmp_path,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            await wait_listening(port)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            with trio.fail_after(15):
                await process.wait()


async def test_the_demo_and_the_echo_page_work_with_the_network_unreachable(tmp_path: Path) -> None:
    async with serve_demo_from_a_copy(tmp_path) as demo_url, serve_hypercorn(echo_app) as echo_url:
        result = await run_browser_script("offline.mjs", {"pages": {"demo": f"{demo_url}/", "echo": f"{echo_url}/"}})

    assert result["blocked"] == []  # nothing even tried to leave 127.0.0.1 (no CDN)
    for name, page in result["pages"].items():
        assert page["pageErrors"] == [], name
        assert page["failed"] == [], name
        assert page["errors"] == [], name  # no 404 either (a favicon, a source map)
        assert page["transport"] == "websocket", name
        assert page["log"].splitlines() == ["connected", "echo: offline hello"], name
        assert len(page["websockets"]) == 1, name
