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

Nothing in the library imports this module.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

import httpx
import trio
import trio.testing

from trio_engineio.asgi import ASGIApp as _EngineIOApp
from trio_engineio.client import AsyncClient
from trio_engineio.exceptions import ConnectionError, EngineIOError, WebSocketClosedError
from trio_engineio.protocol import (
    Packet,
    PacketType,
    decode_frame,
    decode_payload,
    decode_payload_bytes,
    encode_frame,
    encode_payload,
    open_packet,
    parse_query,
)
from trio_engineio.server import AsyncServer

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

ASGIApp = Any


class WebSocketRejected(ConnectionError):
    """The app refused the websocket handshake; ``status_code``/``error_body`` say how.

    A :class:`~trio_engineio.exceptions.ConnectionError`, so a client test can
    catch it as it catches a refused polling handshake.

    Example::

        with pytest.raises(WebSocketRejected) as refused:
            async with open_websocket(app, headers={"Origin": "https://evil.example"}):
                pass
        assert refused.value.error_body == {"code": 4, "message": "Forbidden"}
    """


class WebSocketClosed(EngineIOError):
    """The app closed the websocket.

    Args:
        code: the close code it sent (1006 when its handler ended without one).

    Attributes:
        code: the close code it sent.

    Example::

        with pytest.raises(WebSocketClosed) as closed:
            await websocket.receive()
        assert closed.value.code == 1009
    """

    def __init__(self, code: int) -> None:
        super().__init__(f"the websocket was closed with code {code}")
        self.code = code


class WebSocketSession:
    """The client end of an in-memory websocket to an ASGI app (see :func:`open_websocket`).

    Raw frames in and out: the Engine.IO layer is yours to speak (or see
    :class:`RawWebSocketClient`).

    Attributes:
        close_code: the code the app closed with, once it has.
        accept_headers: the headers of the app's ``websocket.accept`` (lowercase names,
            as bytes), which an ASGI server adds to its ``101`` response.

    Example::

        async with open_websocket(app) as websocket:
            open_frame = await websocket.receive()  # '0{"sid":...}'
            await websocket.send("4hello")
    """

    def __init__(
        self,
        to_app: trio.MemorySendChannel[dict[str, Any]],
        from_app: trio.MemoryReceiveChannel[dict[str, Any]],
        accept_headers: Iterable[tuple[bytes, bytes]] = (),
    ) -> None:
        self._to_app = to_app
        self._from_app = from_app
        self.close_code: int | None = None
        self.accept_headers = [(bytes(name).lower(), bytes(value)) for name, value in accept_headers]

    async def send(self, message: str | bytes) -> None:
        """Send a text (``str``) or binary (``bytes``) message to the app.

        Args:
            message: the whole message.

        Example::

            await websocket.send("2probe")
        """
        if isinstance(message, str):
            await self._to_app.send({"type": "websocket.receive", "text": message, "bytes": None})
        else:
            await self._to_app.send({"type": "websocket.receive", "bytes": message, "text": None})

    async def receive(self) -> str | bytes:
        """The next message from the app.

        Returns:
            ``str`` for a text message, ``bytes`` for binary.

        Raises:
            WebSocketClosed: the app closed the websocket (or its handler ended).

        Example::

            frame = await websocket.receive()
        """
        if self.close_code is not None:
            raise WebSocketClosed(self.close_code)
        try:
            message = await self._from_app.receive()
        except trio.EndOfChannel:
            self.close_code = 1006
            raise WebSocketClosed(1006) from None
        if message["type"] == "websocket.close":
            self.close_code = int(message.get("code", 1000))
            raise WebSocketClosed(self.close_code)
        text = message.get("text")
        if text is not None:
            return str(text)
        return bytes(message.get("bytes") or b"")

    async def wait_closed(self) -> int:
        """Discard messages until the app closes the websocket.

        Returns:
            The close code.

        Example::

            await websocket.send("x")  # not a packet
            assert await websocket.wait_closed() == 1002
        """
        while True:
            try:
                await self.receive()
            except WebSocketClosed as closed:
                return closed.code

    async def close(self, code: int = 1000) -> None:
        """Disconnect, as a client closing the websocket does (the app receives ``websocket.disconnect``).

        Args:
            code: the close code the app is told (1006: no close frame, a lost network).

        Example::

            await websocket.close()
        """
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await self._to_app.send({"type": "websocket.disconnect", "code": code})


def _headers(headers: Mapping[str, str] | None) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]


def _websocket_scope(
    path: str,
    query_string: bytes,
    headers: Mapping[str, str] | None,
    client: tuple[str, int],
    *,
    scheme: str = "ws",
    host: str = "testserver",
) -> dict[str, Any]:
    """The ASGI scope of a websocket request (``Host`` is added to ``headers`` if missing)."""
    raw_headers = _headers(headers)
    if not any(name == b"host" for name, _ in raw_headers):
        raw_headers.append((b"host", host.encode("latin-1")))
    return {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "scheme": scheme,
        "http_version": "1.1",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query_string,
        "headers": raw_headers,
        "client": client,
        "server": (host.rpartition(":")[0] or host, 80),
        "subprotocols": [],
        "extensions": {"websocket.http.response": {}},
    }


@contextlib.asynccontextmanager
async def open_websocket(
    app: ASGIApp,
    path: str = "/engine.io/",
    query: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    *,
    client: tuple[str, int] = ("127.0.0.1", 50000),
) -> AsyncIterator[WebSocketSession]:
    """Open an in-memory websocket to an ASGI app.

    No sockets and no real time: it runs under ``autojump_clock``. The websocket
    is closed (``websocket.disconnect``) when the block ends.

    Args:
        app: the ASGI application (its server must be running).
        path: the request path.
        query: the query string, default ``{"EIO": "4", "transport": "websocket"}``.
        headers: request headers (``Host: testserver`` is added if missing).
        client: the peer address the app sees.

    Yields:
        The :class:`WebSocketSession` once the app accepted.

    Raises:
        WebSocketRejected: the app refused (HTTP denial response or close before accept).

    Example::

        async with eio, open_websocket(ASGIApp(eio)) as websocket:
            assert (await websocket.receive()).startswith("0{")  # the OPEN packet
            await websocket.send("4hello")
    """
    query = {"EIO": "4", "transport": "websocket"} if query is None else query
    scope = _websocket_scope(path, urlencode(query).encode(), headers, client)
    to_app_send, to_app_receive = trio.open_memory_channel[dict[str, Any]](math.inf)
    from_app_send, from_app_receive = trio.open_memory_channel[dict[str, Any]](math.inf)

    async def run_app() -> None:
        async with from_app_send:
            await app(scope, to_app_receive.receive, from_app_send.send)

    rejection: WebSocketRejected | None = None
    failure: Exception | None = None
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_app)
        to_app_send.send_nowait({"type": "websocket.connect"})
        accept_headers: list[tuple[bytes, bytes]] = []
        rejection = await _read_handshake_answer(from_app_receive, accept_headers)
        if rejection is not None:
            nursery.cancel_scope.cancel()
        else:
            websocket = WebSocketSession(to_app_send, from_app_receive, accept_headers)
            try:
                yield websocket
            except Exception as exc:
                failure = exc
            finally:
                await websocket.close()
            if failure is not None:
                nursery.cancel_scope.cancel()
    # Raised outside the nursery, so that callers catch WebSocketRejected (or what the
    # block raised) itself rather than an ExceptionGroup wrapping it (strict exception groups).
    if rejection is not None:
        raise rejection
    if failure is not None:
        raise failure


async def _read_handshake_answer(
    from_app: trio.MemoryReceiveChannel[dict[str, Any]], accept_headers: list[tuple[bytes, bytes]] | None = None
) -> WebSocketRejected | None:
    """Read the app's answer to ``websocket.connect``: ``None`` if it accepted, else the rejection.

    The accept's headers are added to ``accept_headers``, if given.
    """
    try:
        first = await from_app.receive()
    except trio.EndOfChannel:
        return WebSocketRejected("the app ended without answering the handshake")
    if first["type"] == "websocket.http.response.start":
        body = b""
        async for message in from_app:
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        status = int(first["status"])
        try:
            error_body: Any = json.loads(body)
        except ValueError:
            error_body = body
        return WebSocketRejected(f"websocket refused with {status}", status_code=status, error_body=error_body)
    if first["type"] == "websocket.close":
        return WebSocketRejected("websocket closed before accept", status_code=403)
    assert first["type"] == "websocket.accept", first
    if accept_headers is not None:
        accept_headers.extend((bytes(name), bytes(value)) for name, value in first.get("headers", ()))
    return None


@contextlib.asynccontextmanager
async def open_http_client(app: ASGIApp, base_url: str = "http://testserver") -> AsyncIterator[httpx.AsyncClient]:
    """An ``httpx.AsyncClient`` that sends requests to ``app`` in memory (httpx's own ASGI transport).

    It does not run the app's lifespan (see :func:`open_lifespan`), and a
    request it gives up on cancels the app (:class:`InMemoryHTTPTransport`
    tells the app ``http.disconnect`` instead).

    Args:
        app: the ASGI application.
        base_url: the URL relative requests are resolved against.

    Yields:
        The client, closed when the block ends.

    Example::

        async with open_lifespan(app), open_http_client(app) as http:
            response = await http.get("/engine.io/", params={"EIO": "4", "transport": "polling"})
            assert response.text.startswith("0{")
    """
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
        yield client


@contextlib.asynccontextmanager
async def open_lifespan(app: ASGIApp) -> AsyncIterator[None]:
    """Run an ASGI app's lifespan: startup on entry, shutdown on exit.

    For an :class:`~trio_engineio.ASGIApp` this starts its server, as hypercorn does.

    Args:
        app: the ASGI application.

    Yields:
        Nothing; the app is started.

    Raises:
        EngineIOError: the app reported that startup or shutdown failed.

    Example::

        async with open_lifespan(app):
            assert app.engineio_server.running
    """
    to_app_send, to_app_receive = trio.open_memory_channel[dict[str, Any]](math.inf)
    from_app_send, from_app_receive = trio.open_memory_channel[dict[str, Any]](math.inf)
    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
    failure: EngineIOError | None = None
    async with trio.open_nursery() as nursery:
        nursery.start_soon(app, scope, to_app_receive.receive, from_app_send.send)
        await to_app_send.send({"type": "lifespan.startup"})
        started = await from_app_receive.receive()
        if started["type"] != "lifespan.startup.complete":
            failure = EngineIOError(f"lifespan startup failed: {started}")
            nursery.cancel_scope.cancel()
        else:
            try:
                yield
            finally:
                await to_app_send.send({"type": "lifespan.shutdown"})
                stopped = await from_app_receive.receive()
                if stopped["type"] != "lifespan.shutdown.complete":
                    failure = EngineIOError(f"lifespan shutdown failed: {stopped}")
    if failure is not None:
        # Raised outside the nursery, so that callers catch EngineIOError itself
        # rather than an ExceptionGroup wrapping it (Trio's strict exception groups).
        raise failure


@contextlib.asynccontextmanager
async def serve_hypercorn(app: ASGIApp, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Serve ``app`` with hypercorn's trio worker on an ephemeral port; yield ``http://host:port``.

    The server runs in a nursery inside this context and is shut down (with ASGI
    lifespan shutdown) on exit. If ``app`` serves an :class:`~trio_engineio.AsyncServer`
    (an :class:`~trio_engineio.ASGIApp`), its sessions are closed gracefully first:
    every client gets its CLOSE packet. Do not combine with ``autojump_clock``: real
    sockets need real time.

    Args:
        app: the ASGI application.
        host: the address to listen on (port 0: the system picks a free one).

    Yields:
        The base URL, e.g. ``http://127.0.0.1:41235``.

    Example::

        async def test_real_sockets():  # no autojump_clock
            async with serve_hypercorn(app) as url, trio_engineio.AsyncClient() as client:
                await client.connect(url)
    """
    from hypercorn.config import Config
    from hypercorn.trio import serve

    from trio_engineio.server import AsyncServer

    config = Config()
    config.bind = [f"{host}:0"]
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 5
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(
            lambda task_status: serve(app, config, shutdown_trigger=shutdown.wait, task_status=task_status)
        )
        try:
            yield binds[0]
        finally:
            try:
                # hypercorn drains open connections (for up to graceful_timeout) *before*
                # it runs ASGI lifespan shutdown, so the AsyncServer.shutdown() that lifespan
                # triggers would find every websocket and long-poll already cut off: clients
                # would wait 5 s and then see the TCP connection drop, with no CLOSE packet.
                # Close the Engine.IO sessions first, as a deployment's shutdown trigger should.
                engineio_server = getattr(app, "engineio_server", None)
                if isinstance(engineio_server, AsyncServer) and engineio_server.running:
                    await engineio_server.shutdown()
            finally:
                shutdown.set()


# -- HTTP in memory, with client disconnects ---------------------------------------------------

BASE_URL = "http://testserver"
"""The URL in-memory clients connect to; the host is never resolved, so any would do.

Example::

    async with eio, open_client(eio) as client:
        await client.connect(BASE_URL)
"""


class InMemoryHTTPTransport(httpx.AsyncBaseTransport):
    """An httpx transport that sends requests to an ASGI app in memory.

    Like ``httpx.ASGITransport``, except for a request that is cancelled while
    the app still answers it (a timeout, an aborted long-poll, a client
    shutting down): the app is told ``http.disconnect``, as a real server tells
    it when the client goes away, and the request waits (shielded, at most
    ``close_timeout`` seconds) for the app to finish, instead of cancelling the
    app in the middle of its work.

    Args:
        app: the ASGI application.
        client: the peer address the app sees.
        close_timeout: seconds an app may take to finish after a disconnect
            before it is cancelled.

    Example::

        transport = InMemoryHTTPTransport(app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
            response = await http.get("/engine.io/", params={"EIO": "4", "transport": "polling"})
    """

    def __init__(
        self, app: ASGIApp, *, client: tuple[str, int] = ("127.0.0.1", 50000), close_timeout: float = 5
    ) -> None:
        self.app = app
        self.client = client
        self.close_timeout = close_timeout

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Run the app on ``request``; return its response once complete.

        Called by ``httpx.AsyncClient``; you do not call it yourself.

        Args:
            request: the request.

        Returns:
            The complete response.

        Raises:
            httpx.RemoteProtocolError: the app ended without a complete response.
            Exception: whatever the app raised.

        Example::

            async with httpx.AsyncClient(transport=InMemoryHTTPTransport(app), base_url=BASE_URL) as http:
                response = await http.get("/engine.io/", params={"EIO": "4", "transport": "polling"})
        """
        assert isinstance(request.stream, httpx.AsyncByteStream)
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(name.lower(), value) for name, value in request.headers.raw],
            "scheme": request.url.scheme,
            "path": request.url.path,
            "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query,
            "server": (request.url.host, request.url.port),
            "client": self.client,
            "root_path": "",
        }
        body_chunks = request.stream.__aiter__()
        request_complete = False
        disconnected = trio.Event()
        response_complete = trio.Event()
        status: int | None = None
        headers: list[tuple[bytes, bytes]] = []
        body: list[bytes] = []
        failure: list[Exception] = []

        async def receive() -> dict[str, Any]:
            nonlocal request_complete
            if request_complete:
                await disconnected.wait()
                return {"type": "http.disconnect"}
            try:
                chunk = await body_chunks.__anext__()
            except StopAsyncIteration:
                request_complete = True
                return {"type": "http.request", "body": b"", "more_body": False}
            return {"type": "http.request", "body": chunk, "more_body": True}

        async def send(message: Mapping[str, Any]) -> None:
            nonlocal status, headers
            if disconnected.is_set():
                return  # the client is gone: what the app still sends goes nowhere
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                body.append(message.get("body", b""))
                if not message.get("more_body", False):
                    response_complete.set()

        app_scope = trio.CancelScope(shield=True)

        async def run_app() -> None:
            with app_scope:
                try:
                    await self.app(scope, receive, send)
                except Exception as exc:
                    failure.append(exc)
            response_complete.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_app)
            try:
                await response_complete.wait()
            finally:
                if not disconnected.is_set():
                    disconnected.set()  # the app's next receive() says the client left
                    app_scope.deadline = trio.current_time() + self.close_timeout
        if failure:
            raise failure[0]
        if status is None or not response_complete.is_set():
            raise httpx.RemoteProtocolError("the app ended without a complete response", request=request)
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(b"".join(body)), request=request)


# -- the AsyncClient in memory -------------------------------------------------------------------


class InMemoryClientWebSocket:
    """The client end of an in-memory websocket: a :class:`~trio_engineio.client.ClientWebSocket`.

    Made by :class:`InMemoryWebSocketConnector`; the app runs in a task of the
    nursery the client gave the connector.

    Example::

        async with trio.open_nursery() as nursery:
            websocket = await InMemoryWebSocketConnector(app).connect(
                nursery, "ws://testserver/engine.io/?EIO=4&transport=websocket", headers={}, time_limit=5
            )
            print(await websocket.receive())  # the OPEN packet
            await websocket.aclose()
    """

    def __init__(
        self,
        connector: InMemoryWebSocketConnector,
        session: WebSocketSession,
        app_scope: trio.CancelScope,
        app_done: trio.Event,
        close_timeout: float,
    ) -> None:
        self._connector = connector
        self._session = session
        self._app_scope = app_scope
        self._app_done = app_done
        self._close_timeout = close_timeout
        self._closed = False

    async def send(self, frame: str | bytes) -> None:
        """Send one message to the app (lost without a trace during a partition).

        Args:
            frame: the whole message: ``str`` for text, ``bytes`` for binary.

        Raises:
            WebSocketClosedError: the websocket is closed.

        Example::

            await websocket.send("4hello")
        """
        code = self._session.close_code
        if self._closed or code is not None:
            raise WebSocketClosedError(f"the websocket is closed (code {code})", code=code)
        if self._connector.partitioned:
            await trio.lowlevel.checkpoint()
            return
        try:
            await self._session.send(frame)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise WebSocketClosedError("the app has ended", code=None) from exc

    async def receive(self) -> str | bytes:
        """The next message from the app (nothing ever arrives during a partition, not even a close).

        Returns:
            ``str`` for a text message, ``bytes`` for binary.

        Raises:
            WebSocketClosedError: the app closed the websocket, or ended.

        Example::

            frame = await websocket.receive()
        """
        if self._closed:
            raise WebSocketClosedError("the websocket is closed", code=None)
        if self._connector.partitioned:
            await trio.sleep_forever()
        try:
            frame = await self._session.receive()
        except WebSocketClosed as closed:
            if self._connector.partitioned:
                await trio.sleep_forever()
            code = None if closed.code == 1006 else closed.code
            raise WebSocketClosedError(f"the websocket closed with code {closed.code}", code=code) from closed
        if self._connector.partitioned:
            await trio.sleep_forever()
        return frame

    async def aclose(self, *, polite: bool = True) -> None:
        """Disconnect, and wait (at most ``time_limit``) for the app's handler to end; idempotent.

        The app is told ``websocket.disconnect`` (code 1000 if ``polite``, else
        1006), except during a partition, where it hears nothing; a handler
        still running after ``time_limit`` is cancelled.

        Args:
            polite: a normal close (1000) rather than a lost connection (1006).

        Example::

            await websocket.aclose(polite=False)
        """
        if self._closed:
            return
        self._closed = True
        with trio.CancelScope(shield=True):
            if not self._connector.partitioned:
                await self._session.close(1000 if polite else 1006)
            with trio.move_on_after(self._close_timeout):
                await self._app_done.wait()
            self._app_scope.cancel()


class InMemoryWebSocketConnector:
    """A :class:`~trio_engineio.client.WebSocketConnector` that reaches an ASGI app in memory.

    Give it to :class:`~trio_engineio.AsyncClient` as ``websocket_connector``
    (:func:`open_client` does). Each websocket runs the app in a task of the
    client's connection, with the ASGI websocket messages passed over memory
    channels: no sockets, so it runs under ``autojump_clock``.

    Args:
        app: the ASGI application (its server must be running).
        client: the peer address the app sees.

    Attributes:
        partitioned: whether :meth:`partition` was called.

    Example::

        connector = InMemoryWebSocketConnector(app)
        async with open_client(app, websocket_connector=connector) as client:
            await client.connect(BASE_URL, transports=["websocket"])
            connector.partition()  # from now on both ends hear nothing
    """

    def __init__(self, app: ASGIApp, *, client: tuple[str, int] = ("127.0.0.1", 50000)) -> None:
        self.app = app
        self.client = client
        self.partitioned = False

    def partition(self) -> None:
        """Cut the network: every websocket of this connector loses every message, both ways.

        Nothing is closed and no error is raised: the client and the app find
        out only through their timers (the client's ping timeout, the server's
        unanswered PING), as when a cable is pulled. When the client finally
        closes its websocket, the app is not told; its handler is cancelled
        after the client's ``request_timeout`` unless it ended by itself.

        Example::

            connector.partition()
            await client.wait()  # the client's watchdog ends the connection
            assert disconnect_reasons == [trio_engineio.CloseReason.PING_TIMEOUT]
        """
        self.partitioned = True

    async def connect(
        self, nursery: trio.Nursery, url: str, *, headers: Mapping[str, str], time_limit: float
    ) -> InMemoryClientWebSocket:
        """Run the app on a websocket request for ``url``; see :meth:`~trio_engineio.client.WebSocketConnector.connect`.

        Args:
            nursery: where the app's task runs (the client's connection nursery).
            url: the websocket URL; its host becomes the ``Host`` header.
            headers: the handshake headers.
            time_limit: seconds the app has to accept, and to end after a close.

        Returns:
            The accepted :class:`InMemoryClientWebSocket`.

        Raises:
            WebSocketRejected: the app refused the websocket (a ``ConnectionError``
                with ``status_code`` and ``error_body``).
            ConnectionError: the app did not answer within ``time_limit``.

        Example::

            client = trio_engineio.AsyncClient(websocket_connector=InMemoryWebSocketConnector(app))
        """
        parts = urlsplit(url)
        scope = _websocket_scope(
            parts.path or "/", parts.query.encode(), headers, self.client, scheme=parts.scheme, host=parts.netloc
        )
        to_app_send, to_app_receive = trio.open_memory_channel[dict[str, Any]](math.inf)
        from_app_send, from_app_receive = trio.open_memory_channel[dict[str, Any]](math.inf)
        app_scope = trio.CancelScope()
        app_done = trio.Event()

        async def run_app() -> None:
            try:
                with app_scope:
                    async with from_app_send:
                        await self.app(scope, to_app_receive.receive, from_app_send.send)
            finally:
                to_app_receive.close()
                app_done.set()

        nursery.start_soon(run_app)
        to_app_send.send_nowait({"type": "websocket.connect"})
        try:
            with trio.move_on_after(time_limit):
                rejection = await _read_handshake_answer(from_app_receive)
                if rejection is not None:
                    raise rejection
                session = WebSocketSession(to_app_send, from_app_receive)
                return InMemoryClientWebSocket(self, session, app_scope, app_done, time_limit)
        except BaseException:
            app_scope.cancel()
            raise
        app_scope.cancel()
        raise ConnectionError(f"the websocket handshake with {parts.netloc} timed out")


@contextlib.asynccontextmanager
async def open_client(app: ASGIApp | AsyncServer, **client_options: Any) -> AsyncIterator[AsyncClient]:
    """An :class:`~trio_engineio.AsyncClient` wired to an app in memory, inside its ``async with`` block.

    Polling goes through an :class:`InMemoryHTTPTransport`, websockets through
    an :class:`InMemoryWebSocketConnector`: every transport, the upgrade
    included, works without sockets and under ``autojump_clock``. The client
    is not connected yet: call ``await client.connect(BASE_URL)`` (any
    ``http://`` URL works).

    Args:
        app: the ASGI app, or an :class:`~trio_engineio.AsyncServer` (served by
            an :class:`~trio_engineio.ASGIApp`). Its server must be running
            (``async with eio:`` or :func:`open_lifespan`).
        client_options: :class:`~trio_engineio.AsyncClient`'s arguments;
            ``http_session`` and ``websocket_connector`` replace the in-memory ones.

    Yields:
        The client; it is disconnected and closed when the block ends.

    Example::

        async def test_echo(autojump_clock):
            eio = trio_engineio.AsyncServer()
            eio.on("message", lambda sid, data: eio.send(sid, data))
            async with eio, open_client(eio) as client:
                await client.connect(BASE_URL)
                await client.send("hello")
                assert await client.receive() == "hello"
    """
    asgi_app: ASGIApp = _EngineIOApp(app) if isinstance(app, AsyncServer) else app
    async with httpx.AsyncClient(transport=InMemoryHTTPTransport(asgi_app), base_url=BASE_URL) as http:
        client_options.setdefault("http_session", http)
        client_options.setdefault("websocket_connector", InMemoryWebSocketConnector(asgi_app))
        async with AsyncClient(**client_options) as client:
            yield client


class SilentServer:
    """An ASGI app that accepts Engine.IO connections, then never sends another packet.

    What a client meets when the server hangs, or the network silently drops
    everything: after the OPEN packet there is no PING, no message, no CLOSE.
    Polling GETs wait until the client gives up, POSTs are answered ``ok``,
    websockets stay open, and no upgrade is offered. What clients send is kept.

    Args:
        ping_interval: the ``pingInterval`` advertised, in seconds.
        ping_timeout: the ``pingTimeout`` advertised, in seconds.
        max_payload: the ``maxPayload`` advertised, in bytes.

    Attributes:
        sids: the session ids handed out, in order.
        received: the packets clients sent, in order.

    Example::

        async def test_client_notices_a_dead_server(autojump_clock):
            async with open_client(SilentServer(ping_interval=25, ping_timeout=20)) as client:
                await client.connect(BASE_URL, transports=["websocket"])
                await client.wait()
                assert trio.current_time() == 45  # pingInterval + pingTimeout after OPEN
    """

    def __init__(self, *, ping_interval: float = 25, ping_timeout: float = 20, max_payload: int = 1_000_000) -> None:
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.max_payload = max_payload
        self.sids: list[str] = []
        self.received: list[Packet] = []

    def _open_packet(self) -> Packet:
        sid = f"silent{len(self.sids)}"
        self.sids.append(sid)
        return open_packet(
            sid,
            upgrades=[],
            ping_interval_ms=round(self.ping_interval * 1000),
            ping_timeout_ms=round(self.ping_timeout * 1000),
            max_payload=self.max_payload,
        )

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """The ASGI entry point (``lifespan``, ``http`` and ``websocket``).

        Args:
            scope: the ASGI scope.
            receive: the ASGI receive callable.
            send: the ASGI send callable.

        Example::

            server = SilentServer()
            async with open_client(server) as client:
                await client.connect(BASE_URL)
                assert server.sids == [client.sid]
        """
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        if scope["type"] == "websocket":
            if (await receive())["type"] != "websocket.connect":
                return
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.send", "text": encode_frame(self._open_packet())})
            while True:
                message = await receive()
                if message["type"] != "websocket.receive":
                    return
                frame = message.get("text")
                with contextlib.suppress(EngineIOError):
                    self.received.append(decode_frame(frame if frame is not None else message.get("bytes") or b""))
        query = parse_query(scope.get("query_string", b""))
        request_body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            request_body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        if "sid" not in query:
            body = encode_payload([self._open_packet()]).encode()
        elif scope["method"] == "GET":
            while (await receive())["type"] != "http.disconnect":
                pass
            return
        else:
            with contextlib.suppress(EngineIOError):
                self.received.extend(decode_payload_bytes(request_body))
            body = b"ok"
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain; charset=UTF-8")],
            }
        )
        await send({"type": "http.response.body", "body": body})


# -- raw clients, for protocol tests and client faults --------------------------------------------

_RawPolling = TypeVar("_RawPolling", bound="RawPollingClient")


class PendingGet:
    """A long-polling GET running in a nursery; see :meth:`RawPollingClient.start_get`.

    Example::

        async with trio.open_nursery() as nursery:
            pending = await poller.start_get(nursery)
            await eio.send(poller.sid, "hello")
            response = await pending.response()
        assert response.text == "4hello"
    """

    def __init__(self) -> None:
        self._scope = trio.CancelScope()
        self._response: httpx.Response | None = None
        self.done = trio.Event()
        """Set when the GET was answered or aborted."""

    async def _run(self, request: Callable[[], Awaitable[httpx.Response]]) -> None:
        try:
            with self._scope:
                self._response = await request()
        finally:
            self.done.set()

    def abort(self) -> None:
        """Give up on the GET, as a client closing its connection does.

        Over :class:`InMemoryHTTPTransport` (:meth:`RawPollingClient.open` uses
        it) the app is told ``http.disconnect``.

        Example::

            pending.abort()
            assert await pending.response() is None
        """
        self._scope.cancel()

    async def response(self) -> httpx.Response | None:
        """Wait for the GET to end.

        Returns:
            Its response, or ``None`` if it was aborted first.

        Example::

            response = await pending.response()
        """
        await self.done.wait()
        return self._response


class RawPollingClient:
    """A long-polling client that does what the test says and nothing more.

    Nothing happens behind the test's back: PINGs are not answered, GETs are
    sent when asked. So a client that stops answering pings is one the test
    does not make :meth:`post` a PONG; the faults are one call each:
    :meth:`start_get` then :meth:`PendingGet.abort` (an aborted poll),
    :meth:`post_oversize`, :meth:`post_malformed`, and :meth:`open_probe` then
    :meth:`RawWebSocketClient.vanish` (a client vanishing mid-upgrade).

    Args:
        http: the HTTP client to send requests with.
        path: the Engine.IO path.
        app: the ASGI app, for :meth:`open_probe` (:meth:`open` sets it).

    Attributes:
        sid: the session id, once :meth:`handshake` succeeded.
        open_data: the OPEN packet's data, once :meth:`handshake` succeeded.
        handshake_response: the response of the handshake request.

    Example::

        async with eio, RawPollingClient.open(app) as poller:
            await poller.handshake()
            assert await poller.get() == [Packet(PacketType.PING)]  # at pingInterval
            response = await poller.get_response()  # no PONG: closed at +pingTimeout
            assert response.text == "1"
    """

    def __init__(self, http: httpx.AsyncClient, path: str = "/engine.io/", *, app: ASGIApp | None = None) -> None:
        self.http = http
        self.path = path
        self.app = app
        self.sid = ""
        self.open_data: dict[str, Any] = {}
        self.handshake_response: httpx.Response | None = None

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls: type[_RawPolling], app: ASGIApp, path: str = "/engine.io/") -> AsyncIterator[_RawPolling]:
        """A client on a new in-memory HTTP client (an :class:`InMemoryHTTPTransport`) to ``app``.

        Args:
            app: the ASGI app (its server must be running).
            path: the Engine.IO path.

        Yields:
            The client, before its handshake.

        Example::

            async with eio, RawPollingClient.open(ASGIApp(eio)) as poller:
                await poller.handshake()
        """
        async with httpx.AsyncClient(transport=InMemoryHTTPTransport(app), base_url=BASE_URL) as http:
            yield cls(http, path, app=app)

    def params(self, **extra: str) -> dict[str, str]:
        """The query of a request in this session.

        Args:
            extra: more query parameters.

        Returns:
            ``EIO``, ``transport``, ``sid``, then ``extra``.

        Example::

            response = await poller.http.get(poller.path, params=poller.params(j="0"))  # JSONP
        """
        return {"EIO": "4", "transport": "polling", "sid": self.sid, **extra}

    async def handshake(self, headers: Mapping[str, str] | None = None, **query: str) -> dict[str, Any]:
        """Open a session.

        Args:
            headers: request headers.
            query: extra query parameters.

        Returns:
            The OPEN packet's data (``sid``, ``pingInterval``, ...).

        Raises:
            EngineIOError: the answer is not ``200`` with an OPEN packet.

        Example::

            data = await poller.handshake(headers={"Authorization": "Bearer secret"})
            assert data["upgrades"] == ["websocket"]
        """
        response = await self.http.get(self.path, params={"EIO": "4", "transport": "polling", **query}, headers=headers)
        if response.status_code != 200 or response.text[:1] != "0":
            raise EngineIOError(f"handshake refused: {response.status_code} {response.text!r}")
        self.handshake_response = response
        self.open_data = json.loads(response.text[1:])
        self.sid = self.open_data["sid"]
        return self.open_data

    async def get_response(self, **query: str) -> httpx.Response:
        """A polling GET in this session, whatever its answer.

        Args:
            query: extra query parameters.

        Returns:
            The response.

        Example::

            response = await poller.get_response()
            assert response.status_code == 400  # after the session closed
        """
        return await self.http.get(self.path, params=self.params(**query))

    async def get(self) -> list[Packet]:
        """A polling GET that must be answered ``200``.

        Returns:
            The packets it carried.

        Raises:
            EngineIOError: another status.

        Example::

            assert await poller.get() == [Packet(PacketType.PING)]
        """
        response = await self.get_response()
        if response.status_code != 200:
            raise EngineIOError(f"GET answered {response.status_code} {response.text!r}")
        return decode_payload(response.text)

    async def post_response(self, body: str | bytes, **query: str) -> httpx.Response:
        """A polling POST of a raw body, whatever its answer.

        Args:
            body: the body, ``str`` (sent as UTF-8) or ``bytes``.
            query: extra query parameters.

        Returns:
            The response.

        Example::

            response = await poller.post_response("4hello")
            assert response.text == "ok"
        """
        content = body.encode() if isinstance(body, str) else body
        return await self.http.post(self.path, params=self.params(**query), content=content)

    async def post_chunked(self, body: httpx.AsyncByteStream, **query: str) -> httpx.Response:
        """A polling POST whose body is streamed, with no ``Content-Length``.

        Args:
            body: the body, as an ``httpx.AsyncByteStream``.
            query: extra query parameters.

        Returns:
            The response.

        Example::

            class Chunks(httpx.AsyncByteStream):
                async def __aiter__(self):
                    yield b"4hel"
                    yield b"lo"

            response = await poller.post_chunked(Chunks())
        """
        request = self.http.build_request("POST", self.path, params=self.params(**query))
        request.stream = body
        return await self.http.send(request)

    async def post(self, *packets: Packet) -> None:
        """A polling POST of ``packets`` that must be answered ``200 ok``.

        Args:
            packets: the packets, sent as one payload.

        Raises:
            EngineIOError: another answer.

        Example::

            await poller.post(Packet(PacketType.PONG), Packet(PacketType.MESSAGE, "hi"))
        """
        response = await self.post_response(encode_payload(packets))
        if response.status_code != 200 or response.text != "ok":
            raise EngineIOError(f"POST answered {response.status_code} {response.text!r}")

    async def start_get(self, nursery: trio.Nursery) -> PendingGet:
        """Start a GET in ``nursery``; return once it waits in the app (every task is blocked).

        Args:
            nursery: where the GET runs.

        Returns:
            The :class:`PendingGet`.

        Example::

            async with trio.open_nursery() as nursery:
                pending = await poller.start_get(nursery)
                pending.abort()  # the client gives up on the poll
            assert await pending.response() is None
        """
        pending = PendingGet()
        nursery.start_soon(pending._run, self.get_response)
        await trio.testing.wait_all_tasks_blocked()
        return pending

    async def post_oversize(self, size: int | None = None) -> httpx.Response:
        """POST one MESSAGE packet ``size`` bytes long (default: one more than ``maxPayload``).

        Args:
            size: the body's size in bytes.

        Returns:
            The response (``413`` from a server enforcing its limit).

        Example::

            assert (await poller.post_oversize()).status_code == 413
        """
        size = self.open_data["maxPayload"] + 1 if size is None else size
        return await self.post_response("4" + "x" * (size - 1))

    async def post_malformed(self, body: str | bytes = "x") -> httpx.Response:
        """POST a body that is not a valid payload (by default ``x``, an unknown packet type).

        Args:
            body: the body.

        Returns:
            The response (``400`` from our server, which closes the session).

        Example::

            assert (await poller.post_malformed()).status_code == 400
        """
        return await self.post_response(body)

    @contextlib.asynccontextmanager
    async def open_probe(self) -> AsyncIterator[RawWebSocketClient]:
        """Start upgrading this session: open its websocket and exchange ``2probe`` / ``3probe``.

        Then :meth:`RawWebSocketClient.upgrade` completes the upgrade and
        :meth:`RawWebSocketClient.vanish` drops the websocket mid-upgrade;
        leaving the block closes it normally.

        Yields:
            The probe websocket, after the server answered ``3probe``.

        Raises:
            EngineIOError: the server did not answer the probe with ``3probe``.
            WebSocketRejected: the server refused the websocket.

        Example::

            async with poller.open_probe() as probe:
                await probe.vanish()  # polling goes on
        """
        if self.app is None:
            raise EngineIOError("open_probe needs the app: create the client with RawPollingClient.open(app)")
        query = {"EIO": "4", "transport": "websocket", "sid": self.sid}
        async with open_websocket(self.app, self.path, query) as websocket:
            probe = RawWebSocketClient(websocket, self.open_data)
            await probe.send_packet(Packet(PacketType.PING, "probe"))
            answer = await probe.receive_packet()
            if answer != Packet(PacketType.PONG, "probe"):
                raise EngineIOError(f"the probe was answered {answer!r}")
            yield probe


class RawWebSocketClient:
    """A websocket Engine.IO client that does what the test says and nothing more.

    PINGs are not answered unless the test sends the PONG, so a client that
    stops answering pings is one the test stops answering for. The faults:
    :meth:`send_oversize`, :meth:`send_malformed`, :meth:`vanish`.

    Args:
        websocket: the in-memory websocket (see :func:`open_websocket`).
        open_data: the session's OPEN data.

    Attributes:
        websocket: the :class:`WebSocketSession`, for raw frames.
        open_data: the session's OPEN data.
        sid: the session id.

    Example::

        async with eio, RawWebSocketClient.open(app) as ws:
            assert await ws.receive_packet() == Packet(PacketType.PING)
            await ws.send_oversize()
            assert await ws.wait_closed() == 1009
    """

    def __init__(self, websocket: WebSocketSession, open_data: dict[str, Any]) -> None:
        self.websocket = websocket
        self.open_data = open_data
        self.sid: str = open_data.get("sid", "")

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        app: ASGIApp,
        path: str = "/engine.io/",
        headers: Mapping[str, str] | None = None,
        **query: str,
    ) -> AsyncIterator[RawWebSocketClient]:
        """Open a websocket-only session and read its OPEN packet.

        Args:
            app: the ASGI app (its server must be running).
            path: the Engine.IO path.
            headers: request headers.
            query: extra query parameters.

        Yields:
            The client; its websocket is closed normally when the block ends.

        Raises:
            WebSocketRejected: the app refused the websocket.
            EngineIOError: the first message is not an OPEN packet.

        Example::

            async with eio, RawWebSocketClient.open(ASGIApp(eio)) as ws:
                print(ws.sid, ws.open_data["pingInterval"])
        """
        async with open_websocket(app, path, {"EIO": "4", "transport": "websocket", **query}, headers) as websocket:
            first = decode_frame(await websocket.receive())
            if first.type is not PacketType.OPEN or not isinstance(first.data, str):
                raise EngineIOError(f"expected an OPEN packet, got {first!r}")
            yield cls(websocket, json.loads(first.data))

    async def send(self, frame: str | bytes) -> None:
        """Send a raw message.

        Args:
            frame: the whole message: ``str`` for text, ``bytes`` for binary.

        Example::

            await ws.send("4hello")
        """
        await self.websocket.send(frame)

    async def receive(self) -> str | bytes:
        """The next raw message.

        Returns:
            ``str`` for text, ``bytes`` for binary.

        Raises:
            WebSocketClosed: the app closed the websocket.

        Example::

            assert await ws.receive() == "2"  # a PING
        """
        return await self.websocket.receive()

    async def send_packet(self, packet: Packet) -> None:
        """Send one packet.

        Args:
            packet: the packet.

        Example::

            await ws.send_packet(Packet(PacketType.PONG))
        """
        await self.websocket.send(encode_frame(packet))

    async def receive_packet(self) -> Packet:
        """The next packet.

        Returns:
            The decoded packet.

        Raises:
            WebSocketClosed: the app closed the websocket.

        Example::

            assert await ws.receive_packet() == Packet(PacketType.MESSAGE, "hello")
        """
        return decode_frame(await self.websocket.receive())

    async def wait_closed(self) -> int:
        """Read and drop everything (answering nothing) until the app closes the websocket.

        Returns:
            The close code.

        Example::

            await ws.send_malformed()
            assert await ws.wait_closed() == 1002
        """
        return await self.websocket.wait_closed()

    async def upgrade(self) -> None:
        """Complete an upgrade: send UPGRADE (``5``) on the probe websocket.

        Example::

            async with poller.open_probe() as probe:
                await probe.upgrade()  # the websocket is now the session's transport
        """
        await self.send_packet(Packet(PacketType.UPGRADE))

    async def send_oversize(self, size: int | None = None) -> None:
        """Send one MESSAGE packet ``size`` bytes long (default: one more than ``maxPayload``).

        Our server closes the websocket with code 1009.

        Args:
            size: the message's size in bytes.

        Example::

            await ws.send_oversize()
            assert await ws.wait_closed() == 1009
        """
        size = self.open_data["maxPayload"] + 1 if size is None else size
        await self.websocket.send("4" + "x" * (size - 1))

    async def send_malformed(self, frame: str | bytes = "x") -> None:
        """Send a message that is not a packet (by default ``x``, an unknown packet type).

        Our server closes the websocket with code 1002.

        Args:
            frame: the message.

        Example::

            await ws.send_malformed("")
            assert await ws.wait_closed() == 1002
        """
        await self.websocket.send(frame)

    async def vanish(self) -> None:
        """Drop the websocket without a close frame (code 1006), as a client that lost its network.

        Example::

            async with poller.open_probe() as probe:
                await probe.vanish()  # the upgrade is abandoned, polling goes on
        """
        await self.websocket.close(1006)
