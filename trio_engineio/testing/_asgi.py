"""The in-memory ASGI driver: websocket sessions, HTTP clients and lifespan, without sockets."""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any
from urllib.parse import urlencode

import httpx
import trio

from trio_engineio.exceptions import ConnectionError, EngineIOError

ASGIApp = Any


# The URL in-memory clients connect to; documented where it is public (trio_engineio.testing).
BASE_URL = "http://testserver"


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
