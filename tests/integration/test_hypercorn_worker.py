"""hypercorn's trio worker, as deployed: one client must never end the worker.

A real ``hypercorn --worker-class trio`` process serves
``tests/integration/crossing_close.py``; raw clients end their sessions with crossing
closes (see that module). Without our worker fixes the process dies with
``trio.BusyResourceError``; with them it serves every later connection.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
from crossing_close import cross_close, cross_close_raw
from processes import free_port, wait_listening

import trio_engineio
from trio_engineio import _hypercorn

_REPO = Path(__file__).resolve().parents[2]
_ROUNDS = 100
_CONCURRENT = 4


class _Worker:
    def __init__(self, process: trio.Process, url: str) -> None:
        self.process = process
        self.url = url
        self.stderr = b""

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


@contextlib.asynccontextmanager
async def _serve_worker(**env: str) -> AsyncIterator[_Worker]:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "hypercorn",
        "--worker-class",
        "trio",
        "--bind",
        f"127.0.0.1:{port}",
        "--log-level",
        "INFO",
        "tests.integration.crossing_close:app",
    ]
    async with trio.open_nursery() as nursery:
        process = await nursery.start(
            functools.partial(
                trio.run_process,
                command,
                cwd=_REPO,
                env={**os.environ, **env},
                check=False,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        )
        worker = _Worker(process, f"http://127.0.0.1:{port}")

        async def collect_stderr() -> None:
            assert process.stderr is not None
            async for chunk in process.stderr:
                worker.stderr += chunk

        nursery.start_soon(collect_stderr)
        try:
            await wait_listening(port)
            yield worker
        finally:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            with trio.fail_after(10):
                await process.wait()


async def _crossing_rounds(worker: _Worker, rounds: int, *, upgrade: bool = False, raw: bool = False) -> int:
    """Run rounds of crossing closes until ``rounds`` or the worker dies; return the rounds completed."""
    for completed in range(rounds):
        if not worker.alive:
            return completed
        try:
            with trio.fail_after(20):
                async with trio.open_nursery() as nursery:
                    for _ in range(_CONCURRENT):
                        if raw:
                            nursery.start_soon(cross_close_raw, worker.url)
                        else:
                            nursery.start_soon(functools.partial(cross_close, worker.url, upgrade=upgrade))
        except Exception:  # a dying worker resets connections: did it die?
            with trio.move_on_after(5):
                await worker.process.wait()
            if worker.alive:
                raise
            return completed
    return rounds


async def _echo_works(url: str, transports: list[str]) -> None:
    async with trio_engineio.AsyncClient() as client:
        with trio.fail_after(10):
            await client.connect(url, transports=transports)
            await client.send("still serving")
            assert await client.receive() == "still serving"
            await client.disconnect()


async def test_crossing_closes_kill_an_unfixed_worker() -> None:
    """The reproducer reproduces: without the fixes the worker dies with BusyResourceError.

    If this starts failing, hypercorn's close path changed: re-check docs/hypercorn.rst
    and the version gate in trio_engineio/_hypercorn.py.
    """
    async with _serve_worker(CROSSING_CLOSE_MODE="unfixed") as worker:
        completed = await _crossing_rounds(worker, 100, raw=True)
        with trio.fail_after(10):
            await worker.process.wait()
    stderr = worker.stderr.decode(errors="replace")
    assert completed < 100, "the worker survived 400 crossing closes without the fixes"
    assert "BusyResourceError" in stderr, stderr[-3000:]
    assert "NOT active: turned off" in stderr


@pytest.mark.parametrize("fast_path", ["1", "0"], ids=["fast-path", "stock-path"])
@pytest.mark.parametrize("upgrade", [False, True], ids=["websocket", "upgraded"])
async def test_with_the_fixes_the_worker_survives_crossing_closes(upgrade: bool, fast_path: str) -> None:
    """100 rounds of 4 crossing closes in a row: the worker lives and serves every later connection."""
    async with _serve_worker(TRIO_ENGINEIO_HYPERCORN_FAST_PATH=fast_path) as worker:
        assert await _crossing_rounds(worker, _ROUNDS, upgrade=upgrade) == _ROUNDS
        assert await _crossing_rounds(worker, 10, raw=True) == 10
        assert worker.alive
        await _echo_works(worker.url, ["websocket"])
        await _echo_works(worker.url, ["polling", "websocket"])
    stderr = worker.stderr.decode(errors="replace")
    assert "close-race and connection-containment fixes active" in stderr
    assert "BusyResourceError" not in stderr
    assert "Traceback" not in stderr


async def test_containment_alone_keeps_the_worker_alive() -> None:
    """The sweep: with the close race left in place, one connection's failure ends that connection only."""
    async with _serve_worker(CROSSING_CLOSE_MODE="contained") as worker:
        assert await _crossing_rounds(worker, 25, raw=True) == 25
        assert worker.alive
        await _echo_works(worker.url, ["websocket"])
    stderr = worker.stderr.decode(errors="replace")
    # The race still happens; it is logged and contained to its connection.
    assert "one connection failed inside hypercorn's trio worker; the worker goes on" in stderr
    assert "BusyResourceError" in stderr


async def test_the_environment_switch_turns_the_fixes_off() -> None:
    async with _serve_worker(TRIO_ENGINEIO_HYPERCORN_FIXES="0") as worker:
        await _echo_works(worker.url, ["websocket"])
    assert "hypercorn trio worker fixes NOT active: turned off" in worker.stderr.decode()


def test_the_fixes_apply_to_the_installed_hypercorn() -> None:
    """Fails loudly when hypercorn changes so that the fixes no longer apply.

    Then: read hypercorn's new ``trio/tcp_server.py``, re-run the reproducer without the
    fixes, and update the gate (``VERIFIED_VERSIONS``, ``_close_is_patchable``).
    """
    import hypercorn.trio.tcp_server as tcp_server

    version = _hypercorn.hypercorn_version()
    assert version is not None
    assert version.startswith(_hypercorn.VERIFIED_VERSIONS), f"hypercorn {version} is not verified"
    assert _hypercorn._close_is_patchable(tcp_server.TCPServer) is None
    was_active = _hypercorn.worker_fixes.active
    _hypercorn.uninstall_worker_fixes()
    try:
        assert tcp_server.TCPServer._close.__module__ == "hypercorn.trio.tcp_server"  # hypercorn's own again
        state = _hypercorn.install_worker_fixes(True, logging.getLogger("test"))
        assert state.active
        assert tcp_server.TCPServer._close is _hypercorn._locked_close
        assert tcp_server.TCPServer.run is _hypercorn._contained_run
    finally:
        if not was_active:
            _hypercorn.uninstall_worker_fixes()


def test_an_unrecognised_tcp_server_is_left_alone() -> None:
    class ChangedTCPServer:
        def __init__(self) -> None:
            self.send_lock = None

        async def run(self) -> None:
            pass

        async def _close(self) -> None:
            pass  # no longer calls send_eof: our fix would not be the right one

    assert _hypercorn._close_is_patchable(ChangedTCPServer) is not None
