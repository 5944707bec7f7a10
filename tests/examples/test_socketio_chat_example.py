"""examples/socketio_chat on hypercorn's trio worker: the page, the bundle, and two Trio clients."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import trio

from examples.socketio_chat.app import create_app
from trio_engineio import socketio
from trio_engineio.testing import serve_hypercorn


async def test_the_page_and_the_official_bundle_are_served() -> None:
    async with serve_hypercorn(create_app()) as url, httpx.AsyncClient(base_url=url) as http:
        page = await http.get("/")
        bundle = await http.get("/socket.io.min.js")
    assert page.status_code == 200
    assert "io(options)" in page.text
    assert bundle.status_code == 200
    assert bundle.headers["content-type"].startswith("application/javascript")
    assert "Socket.IO v4.8.4" in bundle.text


async def test_a_message_reaches_the_others_and_is_acknowledged() -> None:
    async with (
        serve_hypercorn(create_app()) as url,
        socketio.AsyncClient(reconnection=False) as alice,
        socketio.AsyncClient(reconnection=False) as bob,
    ):
        heard: list[Any] = []
        arrived = trio.Event()

        @bob.event
        def said(message: dict[str, str]) -> None:
            heard.append(message)
            arrived.set()

        await bob.connect(url, auth={"name": "bob"}, transports=["polling"])
        await alice.connect(url, auth={"name": "alice"}, transports=["websocket"])
        assert await alice.call("say", "hi <b>bob</b>", timeout=5) == "delivered"
        with trio.fail_after(5):
            await arrived.wait()
        assert heard == [{"name": "alice", "text": "hi <b>bob</b>"}]


async def test_a_taken_or_missing_name_is_refused() -> None:
    async with serve_hypercorn(create_app()) as url, socketio.AsyncClient(reconnection=False) as first:
        await first.connect(url, auth={"name": "alice"})
        for auth in ({"name": "alice"}, None):
            async with socketio.AsyncClient(reconnection=False) as other:
                with pytest.raises(socketio.exceptions.ConnectionError):
                    await other.connect(url, auth=auth)
