"""The AsyncClient in memory: HTTP and websocket transports that reach an ASGI app without sockets."""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
import trio

from trio_engineio.asgi import ASGIApp as _EngineIOApp
from trio_engineio.client import AsyncClient
from trio_engineio.exceptions import ConnectionError, WebSocketClosedError
from trio_engineio.server import AsyncServer
from trio_engineio.testing._asgi import (
    BASE_URL,
    ASGIApp,
    WebSocketClosed,
    WebSocketSession,
    _read_handshake_answer,
    _websocket_scope,
)


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
