"""The ``trio-engineio`` command line, run as a user runs it: a subprocess on real sockets."""

from __future__ import annotations

import functools
import subprocess
import sys
from typing import TYPE_CHECKING

import httpx
import trio
from processes import free_port, wait_listening

from trio_engineio import ASGIApp, AsyncServer
from trio_engineio.__main__ import format_message
from trio_engineio.testing import serve_hypercorn

if TYPE_CHECKING:
    from conftest import OpenRawWebSocket


def _echo_app() -> ASGIApp:
    eio = AsyncServer()

    @eio.on("message")
    async def message(sid: str, data: object) -> None:
        await eio.send(sid, data)  # type: ignore[arg-type]

    return ASGIApp(eio)


def test_binary_is_shown_as_hex_and_json_as_json() -> None:
    """`connect` prints what it receives so that any payload is readable."""
    assert format_message(b"\x00\x01\xff") == "< [binary, 3 bytes] 00 01 ff"
    assert format_message("plain text") == "< plain text"
    assert format_message({"a": [1, "é"]}) == '< {"a": [1, "é"]}'


async def _run_connect(url: str, *arguments: str, lines: str) -> subprocess.CompletedProcess[bytes]:
    with trio.fail_after(30):
        return await trio.run_process(
            [sys.executable, "-m", "trio_engineio", "connect", url, "--linger", "0.3", *arguments],
            stdin=lines.encode(),
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )


async def test_connect_sends_typed_lines_and_prints_the_echoes() -> None:
    """Each line typed is a text message; what comes back is printed; end of input disconnects."""
    async with serve_hypercorn(_echo_app()) as url:
        for arguments in ((), ("--transport", "polling"), ("--transport", "websocket")):
            result = await _run_connect(url, *arguments, lines='hello\n{"n": 1}\n')
            assert result.returncode == 0, result.stderr
            assert result.stdout.decode().splitlines() == ["< hello", '< {"n": 1}']
            stderr = result.stderr.decode()
            assert "* connected" in stderr
            if arguments:
                assert f"transport {arguments[1]}" in stderr


async def test_connect_sends_headers_and_reports_a_refusal() -> None:
    """`--header` reaches the server (here the connect handler refuses without it); a refusal exits 1."""
    eio = AsyncServer()
    eio.on("connect", lambda sid, environ: environ.get("HTTP_X_TOKEN") == "secret")
    async with serve_hypercorn(ASGIApp(eio)) as url:
        refused = await _run_connect(url, lines="")
        assert refused.returncode == 1
        assert "could not connect" in refused.stderr.decode()
        accepted = await _run_connect(url, "--header", "X-Token: secret", lines="")
        assert accepted.returncode == 0, accepted.stderr


async def test_serve_closes_sessions_gracefully_on_sigterm(open_raw_websocket: OpenRawWebSocket) -> None:
    """On SIGTERM `serve` shuts the Engine.IO server down first: a connected client gets its CLOSE packet.

    (hypercorn alone would first wait for open connections, then cut them.)
    """
    port = free_port()
    command = [sys.executable, "-m", "trio_engineio", "serve", "--bind", f"127.0.0.1:{port}"]
    async with trio.open_nursery() as nursery:
        process = await nursery.start(functools.partial(trio.run_process, command, check=False))
        try:
            await wait_listening(port)
            async with open_raw_websocket(f"http://127.0.0.1:{port}/engine.io/") as ws:
                assert str(await ws.get_message()).startswith("0{")
                process.terminate()
                with trio.fail_after(10):
                    assert await ws.get_message() == "1"
        except BaseException:
            process.kill()
            raise
    assert process.returncode == 0  # and it exited by itself, gracefully


async def test_serve_runs_the_demo_under_hypercorns_trio_worker() -> None:
    """`trio-engineio serve` with no app serves the echo demo: its page and a working Engine.IO endpoint."""
    port = free_port()
    command = [sys.executable, "-m", "trio_engineio", "serve", "--bind", f"127.0.0.1:{port}"]
    async with trio.open_nursery() as nursery:
        process = await nursery.start(functools.partial(trio.run_process, command, check=False))
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                with trio.fail_after(20):
                    while True:
                        try:
                            page = await http.get("/")
                            break
                        except httpx.ConnectError:
                            await trio.sleep(0.05)  # a process starting up: nothing to wait on but its port
                assert "trio_engineio" in page.text
                handshake = await http.get("/engine.io/", params={"EIO": "4", "transport": "polling"})
                assert handshake.status_code == 200
                assert handshake.text.startswith('0{"sid":')
                sid = handshake.text.split('"sid":"', 1)[1].split('"', 1)[0]
                goodbye = await http.post(
                    "/engine.io/", params={"EIO": "4", "transport": "polling", "sid": sid}, content="1"
                )
                assert goodbye.text == "ok"  # a client close: shutdown has no session to wait for
        finally:
            process.terminate()
