"""Testing helpers for pytest-trio suites: drive an Engine.IO app without sockets.

Three tools, from cheapest to most real:

* :func:`open_http_client` / :func:`open_websocket`: talk to an ASGI app in
  memory (httpx's ASGI transport for HTTP, a driver of ours for websockets).
  No sockets and no real time, so they run under ``autojump_clock``: a 25 s
  ping interval costs no wall time.
* :func:`open_lifespan`: run an :class:`~trio_engineio.ASGIApp`'s lifespan
  (which starts its server) for the duration of a block.
* :func:`serve_hypercorn`: serve an app under hypercorn's trio worker on
  127.0.0.1 port 0, inside the caller's nursery, and yield its URL.

Example::

    async def test_echo(autojump_clock):
        async with eio:  # or: async with open_lifespan(app)
            async with open_websocket(app) as ws:
                handshake = await ws.receive()
                await ws.send("4hello")
                assert await ws.receive() == "4hello"

Nothing in the library imports this module.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlencode

import httpx
import trio

from trio_engineio.exceptions import ConnectionError, EngineIOError

__all__ = [
    "WebSocketClosed",
    "WebSocketRejected",
    "WebSocketSession",
    "open_http_client",
    "open_lifespan",
    "open_websocket",
    "serve_hypercorn",
]

ASGIApp = Any


class WebSocketRejected(ConnectionError):
    """The app refused the websocket handshake; ``status_code``/``error_body`` say how."""


class WebSocketClosed(EngineIOError):
    """The app closed the websocket.

    Attributes:
        code: the close code it sent.
    """

    def __init__(self, code: int) -> None:
        super().__init__(f"the websocket was closed with code {code}")
        self.code = code


class WebSocketSession:
    """The client end of an in-memory websocket to an ASGI app (see :func:`open_websocket`)."""

    def __init__(
        self,
        to_app: trio.MemorySendChannel[dict[str, Any]],
        from_app: trio.MemoryReceiveChannel[dict[str, Any]],
    ) -> None:
        self._to_app = to_app
        self._from_app = from_app
        self.close_code: int | None = None

    async def send(self, message: str | bytes) -> None:
        """Send a text (``str``) or binary (``bytes``) message to the app."""
        if isinstance(message, str):
            await self._to_app.send({"type": "websocket.receive", "text": message, "bytes": None})
        else:
            await self._to_app.send({"type": "websocket.receive", "bytes": message, "text": None})

    async def receive(self) -> str | bytes:
        """The next message from the app.

        Raises:
            WebSocketClosed: the app closed the websocket (or its handler ended).
        """
        if self.close_code is not None:
            raise WebSocketClosed(self.close_code)
        try:
            message = await self._from_app.receive()
        except trio.EndOfChannel:
            self.close_code = 1006
            raise WebSocketClosed(1006) from None
        if message["type"] == "websocket.close":
            self.close_code = int(message.get("code", 1000))
            raise WebSocketClosed(self.close_code)
        text = message.get("text")
        if text is not None:
            return str(text)
        return bytes(message.get("bytes") or b"")

    async def wait_closed(self) -> int:
        """Discard messages until the app closes the websocket; return the close code."""
        while True:
            try:
                await self.receive()
            except WebSocketClosed as closed:
                return closed.code

    async def close(self, code: int = 1000) -> None:
        """Disconnect, as a client closing the websocket does."""
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await self._to_app.send({"type": "websocket.disconnect", "code": code})


def _headers(headers: Mapping[str, str] | None) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]


@contextlib.asynccontextmanager
async def open_websocket(
    app: ASGIApp,
    path: str = "/engine.io/",
    query: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    *,
    client: tuple[str, int] = ("127.0.0.1", 50000),
) -> AsyncIterator[WebSocketSession]:
    """Open an in-memory websocket to an ASGI app.

    Args:
        app: the ASGI application (its server must be running).
        path: the request path.
        query: the query string, default ``{"EIO": "4", "transport": "websocket"}``.
        headers: request headers (``Host: testserver`` is added if missing).
        client: the peer address the app sees.

    Yields:
        The :class:`WebSocketSession` once the app accepted.

    Raises:
        WebSocketRejected: the app refused (HTTP denial response or close before accept).
    """
    query = {"EIO": "4", "transport": "websocket"} if query is None else query
    raw_headers = _headers(headers)
    if not any(name == b"host" for name, _ in raw_headers):
        raw_headers.append((b"host", b"testserver"))
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "scheme": "ws",
        "http_version": "1.1",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": urlencode(query).encode(),
        "headers": raw_headers,
        "client": client,
        "server": ("testserver", 80),
        "subprotocols": [],
        "extensions": {"websocket.http.response": {}},
    }
    to_app_send, to_app_receive = trio.open_memory_channel[dict[str, Any]](math.inf)
    from_app_send, from_app_receive = trio.open_memory_channel[dict[str, Any]](math.inf)

    async def run_app() -> None:
        async with from_app_send:
            await app(scope, to_app_receive.receive, from_app_send.send)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_app)
        to_app_send.send_nowait({"type": "websocket.connect"})
        try:
            first = await from_app_receive.receive()
        except trio.EndOfChannel:
            raise WebSocketRejected("the app ended without answering the handshake") from None
        if first["type"] == "websocket.http.response.start":
            body = b""
            async for message in from_app_receive:
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            status = int(first["status"])
            try:
                error_body: Any = json.loads(body)
            except ValueError:
                error_body = body
            raise WebSocketRejected(f"websocket refused with {status}", status_code=status, error_body=error_body)
        if first["type"] == "websocket.close":
            raise WebSocketRejected("websocket closed before accept", status_code=403)
        assert first["type"] == "websocket.accept", first
        websocket = WebSocketSession(to_app_send, from_app_receive)
        try:
            yield websocket
        finally:
            await websocket.close()


@contextlib.asynccontextmanager
async def open_http_client(app: ASGIApp, base_url: str = "http://testserver") -> AsyncIterator[httpx.AsyncClient]:
    """An ``httpx.AsyncClient`` that sends requests to ``app`` in memory."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
        yield client


@contextlib.asynccontextmanager
async def open_lifespan(app: ASGIApp) -> AsyncIterator[None]:
    """Run an ASGI app's lifespan: startup on entry, shutdown on exit.

    Raises:
        EngineIOError: the app reported that startup or shutdown failed.
    """
    to_app_send, to_app_receive = trio.open_memory_channel[dict[str, Any]](math.inf)
    from_app_send, from_app_receive = trio.open_memory_channel[dict[str, Any]](math.inf)
    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
    async with trio.open_nursery() as nursery:
        nursery.start_soon(app, scope, to_app_receive.receive, from_app_send.send)
        await to_app_send.send({"type": "lifespan.startup"})
        started = await from_app_receive.receive()
        if started["type"] != "lifespan.startup.complete":
            raise EngineIOError(f"lifespan startup failed: {started}")
        try:
            yield
        finally:
            await to_app_send.send({"type": "lifespan.shutdown"})
            stopped = await from_app_receive.receive()
            if stopped["type"] != "lifespan.shutdown.complete":
                raise EngineIOError(f"lifespan shutdown failed: {stopped}")


@contextlib.asynccontextmanager
async def serve_hypercorn(app: ASGIApp, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Serve ``app`` with hypercorn's trio worker on an ephemeral port; yield ``http://host:port``.

    The server runs in a nursery inside this context and is shut down (with ASGI
    lifespan shutdown) on exit. Do not combine with ``autojump_clock``: real
    sockets need real time.
    """
    from hypercorn.config import Config
    from hypercorn.trio import serve

    config = Config()
    config.bind = [f"{host}:0"]
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 5
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(
            lambda task_status: serve(app, config, shutdown_trigger=shutdown.wait, task_status=task_status)
        )
        try:
            yield binds[0]
        finally:
            shutdown.set()
