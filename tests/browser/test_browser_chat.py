"""examples/chat in a real browser: Debian's headless Chromium, driven by playwright-core (chat.mjs).

Three servers run under hypercorn's trio worker on 127.0.0.1 port 0: the chat
with the default ``cors_allowed_origins=None`` (same origin only), the chat
allowing one other origin, and that other origin (a port of its own serving
``foreign.html``). ``chat.mjs`` opens pages on them and prints what they showed
as JSON; this test asserts on it and on what the servers logged. See
``browser_runner.py`` for what it needs (``make install`` provides it).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from browser_runner import ARTIFACTS, HERE, run_browser_script

from examples.chat.app import ChatRoom
from trio_engineio.testing import serve_hypercorn

FOREIGN_PAGE = HERE / "foreign.html"
SCREENSHOT = ARTIFACTS / "chat.png"


async def foreign_site(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An ASGI app of another origin: ``foreign.html`` at ``/``, 404 elsewhere."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    if scope["type"] != "http":
        return
    if scope["path"] == "/":
        status, content_type, body = 200, b"text/html; charset=utf-8", FOREIGN_PAGE.read_bytes()
    else:
        status, content_type, body = 404, b"text/plain", b"Not Found"
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", content_type)]})
    await send({"type": "http.response.body", "body": body})


async def test_two_browser_pages_chat_by_polling_and_by_websocket_and_cors_is_enforced(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="trio_engineio.server")
    caplog.set_level(logging.INFO, logger="examples.chat.app")
    SCREENSHOT.unlink(missing_ok=True)
    room = ChatRoom()
    async with serve_hypercorn(foreign_site) as foreign_url:
        cors_room = ChatRoom(cors_allowed_origins=[foreign_url])
        async with serve_hypercorn(room.app) as chat_url, serve_hypercorn(cors_room.app) as cors_chat_url:
            config = {
                "chatUrl": chat_url,
                "corsChatUrl": cors_chat_url,
                "foreignUrl": foreign_url,
                "screenshot": str(SCREENSHOT),
            }
            result = await run_browser_script("chat.mjs", config)

    # Two pages forced to long-polling talk; bob leaves with the Leave button (a CLOSE packet).
    polling = result["polling"]
    for page in polling["alice"], polling["bob"]:
        assert page["websockets"] == [], "a page on ?transport=polling opened a websocket"
        assert page["pageErrors"] == []
        assert page["markupInLog"] == 0, "a message was rendered as HTML"
    assert polling["alice"]["transport"] == "polling"
    assert polling["alice"]["me"] == "alice"
    assert polling["alice"]["lines"] == [
        "* welcome alice; here: alice",
        "* alice joined",
        "* bob joined",
        "alice: hello bob",
        "bob: <b>hi</b> alice",
        "* bob left",
    ]
    assert polling["bob"]["lines"] == [
        "* welcome bob; here: alice, bob",
        "* bob joined",
        "alice: hello bob",
        "bob: <b>hi</b> alice",
    ]
    assert polling["bob"]["transport"] == "polling"
    assert polling["bob"]["finalStatus"] == "closed: forced close"
    assert polling["alice"]["finalStatus"] == "closed: forced close"

    # Two pages upgrade from polling to websocket and talk; bob closes his tab.
    upgraded = result["websocket"]
    for page in upgraded["alice"], upgraded["bob"]:
        assert page["pageErrors"] == []
        assert page["markupInLog"] == 0
        assert len(page["websockets"]) == 1
        assert "/engine.io/?" in page["websockets"][0]
        assert "transport=websocket" in page["websockets"][0]
        assert "sid=" in page["websockets"][0], "not an upgrade of a polling session"
    assert upgraded["alice"]["transport"] == "websocket"
    assert upgraded["bob"]["transport"] == "websocket"
    assert upgraded["alice"]["lines"] == polling["alice"]["lines"]
    assert upgraded["bob"]["lines"] == polling["bob"]["lines"]
    assert SCREENSHOT.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")

    # A page of another origin: refused by the default server, by polling and by websocket...
    cross = result["crossOrigin"]
    for key in "refusedPolling", "refusedWebsocket":
        attempt = cross[key]
        assert attempt["status"] == "connecting", f"{key}: {attempt}"
        assert attempt["closed"] == "transport error", f"{key}: {attempt}"
        assert attempt["lines"] == []
    assert any("blocked by CORS policy" in line for line in cross["refusedPolling"]["console"]), cross["refusedPolling"]
    assert cross["refusedWebsocket"]["websockets"], "the websocket was never tried"
    handshake_failed = "Error during WebSocket handshake: Unexpected response code: 4"  # 400, as python-engineio's
    assert any(handshake_failed in line for line in cross["refusedWebsocket"]["console"]), cross["refusedWebsocket"]
    refusals = [record.getMessage() for record in caplog.records if "origin not allowed" in record.getMessage()]
    assert any(message.startswith("refused GET /engine.io/") for message in refusals), refusals
    assert any(message.startswith("refused websocket /engine.io/") for message in refusals), refusals
    # ... and accepted by the server that lists its origin.
    allowed = cross["allowed"]
    assert allowed["status"] == "connected"
    assert allowed["transport"] == "websocket"
    assert [json.loads(line) for line in allowed["lines"]] == [
        {"type": "welcome", "name": "friend", "users": ["friend"]},
        {"type": "join", "name": "friend"},
        {"type": "message", "name": "friend", "text": "hello from another origin"},
    ]
    joins = [record.getMessage() for record in caplog.records if record.name == "examples.chat.app"]
    assert f"friend joined ({foreign_url})" in joins
    assert not any(message.startswith("mallory") for message in joins), joins
    assert room.names == {}
    assert cors_room.names == {}
