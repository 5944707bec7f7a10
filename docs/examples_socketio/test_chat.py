"""The chat in memory: two Trio clients, no sockets, on virtual time."""

from collections.abc import AsyncIterator

import httpx
import pytest
import trio
from chat import create_app
from client import chat

from trio_engineio import socketio
from trio_engineio.testing import BASE_URL, InMemoryHTTPTransport, InMemoryWebSocketConnector, open_lifespan


@pytest.fixture
async def app() -> AsyncIterator[socketio.ASGIApp]:
    app = create_app()
    async with open_lifespan(app):  # what hypercorn does: the server runs
        yield app


async def test_a_message_reaches_the_lobby(app: socketio.ASGIApp, autojump_clock: trio.testing.MockClock) -> None:
    async with httpx.AsyncClient(transport=InMemoryHTTPTransport(app), base_url=BASE_URL) as http:
        in_memory = {"http_session": http, "websocket_connector": InMemoryWebSocketConnector(app)}
        async with socketio.AsyncClient(**in_memory) as bob:
            heard = trio.Event()
            messages = []

            @bob.event
            def said(message: dict[str, str]) -> None:
                messages.append(message)
                heard.set()

            await bob.connect(BASE_URL, auth={"name": "bob"})
            assert await chat(BASE_URL, "alice", "hi bob", **in_memory) == "delivered"
            await heard.wait()
            assert messages == [{"name": "alice", "text": "hi bob"}]


async def test_a_client_without_a_name_is_refused(app: socketio.ASGIApp) -> None:
    async with (
        httpx.AsyncClient(transport=InMemoryHTTPTransport(app), base_url=BASE_URL) as http,
        socketio.AsyncClient(http_session=http, websocket_connector=InMemoryWebSocketConnector(app)) as sio,
    ):
        with pytest.raises(socketio.exceptions.ConnectionError):
            await sio.connect(BASE_URL)
