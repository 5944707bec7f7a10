"""trio_engineio.socketio in memory: ordering under concurrent emitters, refusals, Trio timeouts."""

from __future__ import annotations

import importlib.metadata
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import trio
from sio_app import attachment

from trio_engineio import socketio
from trio_engineio.testing import BASE_URL, InMemoryHTTPTransport, InMemoryWebSocketConnector, open_lifespan


@pytest.fixture
async def in_memory() -> AsyncIterator[tuple[socketio.AsyncServer, dict[str, Any]]]:
    sio = socketio.AsyncServer()
    app = socketio.ASGIApp(sio)
    async with (
        open_lifespan(app),
        httpx.AsyncClient(transport=InMemoryHTTPTransport(app), base_url=BASE_URL) as http,
    ):
        yield sio, {"http_session": http, "websocket_connector": InMemoryWebSocketConnector(app)}


@pytest.mark.parametrize("transports", [["polling"], ["websocket"]])
async def test_concurrent_binary_emits_reach_each_client_whole_and_in_order(
    in_memory: tuple[socketio.AsyncServer, dict[str, Any]], transports: list[str]
) -> None:
    """Four tasks emit to one client and two broadcast at once: no event is torn apart.

    A binary event is a header packet plus one packet per attachment. Trio's scheduler runs
    ready tasks in no set order, so one task per packet (python-socketio's way on asyncio)
    interleaves the packets of different events and the client fails to parse them.
    """
    sio, options = in_memory
    per_task = 30

    @sio.event
    async def storm(sid: str) -> None:
        async def emit_to(task: int) -> None:
            for i in range(per_task):
                await sio.emit(
                    "bin", {"src": f"to{task}", "i": i, "a": attachment(i, 0), "b": attachment(i, 1)}, to=sid
                )

        async def broadcast(task: int) -> None:
            for i in range(per_task):
                await sio.emit("bin", {"src": f"all{task}", "i": i, "a": attachment(i, 0), "b": attachment(i, 1)})

        async with trio.open_nursery() as nursery:
            for task in range(4):
                nursery.start_soon(emit_to, task)
            for task in range(2):
                nursery.start_soon(broadcast, task)

    received: dict[str, list[int]] = {}
    total = 6 * per_task
    done = trio.Event()
    async with socketio.AsyncClient(**options) as client:

        @client.event
        def bin(data: dict[str, Any]) -> None:  # noqa: A001
            assert data["a"] == attachment(data["i"], 0)
            assert data["b"] == attachment(data["i"], 1)
            received.setdefault(data["src"], []).append(data["i"])
            if sum(map(len, received.values())) == total:
                done.set()

        await client.connect(BASE_URL, transports=transports)
        await client.emit("storm")
        with trio.fail_after(10):
            await done.wait()
    assert received == {src: list(range(per_task)) for src in [f"to{t}" for t in range(4)] + ["all0", "all1"]}


async def test_call_without_timeout_is_bounded_the_trio_way(
    in_memory: tuple[socketio.AsyncServer, dict[str, Any]], autojump_clock: trio.testing.MockClock
) -> None:
    """``call(timeout=None)`` has no limit of its own: the caller's ``move_on_after`` bounds it."""
    sio, options = in_memory
    outcome: list[float] = []
    asked_at: list[float] = []
    finished = trio.Event()

    @sio.event
    async def ask(sid: str) -> None:
        asked_at.append(trio.current_time())
        with trio.move_on_after(3) as scope:
            await sio.call("never_answered", to=sid, timeout=None)
        assert scope.cancelled_caught
        outcome.append(trio.current_time() - asked_at[0])
        finished.set()

    release = trio.Event()
    async with socketio.AsyncClient(**options) as client:

        @client.event
        async def never_answered() -> None:
            await release.wait()  # python-socketio's client acknowledges when its handler returns

        await client.connect(BASE_URL, transports=["websocket"])
        await client.emit("ask")
        await finished.wait()
        release.set()
    assert outcome == [3]


async def test_call_timeout_raises_socketio_timeout_error(
    in_memory: tuple[socketio.AsyncServer, dict[str, Any]], autojump_clock: trio.testing.MockClock
) -> None:
    _, options = in_memory
    async with socketio.AsyncClient(**options) as client:
        await client.connect(BASE_URL, transports=["websocket"])
        started = trio.current_time()
        with pytest.raises(socketio.exceptions.TimeoutError):
            await client.call("nobody_listens", timeout=2)
        assert trio.current_time() - started == pytest.approx(2, abs=0.01)


def test_the_admin_ui_is_refused_with_a_clear_error() -> None:
    with pytest.raises(NotImplementedError, match="Admin UI"):
        socketio.AsyncServer().instrument(auth=False)


def test_an_asyncio_client_manager_is_refused() -> None:
    import socketio as python_socketio

    with pytest.raises(TypeError, match="message-queue managers"):
        socketio.AsyncServer(client_manager=python_socketio.AsyncManager())


def test_an_unsupported_python_socketio_is_named_at_import(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "5.11.0")
    with pytest.raises(ImportError, match=r"supports python-socketio >=5\.12,<6, but 5\.11\.0 is installed"):
        socketio._check_version()
