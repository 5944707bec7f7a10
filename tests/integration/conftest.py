"""Fixtures of the integration tests: an echo server under real hypercorn, raw websockets, Node.js.

Everything here runs on real sockets (127.0.0.1, port 0) and real time, so no
test in this directory uses ``autojump_clock``.

* :class:`EchoServer` is an :class:`~trio_engineio.AsyncServer` plus its
  :class:`~trio_engineio.ASGIApp` that echoes every message (text as text,
  binary as binary), calls ``eio.disconnect(sid)`` on the text message
  ``"please-disconnect"``, and records connects, messages and disconnects
  (with their reasons) for assertions.
* ``serve_echo(**options)`` serves one under hypercorn's trio worker with
  :func:`trio_engineio.testing.serve_hypercorn`; ``echo_server`` is the default
  one. When the block ends, it checks what must hold after any run: no
  session left, one ``disconnect`` per ``connect``, no exception escaped the
  ASGI app (hypercorn's error log is off in ``serve_hypercorn``) and nothing
  logged at ERROR by trio_engineio.
* ``open_raw_websocket(url, query)`` opens a trio-websocket client on a TCP
  stream we own (trio-websocket 0.12 leaks the socket of a rejected handshake
  when it opens the stream itself).
* ``node_modules`` installs the official JS packages once per session.
"""

from __future__ import annotations

import collections
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
import trio
import trio_websocket
from nodejs import ensure_node_modules

from trio_engineio import ASGIApp, AsyncServer
from trio_engineio.testing import serve_hypercorn

DISCONNECT_TRIGGER = "please-disconnect"
"""The text message that makes the echo server call ``eio.disconnect(sid)``."""


class _RecordingASGIApp(ASGIApp):
    """An ASGIApp that keeps the exceptions escaping it, which hypercorn would only log."""

    def __init__(self, engineio_server: AsyncServer) -> None:
        super().__init__(engineio_server)
        self.errors: list[Exception] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        except Exception as exc:
            self.errors.append(exc)
            raise


class _ErrorRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class EchoServer:
    """An echo server and the record of what happened to it.

    Args:
        options: keyword arguments for :class:`~trio_engineio.AsyncServer`.

    Attributes:
        eio: the server.
        app: its ASGI app (Engine.IO under ``/engine.io/``).
        url: ``http://127.0.0.1:PORT`` once served (the JS client's URL).
        connects: sids in connect order.
        messages: what each sid sent, in order, as the message handler got it.
        disconnects: the ``disconnect`` handler's reason for each sid.
        wait_limit: seconds the ``wait_*`` methods wait before failing the test.
    """

    def __init__(self, **options: Any) -> None:
        self.eio = AsyncServer(async_mode="asgi", **options)
        self.app = _RecordingASGIApp(self.eio)
        self.url = ""
        self.connects: list[str] = []
        self.messages: dict[str, list[Any]] = {}
        self.disconnects: dict[str, str] = {}
        self.disconnect_calls: list[str] = []
        self.wait_limit = 10.0
        self._changed = trio.Event()
        self.eio.on("connect", self._on_connect)
        self.eio.on("message", self._on_message)
        self.eio.on("disconnect", self._on_disconnect)

    @property
    def engineio_url(self) -> str:
        """The Engine.IO endpoint for raw requests: ``http://127.0.0.1:PORT/engine.io/``."""
        return f"{self.url}/engine.io/"

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def _on_connect(self, sid: str, environ: dict[str, Any]) -> None:
        self.connects.append(sid)
        self.messages[sid] = []
        self._notify()

    async def _on_message(self, sid: str, data: Any) -> None:
        self.messages[sid].append(data)
        self._notify()
        if data == DISCONNECT_TRIGGER:
            await self.eio.disconnect(sid)
        else:
            # Text comes back as text and bytes as bytes. JSON text reaches the
            # handler decoded (python-engineio does that) and is re-encoded
            # compactly, which round-trips what JSON.stringify sent.
            await self.eio.send(sid, data)

    async def _on_disconnect(self, sid: str, reason: str) -> None:
        self.disconnect_calls.append(sid)
        self.disconnects[sid] = reason
        self._notify()

    async def wait_for(self, condition: Callable[[], bool], what: str) -> None:
        """Wait until ``condition()`` holds (checked after each connect, message and disconnect).

        Raises:
            AssertionError: it did not within :attr:`wait_limit` seconds.
        """
        with trio.move_on_after(self.wait_limit):
            while not condition():
                await self._changed.wait()
            return
        raise AssertionError(f"{what} did not happen within {self.wait_limit} s")

    async def wait_disconnect(self, sid: str) -> str:
        """Wait for ``sid``'s disconnect handler; return its reason."""
        await self.wait_for(lambda: sid in self.disconnects, f"the disconnect of {sid}")
        return self.disconnects[sid]

    async def wait_messages(self, sid: str, count: int) -> list[Any]:
        """Wait until ``sid`` has sent ``count`` messages; return all it sent."""
        await self.wait_for(lambda: len(self.messages.get(sid, ())) >= count, f"{count} messages from {sid}")
        return self.messages[sid]

    def check_invariants(self) -> None:
        """What must hold once the server has shut down."""
        assert not self.eio.running
        assert list(self.eio.sockets) == []
        calls = collections.Counter(self.disconnect_calls)
        assert all(count == 1 for count in calls.values()), f"disconnect handler ran twice: {calls}"
        assert set(calls) == set(self.connects), "every connected sid gets exactly one disconnect"
        assert self.app.errors == [], f"exceptions escaped the ASGI app: {self.app.errors!r}"


ServeEcho = Callable[..., AbstractAsyncContextManager[EchoServer]]
OpenRawWebSocket = Callable[..., AbstractAsyncContextManager[trio_websocket.WebSocketConnection]]


@pytest.fixture(scope="session")
def node_modules() -> None:
    """``npm ci`` the official JS packages once (idempotent and file-locked)."""
    ensure_node_modules()


@pytest.fixture
def serve_echo() -> ServeEcho:
    """``async with serve_echo(**options) as echo``: an :class:`EchoServer` under hypercorn.

    ``options`` go to :class:`~trio_engineio.AsyncServer`. Leaving the block
    shuts hypercorn down (ASGI lifespan included); then
    :meth:`EchoServer.check_invariants` runs, and no ERROR may have been logged.
    """

    @contextlib.asynccontextmanager
    async def serve(**options: Any) -> AsyncIterator[EchoServer]:
        echo = EchoServer(**options)
        errors = _ErrorRecords()
        package_logger = logging.getLogger("trio_engineio")
        package_logger.addHandler(errors)
        try:
            async with serve_hypercorn(echo.app) as url:
                echo.url = url
                yield echo
        finally:
            package_logger.removeHandler(errors)
        echo.check_invariants()
        assert [record.getMessage() for record in errors.records] == []

    return serve


@pytest.fixture
async def echo_server(serve_echo: ServeEcho) -> AsyncIterator[EchoServer]:
    """An :class:`EchoServer` with default options, served by hypercorn."""
    async with serve_echo() as echo:
        yield echo


@pytest.fixture
def open_raw_websocket() -> OpenRawWebSocket:
    """``async with open_raw_websocket(url, query) as ws``: a trio-websocket client.

    ``url`` is an ``http://host:port/path`` URL; ``query`` defaults to
    ``EIO=4&transport=websocket``; ``headers`` are extra request headers;
    ``max_message_size`` is the client's own limit. A refused handshake raises
    :class:`trio_websocket.ConnectionRejected` (``status_code``, ``body``).
    The websocket is closed (code 1000) when the block ends.
    """

    @contextlib.asynccontextmanager
    async def open_ws(
        url: str,
        query: Mapping[str, str] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        max_message_size: int = 2**20,
    ) -> AsyncIterator[trio_websocket.WebSocketConnection]:
        parts = urlsplit(url)
        assert parts.hostname is not None
        assert parts.port is not None
        query = {"EIO": "4", "transport": "websocket"} if query is None else query
        resource = f"{parts.path or '/'}?{urlencode(query)}"
        extra = [(name.encode(), value.encode()) for name, value in (headers or {}).items()]
        stream = await trio.open_tcp_stream(parts.hostname, parts.port)
        try:
            async with stream, trio.open_nursery() as nursery:
                connection = await trio_websocket.wrap_client_stream(
                    nursery,
                    stream,
                    f"{parts.hostname}:{parts.port}",
                    resource,
                    extra_headers=extra,
                    max_message_size=max_message_size,
                )
                try:
                    yield connection
                finally:
                    with trio.move_on_after(5, shield=True):
                        await connection.aclose()
        except BaseException as exc:
            # The reader task's ConnectionRejected (or the block's own error)
            # leaves our nursery in a group: raise that single error itself.
            sole = _sole_exception(exc)
            if sole is exc:
                raise
            raise sole from None

    return open_ws


def _sole_exception(exc: BaseException) -> BaseException:
    """The one error inside (nested) exception groups, ignoring ``trio.Cancelled``; else ``exc``."""
    inner: Sequence[BaseException] | None = getattr(exc, "exceptions", None)  # an exception group
    if inner is None:
        return exc
    errors = [_sole_exception(each) for each in inner if not isinstance(each, trio.Cancelled)]
    return errors[0] if len(errors) == 1 else exc


@pytest.fixture(params=["fast-path", "stock-path"])
def hypercorn_fast_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a test twice: with trio_engineio's hypercorn websocket fast path, and without it
    (``TRIO_ENGINEIO_HYPERCORN_FAST_PATH=0``: hypercorn's own send and receive path)."""
    if request.param == "stock-path":
        monkeypatch.setenv("TRIO_ENGINEIO_HYPERCORN_FAST_PATH", "0")
    return str(request.param)
