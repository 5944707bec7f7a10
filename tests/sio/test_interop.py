"""Socket.IO interop under a real ``hypercorn --worker-class trio`` process.

``sio_app.py`` (python-socketio's server on trio_engineio) is served by hypercorn; three
clients run the same scenario against it, over polling, websocket and the upgrade:

- the node ``socket.io-client`` v4 (``tests/js/sio_client.mjs``),
- python-socketio's asyncio ``AsyncClient`` on aiohttp, in its own process
  (``sio_client_asyncio.py``),
- :class:`trio_engineio.socketio.AsyncClient` in this Trio process (``scenario_trio.py``).

Each run checks: connect with auth (refused and accepted), emit from the connect handler,
acks both ways (``call()`` and ``emit(callback=)`` on each side, text and binary), ``call()``
with and without timeout, ``session()``, rooms with and without ``skip_sid``, broadcast,
200 binary events with two attachments each in order, the transport, client and server
disconnect. Then one stalled client (it never polls again) must not hold up broadcasts to
the others: it is disconnected as a slow consumer once ``outbound_buffer_size`` packets wait.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from nodejs import JS_DIR, _require_tool, ensure_node_modules
from processes import free_port, wait_listening
from scenario_trio import expected_checks, run_scenario

from trio_engineio import socketio

_HERE = Path(__file__).resolve().parent
_TRANSPORTS: dict[str, list[str] | None] = {"upgrade": None, "polling": ["polling"], "websocket": ["websocket"]}
_SLOW_BOUND = 64
"""The server's ``outbound_buffer_size`` in these tests: the slow-consumer bound, in packets."""


@contextlib.asynccontextmanager
async def _serve() -> AsyncIterator[str]:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "hypercorn",
        "--worker-class",
        "trio",
        "--bind",
        f"127.0.0.1:{port}",
        "sio_app:app",
    ]
    env = {**os.environ, "SIO_OUTBOUND_BUFFER": str(_SLOW_BOUND), "SIO_CLOSE_TIMEOUT": "1"}
    async with trio.open_nursery() as nursery:
        process = await nursery.start(
            functools.partial(
                trio.run_process,
                command,
                cwd=_HERE,
                env=env,
                check=False,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        )
        output = bytearray()

        async def collect() -> None:
            assert process.stderr is not None
            async for chunk in process.stderr:
                output.extend(chunk)

        nursery.start_soon(collect)
        try:
            await wait_listening(port)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            with trio.move_on_after(5):
                await process.wait()
            process.kill()
        errors = [line for line in output.decode(errors="replace").splitlines() if "Traceback" in line]
        assert not errors, output.decode(errors="replace")


@pytest.fixture
async def server_url() -> AsyncIterator[str]:
    async with _serve() as url:
        yield url


async def _run_json(command: list[str], cwd: Path) -> dict[str, Any]:
    with trio.fail_after(30):
        completed = await trio.run_process(command, cwd=cwd, capture_stdout=True, capture_stderr=True, check=False)
    stdout = completed.stdout.decode(errors="replace")
    assert completed.returncode == 0, f"{command} failed:\n{stdout}\n{completed.stderr.decode(errors='replace')}"
    result: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    return result


async def test_every_client_and_transport(server_url: str) -> None:
    """All three clients over the three transport choices, run at once against one server."""
    await trio.to_thread.run_sync(ensure_node_modules)
    node = _require_tool("node")
    results: dict[tuple[str, str], dict[str, Any]] = {}

    async def run(client: str, name: str) -> None:
        transports = _TRANSPORTS[name]
        if client == "node":
            command = [node, str(JS_DIR / "sio_client.mjs"), server_url, json.dumps(transports)]
            results[client, name] = await _run_json(command, JS_DIR)
        elif client == "asyncio":
            command = [sys.executable, str(_HERE / "sio_client_asyncio.py"), server_url, json.dumps(transports)]
            results[client, name] = await _run_json(command, _HERE)
        else:
            results[client, name] = await run_scenario(server_url, transports)

    async with trio.open_nursery() as nursery:
        for client in ("node", "asyncio", "trio"):
            for name in _TRANSPORTS:
                nursery.start_soon(run, client, name)

    wording = {"node": "io server disconnect", "asyncio": "server disconnect", "trio": "server disconnect"}
    failures = {}
    for (client, name), checks in sorted(results.items()):
        # python-engineio's asyncio client closes its websocket before it has written the
        # DISCONNECT packet its disconnect() queued: the server sees the transport close. So
        # does python-socketio's own server under uvicorn (checked by hand, 5 of 5 runs).
        seen = "transport close" if client == "asyncio" and name != "polling" else "client disconnect"
        expected = expected_checks(_TRANSPORTS[name], server_disconnect=wording[client], client_disconnect=seen)
        wrong = {key: (checks.get(key), value) for key, value in expected.items() if checks.get(key) != value}
        if wrong:
            failures[f"{client}/{name}"] = wrong
    assert not failures, failures


async def _stalled_polling_client(url: str) -> str:
    """Connect by polling to namespace '/', then never poll again; return the Socket.IO sid."""
    async with httpx.AsyncClient(base_url=url) as http:
        opened = await http.get("/socket.io/", params={"EIO": "4", "transport": "polling"})
        eio_sid = json.loads(opened.text[1:])["sid"]
        params = {"EIO": "4", "transport": "polling", "sid": eio_sid}
        await http.post("/socket.io/", params=params, content='40{"token":"secret","user":"stalled"}')
        answer = await http.get("/socket.io/", params=params)
        # The connect handler's "welcome" comes first, then CONNECT ("40{sid}").
        connect = [packet for packet in answer.text.split("\x1e") if packet.startswith("40")]
        assert connect, answer.text
        return str(json.loads(connect[0][2:])["sid"])


class _RawWebSocket:
    """Just enough of a websocket client to connect and then never read again."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffered = b""

    async def _read_exactly(self, size: int) -> bytes:
        while len(self.buffered) < size:
            chunk = await self.stream.receive_some(4096)
            assert chunk, "the server closed the connection"
            self.buffered += chunk
        data, self.buffered = self.buffered[:size], self.buffered[size:]
        return data

    async def receive_text(self) -> str:
        header = await self._read_exactly(2)
        length = header[1] & 0x7F
        if length == 126:
            length = int.from_bytes(await self._read_exactly(2), "big")
        return (await self._read_exactly(length)).decode()

    async def send_text(self, text: str) -> None:
        payload = text.encode()
        assert len(payload) < 126
        mask = os.urandom(4)
        masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
        await self.stream.send_all(bytes([0x81, 0x80 | len(payload)]) + mask + masked)


async def _stalled_websocket_client(port: int) -> tuple[trio.SocketStream, str]:
    """Connect by websocket to namespace '/' with a 4 KB receive buffer, then never read again."""
    sock = trio.socket.socket()
    sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_RCVBUF, 4096)
    await sock.connect(("127.0.0.1", port))
    stream = trio.SocketStream(sock)
    key = base64.b64encode(os.urandom(16)).decode()
    await stream.send_all(
        (
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    websocket = _RawWebSocket(stream)
    while b"\r\n\r\n" not in websocket.buffered:
        websocket.buffered += await stream.receive_some(4096)
    head, _, websocket.buffered = websocket.buffered.partition(b"\r\n\r\n")
    assert b" 101 " in head.split(b"\r\n", 1)[0], head
    assert (await websocket.receive_text()).startswith("0{")
    await websocket.send_text('40{"token":"secret","user":"stalled"}')
    while not (frame := await websocket.receive_text()).startswith("40"):
        pass  # the connect handler's "welcome" comes before CONNECT
    return stream, str(json.loads(frame[2:])["sid"])


@pytest.mark.parametrize("transport", ["polling", "websocket"])
async def test_stalled_client_does_not_hold_up_broadcasts(server_url: str, transport: str) -> None:
    """Broadcasts never wait on a client that stopped reading; it is dropped at the bound.

    The polling client stops polling; the websocket client stops reading its socket, so the
    server's writes to it stall once the kernel's buffers are full (the events are large enough
    to get there).
    """
    # Over websocket the kernel takes up to ~4 MB for the stalled client before the server's
    # writes to it stall: 192 events of 40 KB get past that. They are paced (2 ms apart) so that
    # the watcher, which parses them in Python, keeps up: a burst that outruns a reader by more
    # than outbound_buffer_size packets drops that reader too (the policy's trade-off).
    size, pause = (1000, 0.0) if transport == "polling" else (40_000, 0.002)
    rounds = 3 * _SLOW_BOUND
    async with contextlib.AsyncExitStack() as stack:
        if transport == "polling":
            stalled_sid = await _stalled_polling_client(server_url)
        else:
            stream, stalled_sid = await _stalled_websocket_client(int(server_url.rsplit(":", 1)[1]))
            await stack.enter_async_context(stream)
        watcher = await stack.enter_async_context(socketio.AsyncClient(reconnection=False))
        bursts: list[int] = []
        reasons: list[str] = []
        got_all = trio.Event()
        stalled_left = trio.Event()

        @watcher.event
        def burst(data: dict[str, Any]) -> None:
            bursts.append(data["i"])
            if len(bursts) == rounds:
                got_all.set()

        @watcher.event
        def left(data: dict[str, Any]) -> None:
            if data["sid"] == stalled_sid:
                reasons.append(data["reason"])
                stalled_left.set()

        await watcher.connect(server_url, auth={"token": "secret", "user": "watcher"}, transports=["websocket"])
        elapsed = await watcher.call("broadcast_burst", {"n": rounds, "size": size, "pause": pause}, timeout=20)
        with trio.fail_after(10):
            await got_all.wait()
        assert bursts == list(range(rounds))
        # The broadcasts took no longer than queueing them (and the pauses), where waiting on the
        # stalled client would take until its ping timeout (25 + 20 s).
        assert elapsed < rounds * pause + 1, elapsed
        with trio.fail_after(10):
            await stalled_left.wait()
        assert reasons == ["server disconnect"]
