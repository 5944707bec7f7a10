"""The server's life: no leaked sessions or tasks, graceful shutdown, ASGI lifespan and routing.

In memory, on virtual time (``autojump_clock``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trio.testing
from server_helpers import Poller, Recorder, make_app, open_data, start_request, ws_handshake

from trio_engineio import ASGIApp, AsyncServer, EngineIOError
from trio_engineio.protocol import Packet, PacketType
from trio_engineio.testing import (
    WebSocketClosed,
    WebSocketRejected,
    open_http_client,
    open_lifespan,
    open_websocket,
)

HANDSHAKE = {"EIO": "4", "transport": "polling"}


def all_tasks() -> list[trio.lowlevel.Task]:
    """Every task of this Trio run, walking the task tree from the root."""
    found: list[trio.lowlevel.Task] = []

    def walk(task: trio.lowlevel.Task) -> None:
        found.append(task)
        for nursery in task.child_nurseries:
            for child in nursery.child_tasks:
                walk(child)

    root = trio.lowlevel.current_root_task()
    assert root is not None
    walk(root)
    return found


def session_tasks() -> list[str]:
    """The names of the tasks that belong to a server session (``Session.run`` and its children)."""
    names: list[str] = []

    def walk(task: trio.lowlevel.Task, inside: bool) -> None:
        inside = inside or "Session" in task.name
        if inside:
            names.append(task.name)
        for nursery in task.child_nurseries:
            for child in nursery.child_tasks:
                walk(child, inside)

    root = trio.lowlevel.current_root_task()
    assert root is not None
    walk(root, False)
    return names


# -- no leaks ----------------------------------------------------------------------------------


async def test_no_session_or_task_outlives_200_sessions(autojump_clock: trio.testing.MockClock) -> None:
    """After 200 sessions of every kind (polling, websocket, upgraded; closed by the client, the
    server, the transport or a ping timeout) no session is registered and none of their tasks
    remains (design rule: one nursery per session, and nothing survives it)."""
    eio, app = make_app(ping_interval=5, ping_timeout=3)
    recorder = Recorder(eio)
    async with eio, open_http_client(app) as http:
        await trio.testing.wait_all_tasks_blocked()
        baseline = sorted(task.name for task in all_tasks())
        assert session_tasks() == []

        async def polling_closed_by_client() -> None:
            poller = Poller(http)
            await poller.handshake()
            await eio.send(poller.sid, "x")
            assert await poller.get() == [Packet(PacketType.MESSAGE, "x")]
            await poller.post(Packet(PacketType.CLOSE))

        async def polling_timed_out() -> None:
            poller = Poller(http)
            await poller.handshake()
            assert await poller.get() == [Packet(PacketType.PING)]

        async def websocket_gone() -> None:
            async with open_websocket(app) as ws:
                await ws_handshake(ws)
                assert session_tasks()  # the check below can see a session's tasks
                await ws.send("4hello")

        async def upgraded_then_server_disconnect() -> None:
            poller = Poller(http)
            await poller.handshake()
            async with open_websocket(app, query={**HANDSHAKE, "transport": "websocket", "sid": poller.sid}) as ws:
                await ws.send("2probe")
                assert await ws.receive() == "3probe"
                await ws.send("5")
                await eio.send(poller.sid, "upgraded")
                assert await ws.receive() == "4upgraded"
                await eio.disconnect(poller.sid)
                assert await ws.receive() == "1"
                await ws.wait_closed()

        kinds: list[Callable[[], Any]] = [
            polling_closed_by_client,
            polling_timed_out,
            websocket_gone,
            upgraded_then_server_disconnect,
        ]
        async with trio.open_nursery() as nursery:
            for i in range(200):
                nursery.start_soon(kinds[i % 4])
        await trio.sleep(10)  # past the ping timeout of the abandoned polling sessions
        await trio.testing.wait_all_tasks_blocked()

        assert len(recorder.connects) == 200
        assert sorted(sid for sid, _ in recorder.disconnects) == sorted(recorder.connects)
        reasons = sorted({reason for _, reason in recorder.disconnects})
        assert reasons == ["client disconnect", "ping timeout", "server disconnect", "transport close"]
        assert list(eio.sockets) == []
        assert session_tasks() == []
        assert sorted(task.name for task in all_tasks()) == baseline


async def test_leaving_the_server_leaves_no_task(autojump_clock: trio.testing.MockClock) -> None:
    """After ``async with eio:`` nothing of the server runs: not its sessions, nor background tasks."""
    eio, app = make_app()
    await trio.testing.wait_all_tasks_blocked()
    before = sorted(task.name for task in all_tasks())
    async with trio.open_nursery() as clients, eio:
        eio.start_background_task(trio.sleep_forever)
        poller = Poller(httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver"))
        await poller.handshake()
        ws_ready = trio.Event()

        async def websocket_client() -> None:
            async with open_websocket(app) as ws:
                await ws_handshake(ws)
                ws_ready.set()
                await ws.wait_closed()

        clients.start_soon(websocket_client)
        await ws_ready.wait()
    await poller.http.aclose()
    await trio.testing.wait_all_tasks_blocked()
    assert not eio.running
    assert sorted(task.name for task in all_tasks()) == before


# -- graceful shutdown --------------------------------------------------------------------------


async def test_shutdown_closes_every_session_gracefully(autojump_clock: trio.testing.MockClock) -> None:
    """Leaving ``async with eio:`` gives websocket clients their CLOSE packet and a close, answers
    pending GETs with CLOSE, runs the disconnect handlers and cancels background tasks, all at once
    when every client is reachable."""
    eio, app = make_app(close_timeout=5)
    recorder = Recorder(eio)
    frames: list[str | bytes] = []
    close_codes: list[int] = []
    async with trio.open_nursery() as clients, open_http_client(app) as http:
        async with eio:
            background = eio.start_background_task(trio.sleep_forever)
            poller = Poller(http)
            await poller.handshake()
            pending = await start_request(clients, poller.get_response)
            ready = trio.Event()

            async def websocket_client() -> None:
                async with open_websocket(app) as ws:
                    await ws_handshake(ws)
                    ready.set()
                    while True:
                        try:
                            frames.append(await ws.receive())
                        except WebSocketClosed as closed:
                            close_codes.append(closed.code)
                            return

            clients.start_soon(websocket_client)
            await ready.wait()
            await trio.sleep(1)
        assert trio.current_time() == 1
        response = await pending.result()
        assert response.text == "1"
    assert frames == ["1"]
    assert close_codes == [1000]
    assert sorted(reason for _, reason in recorder.disconnects) == ["server disconnect"] * 2
    assert background.done()
    assert background.cancelled()


async def test_shutdown_returns_within_close_timeout(autojump_clock: trio.testing.MockClock) -> None:
    """A polling client that never polls again cannot hold shutdown up: it ends at ``close_timeout``,
    its disconnect handler having run."""
    eio, app = make_app(close_timeout=3)
    recorder = Recorder(eio)
    async with open_http_client(app) as http:
        async with eio:
            poller = Poller(http)
            await poller.handshake()
            await trio.sleep(1)
        assert trio.current_time() == 1 + 3
    assert recorder.disconnects == [(poller.sid, "server disconnect")]
    assert list(eio.sockets) == []


async def test_shutdown_waits_for_a_slow_disconnect_handler(autojump_clock: trio.testing.MockClock) -> None:
    """Disconnect handlers run to completion during shutdown (within close_timeout)."""
    eio, app = make_app(close_timeout=5)
    finished: list[float] = []

    @eio.on("disconnect")
    async def disconnect(sid: str, reason: str) -> None:
        await trio.sleep(2)
        finished.append(trio.current_time())

    async with eio, open_websocket(app) as ws:
        await ws_handshake(ws)
    assert finished == [2]


async def test_shutdown_during_an_upgrade_closes_the_probe(autojump_clock: trio.testing.MockClock) -> None:
    """A session caught mid-upgrade by shutdown ends within close_timeout, and its probe websocket
    (which lives in the ASGI server's task, not the session) is closed rather than left waiting."""
    eio, app = make_app(close_timeout=5)
    recorder = Recorder(eio)
    probe_closed_at: list[float] = []
    with trio.fail_after(60):
        async with trio.open_nursery() as clients, open_http_client(app) as http:
            async with eio:
                poller = Poller(http)
                await poller.handshake()
                probed = trio.Event()

                async def probe() -> None:
                    query = {**HANDSHAKE, "transport": "websocket", "sid": poller.sid}
                    async with open_websocket(app, query=query) as ws:
                        await ws.send("2probe")
                        assert await ws.receive() == "3probe"
                        probed.set()
                        await ws.wait_closed()
                        probe_closed_at.append(trio.current_time())

                clients.start_soon(probe)
                await probed.wait()
                await trio.sleep(1)
            assert trio.current_time() == 1 + 5
    assert probe_closed_at == [6]
    assert recorder.disconnects == [(poller.sid, "server disconnect")]


@pytest.mark.parametrize("async_handlers", [True, False])
async def test_a_handler_that_never_returns_cannot_hold_shutdown(
    autojump_clock: trio.testing.MockClock, async_handlers: bool
) -> None:
    """Shutdown returns within close_timeout even while a message handler is stuck."""
    eio, app = make_app(close_timeout=3, async_handlers=async_handlers)

    @eio.on("message")
    async def message(sid: str, data: Any) -> None:
        await trio.sleep_forever()

    closed_at: list[float] = []

    async def client(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with open_websocket(app) as ws:
            await ws_handshake(ws)
            await ws.send("4stuck")
            task_status.started()
            await ws.wait_closed()
            closed_at.append(trio.current_time())

    with trio.fail_after(60):
        async with trio.open_nursery() as clients:
            async with eio:
                await clients.start(client)
                await trio.sleep(1)
            assert trio.current_time() <= 1 + 3
    assert closed_at
    assert closed_at[0] <= 1 + 3


# -- ASGI lifespan ------------------------------------------------------------------------------


@pytest.mark.parametrize("is_async", [False, True])
async def test_lifespan_runs_the_server_and_the_hooks(autojump_clock: trio.testing.MockClock, is_async: bool) -> None:
    """ASGI lifespan startup opens the server's nursery then runs ``on_startup``; shutdown runs
    ``on_shutdown`` and closes every session gracefully."""
    eio = AsyncServer()
    events: list[str] = []
    if is_async:

        async def on_startup() -> None:
            await trio.sleep(1)
            events.append(f"startup running={eio.running}")

        async def on_shutdown() -> None:
            await trio.sleep(1)
            events.append(f"shutdown running={eio.running}")

        app = ASGIApp(eio, on_startup=on_startup, on_shutdown=on_shutdown)
    else:
        app = ASGIApp(
            eio,
            on_startup=lambda: events.append(f"startup running={eio.running}"),
            on_shutdown=lambda: events.append(f"shutdown running={eio.running}"),
        )
    assert not eio.running
    async with open_lifespan(app):
        assert eio.running
        assert events == ["startup running=True"]
        async with open_websocket(app) as ws:
            await ws_handshake(ws)
    assert events == ["startup running=True", "shutdown running=True"]
    assert not eio.running


async def test_lifespan_shutdown_closes_websocket_clients(autojump_clock: trio.testing.MockClock) -> None:
    """Through lifespan shutdown, a connected websocket client gets CLOSE and a close."""
    eio, app = make_app()
    received: list[str | bytes] = []
    async with trio.open_nursery() as clients, open_lifespan(app):
        ready = trio.Event()

        async def client() -> None:
            async with open_websocket(app) as ws:
                await ws_handshake(ws)
                ready.set()
                received.append(await ws.receive())
                await ws.wait_closed()

        clients.start_soon(client)
        await ready.wait()
    assert received == ["1"]
    assert list(eio.sockets) == []


async def test_failing_on_startup_fails_the_lifespan(autojump_clock: trio.testing.MockClock) -> None:
    """An exception in ``on_startup`` is reported as ``lifespan.startup.failed`` (the app does not start)."""
    eio = AsyncServer()

    def on_startup() -> None:
        raise RuntimeError("no database")

    with pytest.raises(EngineIOError, match="no database"):
        async with open_lifespan(ASGIApp(eio, on_startup=on_startup)):
            pass
    assert not eio.running


class OtherApp:
    """An ASGI app that records what it is given: lifespan, HTTP and websocket."""

    def __init__(self) -> None:
        self.lifespan: list[str] = []
        self.requests: list[tuple[str, str]] = []
        self.server_running_at_startup: bool | None = None

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                self.lifespan.append(message["type"])
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        self.requests.append((scope["type"], scope["path"]))
        if scope["type"] == "http":
            body = b"other app"
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"9")]})
            await send({"type": "http.response.body", "body": body})
        else:
            await receive()  # websocket.connect
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.send", "text": "hello from the other app"})
            await send({"type": "websocket.close", "code": 1000})


async def test_lifespan_passes_through_to_other_asgi_app(autojump_clock: trio.testing.MockClock) -> None:
    """With other_asgi_app, lifespan still runs the server and the hooks, and the other app sees
    the lifespan events too."""
    eio = AsyncServer()
    other = OtherApp()
    hooks: list[str] = []
    app = ASGIApp(
        eio,
        other_asgi_app=other,
        on_startup=lambda: hooks.append("startup"),
        on_shutdown=lambda: hooks.append("shutdown"),
    )
    async with open_lifespan(app):
        assert eio.running
        assert other.lifespan == ["lifespan.startup"]
        assert hooks == ["startup"]
        async with open_http_client(app) as http:
            response = await http.get("/engine.io/", params=HANDSHAKE)
            assert open_data(response.text)["upgrades"] == ["websocket"]
    assert other.lifespan == ["lifespan.startup", "lifespan.shutdown"]
    assert hooks == ["startup", "shutdown"]
    assert not eio.running


# -- routing ----------------------------------------------------------------------------------------


async def test_other_asgi_app_gets_unmatched_http_and_websocket(autojump_clock: trio.testing.MockClock) -> None:
    """Requests outside engineio_path (HTTP and websocket) go to other_asgi_app."""
    eio = AsyncServer()
    other = OtherApp()
    app = ASGIApp(eio, other_asgi_app=other)
    async with eio, open_http_client(app) as http:
        response = await http.get("/api/users")
        assert (response.status_code, response.text) == (200, "other app")
        async with open_websocket(app, path="/live") as ws:
            assert await ws.receive() == "hello from the other app"
        assert (await http.get("/engine.io/", params=HANDSHAKE)).status_code == 200
    assert other.requests == [("http", "/api/users"), ("websocket", "/live")]


@pytest.mark.parametrize(
    ("engineio_path", "served", "not_served"),
    [
        ("engine.io", ["/engine.io/", "/engine.io"], ["/socket.io/", "/engine.iox/", "/"]),
        ("/socket/", ["/socket/", "/socket"], ["/engine.io/", "/sockets/"]),
        ("a/b", ["/a/b/"], ["/a/", "/b/"]),
    ],
)
async def test_engineio_path(
    autojump_clock: trio.testing.MockClock, engineio_path: str, served: list[str], not_served: list[str]
) -> None:
    """Engine.IO is served under engineio_path (slashes optional); other paths are 404."""
    eio = AsyncServer()
    app = ASGIApp(eio, engineio_path=engineio_path)
    async with eio, open_http_client(app) as http:
        for path in served:
            response = await http.get(path, params=HANDSHAKE)
            assert response.status_code == 200, path
            open_data(response.text)
        for path in not_served:
            assert (await http.get(path, params=HANDSHAKE)).status_code == 404, path


@pytest.mark.parametrize("path", ["/mount/engine.io/", "/engine.io/"])
async def test_root_path_is_honoured(autojump_clock: trio.testing.MockClock, path: str) -> None:
    """Mounted under a ``root_path``, Engine.IO is found below it (whether or not the ASGI server
    strips the prefix from ``path``)."""
    eio = AsyncServer()
    app = ASGIApp(eio)
    transport = httpx.ASGITransport(app=app, root_path="/mount")
    async with eio, httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        response = await http.get(path, params=HANDSHAKE)
        assert response.status_code == 200
        sid = open_data(response.text)["sid"]
        post = await http.post(path, params={**HANDSHAKE, "sid": sid}, content=b"4x")
        assert post.text == "ok"
        assert (await http.get("/mount/elsewhere/")).status_code == 404


async def test_unmatched_websocket_is_refused_as_not_found(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A websocket scope that matches nothing (no other app) is refused with 404 where the ASGI server
    offers the websocket denial response extension (it used to be closed, which servers answer with 403,
    "forbidden", misleading clients with a wrong path into looking for an auth problem); elsewhere closed."""
    eio = AsyncServer()
    app = ASGIApp(eio, static_files={"/": "index.html"})
    sent: list[MutableMapping[str, Any]] = []
    incoming = [{"type": "websocket.connect"}]

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    async with eio:
        await app({"type": "websocket", "path": "/", "query_string": b"", "headers": []}, receive, send)
        with pytest.raises(WebSocketRejected) as refused:
            async with open_websocket(app, path="/nothing/here"):
                pass
    assert (refused.value.status_code, refused.value.error_body) == (404, b"Not Found")
    assert [message["type"] for message in sent] == ["websocket.close"]  # no extension in that scope


async def test_unmatched_http_is_404(autojump_clock: trio.testing.MockClock) -> None:
    """Without other_asgi_app, an HTTP request that matches nothing is 404."""
    eio = AsyncServer()
    async with eio, open_http_client(ASGIApp(eio)) as http:
        assert (await http.get("/nothing")).status_code == 404


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A small static site: index.html, app.js, docs/index.html, docs/guide.txt and a secret beside it."""
    root = tmp_path / "site"
    (root / "docs").mkdir(parents=True)
    (root / "index.html").write_text("<h1>home</h1>")
    (root / "app.js").write_text("console.log(1)")
    (root / "docs" / "index.html").write_text("<h1>docs</h1>")
    (root / "docs" / "guide.txt").write_text("read me")
    (root / "logo.bin").write_bytes(b"\x89PNG")
    (tmp_path / "secret.txt").write_text("do not serve")
    return root


async def test_static_files(autojump_clock: trio.testing.MockClock, site: Path) -> None:
    """static_files maps URL prefixes to files or directories (string form), or to
    ``{"filename", "content_type"}`` (dict form); directory URLs serve the index file."""
    eio = AsyncServer()
    app = ASGIApp(
        eio,
        static_files={
            "/": str(site / "index.html"),
            "/static": str(site) + "/",
            "/logo": {"filename": str(site / "logo.bin"), "content_type": "image/png"},
        },
    )
    async with eio, open_http_client(app) as http:
        cases = [
            ("/", "<h1>home</h1>", "text/html"),
            ("/static/app.js", "console.log(1)", "application/javascript"),
            ("/static/docs/guide.txt", "read me", "text/plain"),
            ("/static/docs/", "<h1>docs</h1>", "text/html"),
            ("/static/", "<h1>home</h1>", "text/html"),
        ]
        for path, body, content_type in cases:
            response = await http.get(path)
            assert (response.status_code, response.text) == (200, body), path
            assert response.headers["content-type"] == content_type, path
        logo = await http.get("/logo")
        assert (logo.content, logo.headers["content-type"]) == (b"\x89PNG", "image/png")
        assert (await http.get("/static/missing.js")).status_code == 404
        assert (await http.get("/engine.io/", params=HANDSHAKE)).status_code == 200


async def test_static_directory_index_can_be_configured(autojump_clock: trio.testing.MockClock, site: Path) -> None:
    """The ``""`` key names the file served for directory URLs."""
    eio = AsyncServer()
    (site / "docs" / "start.html").write_text("start")
    app = ASGIApp(eio, static_files={"/": str(site) + "/", "": {"filename": "start.html", "content_type": "text/x"}})
    async with eio, open_http_client(app) as http:
        response = await http.get("/docs/")
        assert (response.text, response.headers["content-type"]) == ("start", "text/x")


@pytest.mark.parametrize(
    "path",
    ["/static/../secret.txt", "/static/docs/../../secret.txt", "/static/./app.js", "/static/..\\secret.txt"],
)
async def test_static_path_traversal_is_refused(autojump_clock: trio.testing.MockClock, site: Path, path: str) -> None:
    """A static URL that tries to leave its directory is 404 (raw paths, as a client may send them)."""
    eio = AsyncServer()
    app = ASGIApp(eio, static_files={"/static": str(site) + "/"})
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    async with eio:
        await app({"type": "http", "method": "GET", "path": path, "query_string": b"", "headers": []}, receive, send)
    assert sent[0]["status"] == 404
    assert b"do not serve" not in b"".join(message.get("body", b"") for message in sent)


async def test_attach_serves_engineio_beside_an_app(autojump_clock: trio.testing.MockClock) -> None:
    """``eio.attach(app)`` routes engineio_path to the server and everything else to the app."""
    eio = AsyncServer()
    other = OtherApp()
    app = eio.attach(other, engineio_path="realtime")
    assert isinstance(app, ASGIApp)
    async with eio, open_http_client(app) as http:
        assert (await http.get("/")).text == "other app"
        response = await http.get("/realtime/", params=HANDSHAKE)
        assert open_data(response.text)["sid"] in eio.sockets
        assert (await http.get("/engine.io/", params=HANDSHAKE)).text == "other app"


async def test_websocket_session_over_lifespan(autojump_clock: trio.testing.MockClock) -> None:
    """The whole stack as deployed: lifespan, ASGIApp routing, a websocket echo."""
    eio, app = make_app()

    @eio.on("message")
    async def echo(sid: str, data: Any) -> None:
        await eio.send(sid, data)

    async with open_lifespan(app), open_websocket(app) as ws:
        await ws_handshake(ws)
        await ws.send("4echo")
        assert await ws.receive() == "4echo"
