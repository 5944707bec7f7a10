"""Served by an ASGI server that runs asyncio, the app says what to do instead of failing obscurely.

A new user's first mistakes, run as they make them: ``hypercorn app:app`` without
``--worker-class trio``, and uvicorn. Each used to start, then answer every request 500
with "the AsyncServer is not running: serve it through trio_engineio.ASGIApp" (which
the user does), or to fail lifespan with a RuntimeError or AttributeError from deep
inside Trio. Now lifespan startup fails with one plain sentence, logged once, and
without lifespan every request is answered 500 with that sentence.
"""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

import httpx
import trio
from processes import free_port, wait_listening

_REPO = Path(__file__).resolve().parents[2]
_APP = "tests.integration.wrong_loop_app:app"
_ADVICE = "start it with `hypercorn --worker-class trio module:app` (or `trio-engineio serve module:app`)"
_MESSAGE = "trio_engineio runs on Trio, but this ASGI server runs the application on asyncio: " + _ADVICE


async def _run_until_exit(command: list[str]) -> subprocess.CompletedProcess[bytes]:
    with trio.fail_after(30):
        return await trio.run_process(command, cwd=_REPO, capture_stdout=True, capture_stderr=True, check=False)


def _assert_no_trio_internals(output: str) -> None:
    assert "AttributeError" not in output, output
    assert "bad yield" not in output, output  # trio's trap reaching asyncio
    assert "is not running" not in output, output  # the old, misleading advice


async def test_hypercorn_without_the_trio_worker_stops_at_startup_and_says_why() -> None:
    """hypercorn's default worker is asyncio: lifespan startup fails with the advice, and hypercorn stops."""
    port = free_port()
    result = await _run_until_exit([sys.executable, "-m", "hypercorn", "--bind", f"127.0.0.1:{port}", _APP])
    output = result.stdout.decode() + result.stderr.decode()
    assert _MESSAGE in output, output
    _assert_no_trio_internals(output)


async def test_uvicorn_with_lifespan_stops_at_startup_and_says_why() -> None:
    """``uvicorn --lifespan on`` used to fail with ``AttributeError: 'RunContext' object has no attribute 'runner'``."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "--port", str(port), "--lifespan", "on", _APP]
    result = await _run_until_exit(command)
    output = result.stdout.decode() + result.stderr.decode()
    assert result.returncode != 0
    assert _MESSAGE in output, output
    assert "Application startup failed" in output
    _assert_no_trio_internals(output)


async def _websocket_handshake_answer(port: int, path: str) -> tuple[int, bytes]:
    """The status and body of the HTTP answer to a websocket handshake (a refused one has a body)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        answer = b""
        while True:
            head, separator, body = answer.partition(b"\r\n\r\n")
            if separator:
                lengths = [line for line in head.lower().split(b"\r\n") if line.startswith(b"content-length:")]
                if len(body) >= int(lengths[0].split(b":")[1]):
                    return int(head.split(b" ")[1]), body
            chunk = await stream.receive_some()
            assert chunk, answer
            answer += chunk


async def test_uvicorn_without_lifespan_answers_every_request_with_the_advice() -> None:
    """Polling and websocket requests get a 500 whose body is the advice; it is logged once, not per request."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "--port", str(port), "--lifespan", "off", _APP]
    async with trio.open_nursery() as nursery:
        process = await nursery.start(
            functools.partial(
                trio.run_process, command, cwd=_REPO, check=False, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
        )
        output = b""

        async def read_output() -> None:
            nonlocal output
            async for chunk in process.stdout:
                output += chunk

        nursery.start_soon(read_output)
        try:
            await wait_listening(port)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                for _ in range(2):
                    polling = await http.get("/engine.io/", params={"EIO": "4", "transport": "polling"})
                    assert polling.status_code == 500
                    assert polling.text == _MESSAGE
            status, body = await _websocket_handshake_answer(port, "/engine.io/?EIO=4&transport=websocket")
            assert (status, body.decode()) == (500, _MESSAGE)
        finally:
            process.terminate()
    text = output.decode()
    assert text.count(_MESSAGE) == 1, text
    _assert_no_trio_internals(text)
