"""Raw clients for protocol tests and client faults: they do only what the test says."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeVar

import httpx
import trio
import trio.testing

from trio_engineio.exceptions import EngineIOError
from trio_engineio.protocol import (
    Packet,
    PacketType,
    decode_frame,
    decode_payload,
    encode_frame,
    encode_payload,
)
from trio_engineio.testing._asgi import BASE_URL, ASGIApp, WebSocketSession, open_websocket
from trio_engineio.testing._transports import InMemoryHTTPTransport

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
