"""examples/chat on hypercorn's trio worker, with Python clients (tests/browser drives its page in Chromium)."""

from __future__ import annotations

from typing import Any

import httpx
import trio

from examples.chat.app import ChatRoom, choose_name
from trio_engineio import AsyncClient
from trio_engineio.testing import serve_hypercorn


def test_names_come_from_the_query_cleaned_up_and_unique() -> None:
    assert choose_name("EIO=4&name=alice", "abcdef", set()) == "alice"
    assert choose_name("name=%3Cb%3Ebob%3C%2Fb%3E", "abcdef", set()) == "bbobb"
    assert choose_name("name=" + "x" * 40, "abcdef", set()) == "x" * 16
    assert choose_name("name=alice", "abcdef", {"alice", "alice-2"}) == "alice-3"
    assert choose_name("EIO=4&transport=polling", "abcdef", set()) == "guest-abcd"
    assert choose_name("name=%21%21", "abcdef", set()) == "guest-abcd"


async def test_the_page_is_served() -> None:
    async with serve_hypercorn(ChatRoom().app) as url, httpx.AsyncClient(base_url=url) as http:
        page = await http.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "eio(location.origin, options)" in page.text


async def receive(client: AsyncClient) -> Any:
    with trio.fail_after(5):
        return await client.receive()


async def test_everyone_gets_joins_messages_and_leaves_with_the_senders_name() -> None:
    room = ChatRoom()
    async with serve_hypercorn(room.app) as url, AsyncClient() as alice, AsyncClient() as bob:
        await alice.connect(f"{url}/?name=alice", transports=["websocket"])
        assert await receive(alice) == {"type": "welcome", "name": "alice", "users": ["alice"]}
        assert await receive(alice) == {"type": "join", "name": "alice"}

        await bob.connect(f"{url}/?name=bob", transports=["polling"])
        assert await receive(bob) == {"type": "welcome", "name": "bob", "users": ["alice", "bob"]}
        assert await receive(bob) == {"type": "join", "name": "bob"}
        assert await receive(alice) == {"type": "join", "name": "bob"}

        await bob.send("hi <b>alice</b>")
        said = {"type": "message", "name": "bob", "text": "hi <b>alice</b>"}
        assert await receive(alice) == said
        assert await receive(bob) == said

        await alice.send(b"binary is ignored")
        await alice.send("   ")  # and so are blank messages
        await alice.send("x" * 600)
        long = {"type": "message", "name": "alice", "text": "x" * 500}
        assert await receive(alice) == long
        assert await receive(bob) == long

        await bob.disconnect()
        assert await receive(alice) == {"type": "leave", "name": "bob"}
        assert room.names == {alice.sid: "alice"}
    assert room.names == {}
