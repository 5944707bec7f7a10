"""Shared helpers of the in-memory server suites (``tests/test_*.py``).

A plain module rather than ``tests/conftest.py``: ``tests/integration/`` has a
``conftest.py`` of its own, and two top-level ``conftest`` modules collide
(``from conftest import ...`` picks either, and ``mypy tests`` refuses
duplicate module names).

Everything here drives an :class:`~trio_engineio.ASGIApp` in memory, through
:mod:`trio_engineio.testing`: no sockets, so every test may run on
``autojump_clock`` and assert exact virtual instants.

* :func:`make_app` builds a server and its ASGI app.
* :class:`Poller` is :class:`trio_engineio.testing.RawPollingClient`: handshake,
  GET, POST, with payloads decoded by :func:`trio_engineio.protocol.decode_payload`.
* :func:`open_data` / :func:`ws_handshake` read the JSON of an OPEN packet.
* :class:`Recorder` collects what the event handlers saw.
* :func:`start_request` runs a request in the background until the app waits.
* :class:`ChunkedBody` is a request body without Content-Length, sent chunk by chunk.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import httpx
import trio
import trio.testing

from trio_engineio import ASGIApp, AsyncServer
from trio_engineio.testing import PendingGet, RawPollingClient, WebSocketSession

ENGINEIO_PATH = "/engine.io/"

Poller = RawPollingClient
"""The polling client of these suites, promoted to :mod:`trio_engineio.testing`."""


def make_app(**options: Any) -> tuple[AsyncServer, ASGIApp]:
    """An :class:`AsyncServer` built with ``options`` and the :class:`ASGIApp` serving it."""
    eio = AsyncServer(**options)
    return eio, ASGIApp(eio)


def open_data(text: str | bytes) -> dict[str, Any]:
    """The handshake data of an OPEN packet (``0`` followed by JSON)."""
    assert isinstance(text, str), text
    assert text[:1] == "0", text
    data: dict[str, Any] = json.loads(text[1:])
    return data


async def ws_handshake(ws: WebSocketSession) -> dict[str, Any]:
    """Read the OPEN packet a websocket-only handshake starts with; return its data."""
    return open_data(await ws.receive())


class Recorder:
    """Event handlers that record what they saw, registered on a server.

    Attributes:
        connects: the sids that connected, in order.
        messages: ``(sid, data)`` per message, in order.
        disconnects: ``(sid, reason)`` per disconnect, in order.
        disconnected: set at the first disconnect.
    """

    def __init__(self, eio: AsyncServer) -> None:
        self.connects: list[str] = []
        self.messages: list[tuple[str, Any]] = []
        self.disconnects: list[tuple[str, str]] = []
        self.disconnected = trio.Event()
        self.message_received = trio.Event()
        eio.on("connect", self.on_connect)
        eio.on("message", self.on_message)
        eio.on("disconnect", self.on_disconnect)

    def on_connect(self, sid: str, environ: dict[str, Any]) -> None:
        self.connects.append(sid)

    def on_message(self, sid: str, data: Any) -> None:
        self.messages.append((sid, data))
        self.message_received.set()

    def on_disconnect(self, sid: str, reason: str) -> None:
        self.disconnects.append((sid, reason))
        self.disconnected.set()


class ChunkedBody(httpx.AsyncByteStream):
    """A streamed request body (no Content-Length), optionally held before its last chunk.

    A class-based iterator rather than an async generator: the app may stop
    reading early (413), and httpx's in-memory transport never closes the
    stream, which an unfinished async generator reports when collected.

    Args:
        chunks: the chunks to send.
        hold: if given, the last chunk waits until this event is set.
    """

    def __init__(self, chunks: Iterable[bytes], hold: trio.Event | None = None) -> None:
        self._chunks = list(chunks)
        self._hold = hold
        self.sent = 0

    def __aiter__(self) -> ChunkedBody:
        return self

    async def __anext__(self) -> bytes:
        if self.sent == len(self._chunks):
            raise StopAsyncIteration
        if self._hold is not None and self.sent == len(self._chunks) - 1:
            await self._hold.wait()
        self.sent += 1
        return self._chunks[self.sent - 1]


class BackgroundRequest:
    """A request running in a nursery; :attr:`response` once :attr:`done` is set."""

    def __init__(self) -> None:
        self.response: httpx.Response | None = None
        self.done = trio.Event()

    async def result(self) -> httpx.Response:
        """Wait for the response."""
        await self.done.wait()
        assert self.response is not None
        return self.response


async def start_request(
    nursery: trio.Nursery, request: Callable[..., Awaitable[httpx.Response]], *args: Any
) -> BackgroundRequest:
    """Start ``request(*args)`` in ``nursery`` and return once every task waits (it is pending)."""
    pending = BackgroundRequest()

    async def run() -> None:
        pending.response = await request(*args)
        pending.done.set()

    nursery.start_soon(run)
    await trio.testing.wait_all_tasks_blocked()
    return pending


def upgrade_query(sid: str) -> dict[str, str]:
    """The query of the websocket that upgrades polling session ``sid``."""
    return {"EIO": "4", "transport": "websocket", "sid": sid}


async def probe(ws: WebSocketSession, pending: PendingGet) -> httpx.Response:
    """``2probe`` on the upgrading websocket, its ``3probe``, and the GET the probe released (NOOP)."""
    await ws.send("2probe")
    assert await ws.receive() == "3probe"
    released = await pending.response()
    assert released is not None
    return released
