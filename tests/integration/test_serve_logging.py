"""Each log line of a served app printed once: ``make run``'s command, and ``trio-engineio serve``.

hypercorn gives its loggers a handler of their own and lets ``hypercorn.error``
propagate, so an app that also configures the root logger (``logging.basicConfig``)
used to print "Running on ..." and every hypercorn line twice. Each test runs the
server as a process, opens and closes one session, stops the server with SIGTERM
and counts the lines of its output.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import trio
from processes import free_port, wait_listening

REPOSITORY = Path(__file__).resolve().parents[2]

APP_WITH_BASIC_CONFIG = """
import logging

import trio_engineio

logging.basicConfig(level=logging.INFO)
eio = trio_engineio.AsyncServer(logger=True)
app = trio_engineio.ASGIApp(eio)
"""


async def _serve_one_session(command: list[str], cwd: Path, expected: str) -> tuple[str, str]:
    """Run ``command --bind 127.0.0.1:PORT``, open and close a polling session, stop it; its output and the sid.

    ``expected`` (formatted with ``sid``) is the line to wait for before stopping the server.
    """
    port = free_port()
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    environment.pop("PYTHONPATH", None)
    output = bytearray()
    changed = trio.Event()
    process = await trio.lowlevel.open_process(
        [*command, "--bind", f"127.0.0.1:{port}"],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=environment,
    )

    async def read_output() -> None:
        nonlocal changed
        assert process.stdout is not None
        async for chunk in process.stdout:
            output.extend(chunk)
            changed.set()
            changed = trio.Event()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read_output)
        try:
            await wait_listening(port)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                handshake = await http.get("/engine.io/", params={"EIO": "4", "transport": "polling"})
                sid = handshake.text.split('"sid":"', 1)[1].split('"', 1)[0]
                closed = await http.post(
                    "/engine.io/", params={"EIO": "4", "transport": "polling", "sid": sid}, content="1"
                )
                assert closed.text == "ok"
            with trio.fail_after(10):
                while expected.format(sid=sid).encode() not in output:
                    await changed.wait()
        finally:
            process.terminate()
            with trio.fail_after(15):
                await process.wait()
    return output.decode(), sid


def _count(text: str, fragment: str) -> int:
    return sum(fragment in line for line in text.splitlines())


async def test_make_run_prints_each_line_once() -> None:
    """``make run``: hypercorn's CLI serving examples/echo; its lines and the example's each appear once."""
    command = [sys.executable, "-m", "hypercorn", "--worker-class", "trio", "examples.echo.app:app"]
    text, sid = await _serve_one_session(command, REPOSITORY, "disconnect {sid}")
    assert _count(text, "Running on http://127.0.0.1:") == 1, text
    assert _count(text, f"connect {sid} from 127.0.0.1") == 1, text
    assert _count(text, f"session {sid} closed") == 1, text
    assert _count(text, f"disconnect {sid}: client disconnect") == 1, text


async def test_serve_prints_each_line_once_when_the_app_configures_logging(tmp_path: Path) -> None:
    """``trio-engineio serve`` of an app calling ``logging.basicConfig``: hypercorn's lines go through it, once."""
    (tmp_path / "basic_config_app.py").write_text(APP_WITH_BASIC_CONFIG)
    command = [sys.executable, "-m", "trio_engineio", "serve", "basic_config_app:app"]
    text, sid = await _serve_one_session(command, tmp_path, "session {sid} closed")
    assert _count(text, "Running on http://127.0.0.1:") == 1, text
    assert _count(text, '"GET /engine.io/ 1.1" 200') == 1, text  # the access log
    assert _count(text, f"session {sid} closed") == 1, text
