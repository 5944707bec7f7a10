"""Drive the official JavaScript Engine.IO client and server from pytest-trio.

``tests/js/client.mjs`` runs one scenario of ``engine.io-client`` against a URL
and prints JSON events; ``tests/js/server.mjs`` runs an ``engine.io`` echo
server and logs JSON events.  See the headers of those scripts for the
scenarios, options and event shapes.

Typical use::

    async with open_js_server({"pingInterval": 200}) as server:
        ...  # point our Python client at server.url
        closed = await server.wait_for("close")

    events = await run_js_client(python_server_url, "echo", {"transports": ["polling"]})
    assert result_event(events)["ok"]
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

JS_DIR = Path(__file__).resolve().parent.parent / "js"
CLIENT_SCRIPT = JS_DIR / "client.mjs"
SERVER_SCRIPT = JS_DIR / "server.mjs"

JsEvent = dict[str, Any]
"""One decoded JSON line printed by client.mjs or server.mjs."""

# How long server.mjs gets to exit by itself once its stdin is closed, and
# again after SIGTERM, before it is killed.
_SHUTDOWN_GRACE = 3.0


class NodeUnavailableError(RuntimeError):
    """node or npm is missing, or ``npm ci`` failed."""


def _require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise NodeUnavailableError(
            f"`{name}` was not found on PATH: the JS interop tests need Node.js (>= 18) "
            f"and npm to run the official engine.io packages in {JS_DIR}"
        )
    return path


def _node_modules_stale() -> bool:
    # npm writes node_modules/.package-lock.json on every install; if it is
    # missing or older than package-lock.json, the lock changed since then.
    installed = JS_DIR / "node_modules" / ".package-lock.json"
    lock = JS_DIR / "package-lock.json"
    return not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime


@functools.cache  # a failure is not cached, so the next caller retries
def ensure_node_modules() -> None:
    """Install tests/js/node_modules with ``npm ci`` if missing or stale.

    Blocking; call it from trio with ``trio.to_thread.run_sync``.  A file lock
    keeps parallel test processes (e.g. pytest-xdist) from racing ``npm ci``.
    """
    _require_tool("node")
    npm = _require_tool("npm")
    # The lock lives outside tests/js because `npm ci` deletes node_modules.
    digest = hashlib.sha256(str(JS_DIR).encode()).hexdigest()[:16]
    lock_path = Path(tempfile.gettempdir()) / f"trio-engineio-npm-ci-{digest}.lock"
    with lock_path.open("w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)  # released when the file closes
        if not _node_modules_stale():
            return
        completed = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=JS_DIR,
            capture_output=True,
            text=True,
            check=False,
        )
        if completed.returncode != 0:
            raise NodeUnavailableError(
                f"`npm ci` in {JS_DIR} failed with exit code {completed.returncode}:\n"
                f"{completed.stdout}\n{completed.stderr}"
            )


def _parse_line(line: str) -> JsEvent:
    try:
        decoded = json.loads(line)
    except json.JSONDecodeError:
        return {"event": "unparsed", "line": line}
    if not isinstance(decoded, dict):
        return {"event": "unparsed", "line": line}
    return decoded


def result_event(events: list[JsEvent]) -> JsEvent:
    """The single ``{"event": "result", ...}`` of a client run."""
    results = events_named(events, "result")
    assert len(results) == 1, f"expected exactly one result event, got: {events}"
    return results[0]


def events_named(events: list[JsEvent], name: str) -> list[JsEvent]:
    return [event for event in events if event.get("event") == name]


async def run_js_client(url: str, scenario: str, options: Mapping[str, Any] | None = None) -> list[JsEvent]:
    """Run one client.mjs scenario against ``url`` and return its events.

    Raises AssertionError (with the script's stdout and stderr) if the
    scenario fails, including when it exceeds its ``timeoutMs`` option
    (default 10 s).  Wrap the call in ``trio.fail_after`` for a tighter limit.
    """
    options = dict(options or {})
    await trio.to_thread.run_sync(ensure_node_modules)
    command = [_require_tool("node"), str(CLIENT_SCRIPT), url, scenario, json.dumps(options)]
    # Backstop only: client.mjs's own watchdog fails first, with a clearer message.
    with trio.fail_after(options.get("timeoutMs", 10_000) / 1000 + 10):
        completed = await trio.run_process(command, cwd=JS_DIR, capture_stdout=True, capture_stderr=True, check=False)
    stdout = completed.stdout.decode(errors="replace")
    stderr = completed.stderr.decode(errors="replace")
    if completed.returncode != 0:
        raise AssertionError(
            f"client.mjs {scenario} {url} exited with code {completed.returncode}\n"
            f"--- stdout ---\n{stdout}--- stderr ---\n{stderr}"
        )
    return [_parse_line(line) for line in stdout.splitlines() if line.strip()]


class _LineSplitter:
    """Turns a byte stream into complete text lines."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, chunk: bytes | bytearray) -> list[str]:
        *lines, self._pending = (self._pending + chunk).split(b"\n")
        return [line.decode(errors="replace") for line in lines if line.strip()]

    def flush(self) -> list[str]:
        rest, self._pending = self._pending, b""
        return [rest.decode(errors="replace")] if rest.strip() else []


class JsServer:
    """A running server.mjs; its stdout events accumulate in ``events``."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.port = 0
        self.wait_limit = 10.0  # seconds; a safety net so a missing event never hangs a test
        self.events: list[JsEvent] = []
        self._stderr = bytearray()
        self._open_outputs = 2  # stdout and stderr readers still running
        self._changed = trio.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stderr(self) -> str:
        return self._stderr.decode(errors="replace")

    def events_named(self, name: str) -> list[JsEvent]:
        return events_named(self.events, name)

    async def wait_for(self, name: str, /, **fields: Any) -> JsEvent:
        """Return the first logged event called ``name`` whose keys match ``fields``.

        Already-logged events count, so this never misses an event that came
        early.  Raises AssertionError if the server exits first or after
        ``wait_limit`` seconds (wrap in ``trio.fail_after`` for less).
        """

        def find() -> JsEvent | None:
            for event in self.events:
                if event.get("event") == name and all(event.get(key) == value for key, value in fields.items()):
                    return event
            return None

        wanted = f"{name!r} event matching {fields}"
        with trio.move_on_after(self.wait_limit):
            while (found := find()) is None:
                if self._open_outputs == 0:
                    raise AssertionError(
                        f"server.mjs exited (code {self.process.returncode}) before logging "
                        f"a {wanted}\n{self._describe()}"
                    )
                await self._changed.wait()
            return found
        raise AssertionError(f"server.mjs logged no {wanted} within {self.wait_limit} s\n{self._describe()}")

    def _describe(self) -> str:
        recent = "\n".join(json.dumps(event)[:300] for event in self.events[-20:])
        return f"--- last events ---\n{recent}\n--- stderr ---\n{self.stderr}"

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def _read_stdout(self, stream: trio.abc.ReceiveStream) -> None:
        # Always drain: node blocks on a full stdout pipe.
        splitter = _LineSplitter()
        try:
            async for chunk in stream:
                self.events.extend(_parse_line(line) for line in splitter.feed(chunk))
                self._notify()
            self.events.extend(_parse_line(line) for line in splitter.flush())
        finally:
            self._open_outputs -= 1
            self._notify()

    async def _read_stderr(self, stream: trio.abc.ReceiveStream) -> None:
        try:
            async for chunk in stream:
                self._stderr += chunk
        finally:
            self._open_outputs -= 1
            self._notify()

    async def _stop(self) -> None:
        # Closing stdin asks server.mjs to shut down cleanly; escalate if not.
        if self.process.stdin is not None:
            await self.process.stdin.aclose()
        with trio.move_on_after(_SHUTDOWN_GRACE):
            await self.process.wait()
            return
        self.process.terminate()
        with trio.move_on_after(_SHUTDOWN_GRACE):
            await self.process.wait()
            return
        self.process.kill()
        await self.process.wait()


@asynccontextmanager
async def open_js_server(options: Mapping[str, Any] | None = None) -> AsyncIterator[JsServer]:
    """Run server.mjs (official engine.io echo server) for the duration of the block.

    ``options`` go to engine.io's ``attach()`` (pingInterval, pingTimeout,
    maxHttpBufferSize, transports, allowUpgrades, cors, ...).  On exit the
    process is stopped and reaped, even if the block was cancelled.
    """
    await trio.to_thread.run_sync(ensure_node_modules)
    process = await trio.lowlevel.open_process(
        [_require_tool("node"), str(SERVER_SCRIPT), json.dumps(options or {})],
        cwd=JS_DIR,
        stdin=subprocess.PIPE,  # kept open: server.mjs exits when its stdin closes
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    server = JsServer(process)
    try:
        assert process.stdout is not None
        assert process.stderr is not None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server._read_stdout, process.stdout)
            nursery.start_soon(server._read_stderr, process.stderr)
            try:
                listening = await server.wait_for("listening")
                server.port = int(listening["port"])
                yield server
            finally:
                with trio.CancelScope(shield=True):
                    await server._stop()
    finally:
        with trio.CancelScope(shield=True):
            if process.returncode is None:
                process.kill()
            await process.wait()
            # trio.Process has no aclose(); close our pipe ends ourselves.
            for stream in (process.stdin, process.stdout, process.stderr):
                if stream is not None:
                    await stream.aclose()
