"""examples/socketio_chat in headless Chromium: the official socket.io-client bundle on Trio."""

from __future__ import annotations

from browser_runner import run_browser_script

from examples.socketio_chat.app import create_app
from trio_engineio.testing import serve_hypercorn


async def test_two_browser_pages_chat_over_the_upgrade_and_over_polling() -> None:
    async with serve_hypercorn(create_app()) as chat_url:
        result = await run_browser_script("socketio_chat.mjs", {"chatUrl": chat_url})

    for name, transport in (("upgrade", "websocket"), ("polling", "polling")):
        scenario = result[name]
        for page in scenario["alice"], scenario["bob"]:
            assert page["pageErrors"] == []
            assert page["markupInLog"] == 0, "a message was rendered as HTML"
            assert page["transport"] == transport
            assert page["status"] == "connected"
            if transport == "polling":
                assert page["websockets"] == [], "a page on ?transport=polling opened a websocket"
        assert scenario["bob"]["lines"] == [
            "* welcome bob; here: alice, bob",
            "alice: hello bob",
            "bob: <b>hi</b> alice",
        ]
        expected = ["* welcome alice; here: alice", "* bob joined", "alice: hello bob", "bob: <b>hi</b> alice"]
        if name == "upgrade":
            expected.append("* bob left")
        assert scenario["alice"]["lines"] == expected
