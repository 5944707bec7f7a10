"""ASGIApp run by an ASGI server on asyncio: one plain sentence, logged once, answered to everything.

The app is driven in memory from ``asyncio.run`` as uvicorn or hypercorn's default
worker would run it; ``tests/integration/test_wrong_event_loop.py`` runs those servers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import MutableMapping
from typing import Any

import pytest

from trio_engineio import ASGIApp, AsyncServer

ADVICE = "start it with `hypercorn --worker-class trio module:app` (or `trio-engineio serve module:app`)"


def _drive(app: ASGIApp, scope: dict[str, Any], incoming: list[dict[str, Any]]) -> list[MutableMapping[str, Any]]:
    """Run one ASGI call on asyncio; return what the app sent."""
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(0)
        return incoming.pop(0)

    async def send(message: MutableMapping[str, Any]) -> None:
        await asyncio.sleep(0)
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def _http_scope() -> dict[str, Any]:
    return {"type": "http", "method": "GET", "path": "/engine.io/", "query_string": b"EIO=4&transport=polling"}


def test_lifespan_startup_fails_with_the_advice(caplog: pytest.LogCaptureFixture) -> None:
    """The ASGI server reports the failure and stops; the ERROR log says the same, once."""
    app = ASGIApp(AsyncServer())
    with caplog.at_level(logging.ERROR, logger="trio_engineio"):
        sent = _drive(app, {"type": "lifespan"}, [{"type": "lifespan.startup"}])
    assert [m["type"] for m in sent] == ["lifespan.startup.failed"]
    message = sent[0]["message"]
    assert message == f"trio_engineio runs on Trio, but this ASGI server runs the application on asyncio: {ADVICE}"
    assert [r.getMessage() for r in caplog.records] == [message]


def test_every_request_is_answered_500_with_the_advice_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    """Without lifespan: HTTP and websocket requests (the latter by the denial extension, else a close)."""
    app = ASGIApp(AsyncServer())
    with caplog.at_level(logging.ERROR, logger="trio_engineio"):
        first = _drive(app, _http_scope(), [{"type": "http.request", "body": b""}])
        second = _drive(app, {**_http_scope(), "path": "/elsewhere"}, [{"type": "http.request", "body": b""}])
        websocket = _drive(
            app,
            {"type": "websocket", "path": "/engine.io/", "extensions": {"websocket.http.response": {}}},
            [{"type": "websocket.connect"}],
        )
        closed = _drive(app, {"type": "websocket", "path": "/engine.io/"}, [{"type": "websocket.connect"}])
    for sent in (first, second):
        assert sent[0]["type"] == "http.response.start"
        assert sent[0]["status"] == 500
        assert ADVICE in sent[1]["body"].decode()
    assert [m["type"] for m in websocket] == ["websocket.http.response.start", "websocket.http.response.body"]
    assert websocket[0]["status"] == 500
    assert ADVICE in websocket[1]["body"].decode()
    assert [m["type"] for m in closed] == ["websocket.close"]
    assert len(caplog.records) == 1
    assert ADVICE in caplog.records[0].getMessage()
