"""Testing helpers for pytest-trio suites: drive an Engine.IO app without sockets.

In memory there are no sockets and no real time, so everything but
:func:`serve_hypercorn` runs under ``autojump_clock``: a 25 s ping interval
costs no wall time, and timers are asserted at their exact virtual instants.

* :func:`open_client`: an :class:`~trio_engineio.AsyncClient` wired to an app in
  memory (:class:`InMemoryHTTPTransport` for polling, :class:`InMemoryWebSocketConnector`
  for websockets, the upgrade included).
* :class:`RawPollingClient` / :class:`RawWebSocketClient`: clients that do only
  what the test says, to play faulty clients (no PONG, an aborted poll, an
  oversize or malformed packet, a client vanishing mid-upgrade).
* :class:`SilentServer` and :meth:`InMemoryWebSocketConnector.partition`: a
  server that stops talking and a network that stops carrying, for client tests.
* :func:`open_http_client` / :func:`open_websocket`: raw ASGI requests in memory
  (httpx's ASGI transport for HTTP, a driver of ours for websockets).
* :func:`open_lifespan`: run an :class:`~trio_engineio.ASGIApp`'s lifespan
  (which starts its server) for the duration of a block.
* :func:`serve_hypercorn`: serve an app under hypercorn's trio worker on
  127.0.0.1 port 0, inside the caller's nursery, and yield its URL.

The pytest plugin :mod:`trio_engineio.pytest_plugin` wraps them in fixtures;
``docs/testing.rst`` has complete examples.

Example::

    async def test_echo(autojump_clock):
        async with open_lifespan(app), open_client(app) as client:
            await client.connect(BASE_URL)
            await client.send("hello")
            assert await client.receive() == "hello"

Nothing in the library imports this package.
"""

from trio_engineio.testing import _asgi
from trio_engineio.testing._asgi import (
    WebSocketClosed,
    WebSocketRejected,
    WebSocketSession,
    open_http_client,
    open_lifespan,
    open_websocket,
)
from trio_engineio.testing._fakes import SilentServer
from trio_engineio.testing._fault_clients import PendingGet, RawPollingClient, RawWebSocketClient
from trio_engineio.testing._sockets import serve_hypercorn
from trio_engineio.testing._transports import (
    InMemoryClientWebSocket,
    InMemoryHTTPTransport,
    InMemoryWebSocketConnector,
    open_client,
)

# Defined beside the in-memory driver; documented here, where Sphinx and users look for it.
BASE_URL = _asgi.BASE_URL
"""The URL in-memory clients connect to; the host is never resolved, so any would do.

Example::

    async with eio, open_client(eio) as client:
        await client.connect(BASE_URL)
"""

__all__ = [
    "BASE_URL",
    "InMemoryClientWebSocket",
    "InMemoryHTTPTransport",
    "InMemoryWebSocketConnector",
    "PendingGet",
    "RawPollingClient",
    "RawWebSocketClient",
    "SilentServer",
    "WebSocketClosed",
    "WebSocketRejected",
    "WebSocketSession",
    "open_client",
    "open_http_client",
    "open_lifespan",
    "open_websocket",
    "serve_hypercorn",
]
