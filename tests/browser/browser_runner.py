"""Run a browser script of this directory (``chat.mjs``, ``pages.mjs``) and return its JSON result.

The scripts drive Debian's headless Chromium (``/usr/bin/chromium``, or ``$CHROMIUM``)
with playwright-core from ``tests/browser/node_modules``; ``make install`` installs
both, and this module runs ``npm ci`` here itself if the packages are missing.
No browser is ever downloaded.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import trio

HERE = Path(__file__).resolve().parent
ARTIFACTS = HERE / "artifacts"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
DEADLINE = 60
"""Seconds a script may run in all (the script's own watchdog fires 10 s earlier); each takes about 5."""


async def ensure_tools() -> str:
    """The ``node`` executable, once Chromium and playwright-core are there (``npm ci`` if needed)."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install -y chromium` (make install does it), or set CHROMIUM")
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("node and npm are needed to drive the browser (Node.js >= 20)")
    if not (HERE / "node_modules" / "playwright-core" / "package.json").is_file():
        with trio.fail_after(120):
            await trio.run_process([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=HERE)
    return node


async def run_browser_script(script: str, config: dict[str, Any]) -> dict[str, Any]:
    """Run ``node <script> <config as JSON>`` here; return the JSON object it printed last.

    Raises:
        AssertionError: the script failed (its output is in the message).
        trio.TooSlowError: it ran longer than :data:`DEADLINE` (it is killed).
    """
    node = await ensure_tools()
    config = {"chromium": str(CHROMIUM), "deadlineMs": (DEADLINE - 10) * 1000, **config}
    with trio.fail_after(DEADLINE):
        completed = await trio.run_process(
            [node, str(HERE / script), json.dumps(config)],
            cwd=HERE,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    stdout = completed.stdout.decode(errors="replace")
    stderr = completed.stderr.decode(errors="replace")
    assert completed.returncode == 0, f"{script} failed ({completed.returncode}):\n{stdout}\n{stderr}"
    result: dict[str, Any] = json.loads(stdout.splitlines()[-1])
    assert result["ok"] is True
    assert "Chrome/" in result["userAgent"]
    return result
