"""Shutting down under plain ``hypercorn --worker-class trio``: SIGTERM with 100 sessions.

hypercorn stops accepting, gives open connections ``graceful_timeout`` seconds, cuts
them, and only then runs ASGI lifespan shutdown. ASGIApp closes every session as
soon as hypercorn starts shutting down, so every client is told (CLOSE), every
``disconnect`` handler runs once with ``"server disconnect"``, and the process exits
well within hypercorn's graceful wait.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
from pathlib import Path

import trio
from processes import free_port, wait_listening

from trio_engineio import AsyncClient

_REPO = Path(__file__).resolve().parents[2]
WEBSOCKET_CLIENTS = 50
POLLING_CLIENTS = 50


async def test_sigterm_tells_every_client_and_exits_promptly(tmp_path: Path) -> None:
    record = tmp_path / "disconnects.txt"
    port = free_port()
    command = [sys.executable, "-m", "hypercorn", "--worker-class", "trio", "--bind", f"127.0.0.1:{port}"]
    command += ["--graceful-timeout", "10", "--log-level", "INFO", "tests.integration.shutdown_app:app"]
    client_reasons: dict[str, str] = {}
    connected = 0
    all_connected = trio.Event()

    async def one_client(transports: list[str], streaming: bool) -> None:
        nonlocal connected
        # 100 handshakes at once on a busy machine can take longer than the default 5 s each.
        async with AsyncClient(request_timeout=20) as client:
            await client.connect(f"http://127.0.0.1:{port}", transports=transports)
            sid = client.sid
            assert sid is not None
            client.on("disconnect", lambda reason: client_reasons.__setitem__(sid, reason))
            if streaming:
                await client.send("stream")
            connected += 1
            if connected == WEBSOCKET_CLIENTS + POLLING_CLIENTS:
                all_connected.set()
            with trio.move_on_after(30):
                async for _ in client:  # reading until the server ends the session
                    pass

    log_path = tmp_path / "hypercorn.log"
    log = log_path.open("w")
    async with trio.open_nursery() as nursery:
        process = await nursery.start(
            functools.partial(
                trio.run_process,
                command,
                cwd=_REPO,
                env={**os.environ, "SHUTDOWN_APP_RECORD": str(record)},
                check=False,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        )
        await wait_listening(port)
        async with trio.open_nursery() as clients:
            for index in range(WEBSOCKET_CLIENTS):
                clients.start_soon(one_client, ["websocket"], index % 2 == 0)
            for _ in range(POLLING_CLIENTS):
                # Idle, so each has its GET pending ("mid-poll"). A polling client between two
                # polls cannot be told: hypercorn closes keep-alive connections at once when it
                # shuts down (docs/hypercorn.rst, "Shutting down").
                clients.start_soon(one_client, ["polling"], False)
            with trio.fail_after(20):
                await all_connected.wait()
            await trio.sleep(0.2)  # streams under way, every poll pending
            sent_at = trio.current_time()
            process.send_signal(signal.SIGTERM)
            with trio.fail_after(8):
                await process.wait()
            exited_after = trio.current_time() - sent_at
    log.close()
    print(f"exited {exited_after:.2f} s after SIGTERM; hypercorn's log:", log_path.read_text())  # shown on failure
    assert process.returncode == 0
    assert exited_after < 5, f"exit took {exited_after:.1f} s"  # graceful_timeout is 10
    assert len(client_reasons) == WEBSOCKET_CLIENTS + POLLING_CLIENTS
    assert set(client_reasons.values()) == {"server disconnect"}, client_reasons
    lines = [line.split(" ", 1) for line in record.read_text().splitlines()]
    handled = dict(lines)
    assert len(lines) == len(handled), "a disconnect handler ran twice"
    assert set(handled) == set(client_reasons)
    assert set(handled.values()) == {"server disconnect"}
