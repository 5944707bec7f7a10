"""trio_engineio.socketio in memory: python-socketio's server and client on Trio, no sockets.

The interop scenario (``scenario_trio.py``) over each transport, with the client's polling
and websocket reaching the app through trio_engineio.testing's in-memory transports.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import trio
import trio.testing
from scenario_trio import expected_checks, run_scenario
from sio_app import create_app

from trio_engineio import socketio
from trio_engineio.testing import BASE_URL, InMemoryHTTPTransport, InMemoryWebSocketConnector, open_lifespan

TRANSPORTS = [None, ["polling"], ["websocket"]]


@pytest.fixture
async def app() -> AsyncIterator[socketio.ASGIApp]:
    app = create_app()
    async with open_lifespan(app):
        yield app


@pytest.mark.parametrize("transports", TRANSPORTS, ids=["upgrade", "polling", "websocket"])
async def test_scenario(
    app: socketio.ASGIApp, transports: list[str] | None, autojump_clock: trio.testing.MockClock
) -> None:
    # Virtual time: the scenario's timeouts (call() with 0.3 s, a handler that takes 0.5 s) cost
    # no wall time here; the interop tests run the same scenario against real processes.
    async with httpx.AsyncClient(transport=InMemoryHTTPTransport(app), base_url=BASE_URL) as http:
        checks = await run_scenario(
            BASE_URL, transports, http_session=http, websocket_connector=InMemoryWebSocketConnector(app)
        )
    assert checks == expected_checks(transports, server_disconnect="server disconnect")
    assert not app.socketio_server.eio.sockets
