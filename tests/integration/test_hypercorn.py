"""The raw Engine.IO v4 protocol against our server under real hypercorn, over real sockets.

httpx plays the polling client and trio-websocket the websocket client, on
127.0.0.1 port 0 with hypercorn's trio worker: what the in-memory tests cannot
show (HTTP/1.1 framing, chunked bodies, websocket denial responses, close
codes on the wire, hypercorn's shutdown order) is checked here. The
``serve_echo`` fixture also checks, after every test, that no session is left,
each connect had exactly one disconnect and no error escaped the app.

"MUST" below quotes the Engine.IO v4 protocol
(https://github.com/socketio/socket.io/blob/main/docs/engine.io-protocol/v4-current.md).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import pytest
import trio
import trio_websocket
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Request, TextMessage
from wsproto.extensions import PerMessageDeflate

pytestmark = pytest.mark.usefixtures("hypercorn_fast_path")  # every test with and without the fast path

if TYPE_CHECKING:
    from conftest import EchoServer, OpenRawWebSocket, ServeEcho

POLLING = {"EIO": "4", "transport": "polling"}
WEBSOCKET = {"EIO": "4", "transport": "websocket"}
BINARY = bytes([0, 1, 2, 127, 128, 254, 255])
BINARY_B64 = "AAECf4D+/w=="


def error(code: int, message: str) -> dict[str, Any]:
    return {"code": code, "message": message}


async def handshake(client: httpx.AsyncClient, url: str) -> tuple[str, dict[str, Any]]:
    """Open a polling session; return its sid and the OPEN packet's data."""
    response = await client.get(url, params=POLLING)
    assert response.status_code == 200, response.text
    assert response.text[0] == "0"
    data: dict[str, Any] = json.loads(response.text[1:])
    return data["sid"], data


async def wait_get_pending(echo: EchoServer, sid: str) -> None:
    """Wait until the server holds a polling GET for ``sid`` (it arrives over a real socket)."""
    with trio.fail_after(5):
        while not echo.eio._sessions[sid].machine.get_pending:  # noqa: ASYNC110 (no event for this)
            await trio.sleep(0.001)


# -- polling ---------------------------------------------------------------------


async def test_polling_handshake_post_and_get(echo_server: EchoServer) -> None:
    """A polling session: handshake GET, a POST of a payload, a GET of the echoes.

    The server MUST answer the handshake with an OPEN packet (sid, upgrades,
    pingInterval, pingTimeout, maxPayload), a POST with 200 and ``ok``, and
    encode binary packets of a payload in base64 with a ``b`` prefix.
    """
    url = echo_server.engineio_url
    async with httpx.AsyncClient() as client:
        response = await client.get(url, params=POLLING)
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/plain; charset=UTF-8"
        assert response.text[0] == "0"
        opened = json.loads(response.text[1:])
        sid = opened["sid"]
        assert opened == {
            "sid": sid,
            "upgrades": ["websocket"],
            "pingInterval": 25000,
            "pingTimeout": 20000,
            "maxPayload": 1_000_000,
        }
        assert echo_server.connects == [sid]

        posted = await client.post(url, params={**POLLING, "sid": sid}, content=f"4héllo\x1eb{BINARY_B64}".encode())
        assert (posted.status_code, posted.text) == (200, "ok")
        polled = await client.get(url, params={**POLLING, "sid": sid})
        assert polled.status_code == 200
        assert polled.text == f"4héllo\x1eb{BINARY_B64}"
        assert await echo_server.wait_messages(sid, 2) == ["héllo", BINARY]

        closed = await client.post(url, params={**POLLING, "sid": sid}, content=b"1")
        assert (closed.status_code, closed.text) == (200, "ok")
        assert await echo_server.wait_disconnect(sid) == "client disconnect"


async def test_polling_response_is_compressed(echo_server: EchoServer) -> None:
    """A long poll response the client accepts gzipped is sent gzipped (and decodes to the payload)."""
    url = echo_server.engineio_url
    async with httpx.AsyncClient() as client:
        sid, _ = await handshake(client, url)
        message = "4" + "compressible " * 500
        await client.post(url, params={**POLLING, "sid": sid}, content=message.encode())
        polled = await client.get(url, params={**POLLING, "sid": sid}, headers={"Accept-Encoding": "gzip"})
        assert polled.headers["content-encoding"] == "gzip"
        assert int(polled.headers["content-length"]) < len(message) // 10
        assert polled.text == message
        await client.post(url, params={**POLLING, "sid": sid}, content=b"1")


@pytest.mark.parametrize(
    ("method", "params", "expected"),
    [
        ("GET", {"transport": "polling"}, error(5, "Unsupported protocol version")),
        ("GET", {"EIO": "3", "transport": "polling"}, error(5, "Unsupported protocol version")),
        ("GET", {"EIO": "4"}, error(0, "Transport unknown")),
        ("GET", {"EIO": "4", "transport": "flashsocket"}, error(0, "Transport unknown")),
        ("GET", {**POLLING, "sid": "no-such-sid"}, error(1, "Session ID unknown")),
        ("POST", {**POLLING, "sid": "no-such-sid"}, error(1, "Session ID unknown")),
        ("POST", POLLING, error(2, "Bad handshake method")),
        ("GET", {**POLLING, "j": "not-a-number"}, error(3, "Bad request")),
        ("GET", WEBSOCKET, error(3, "Bad request")),  # a websocket handshake without the Upgrade
    ],
    ids=[
        "no-EIO",
        "EIO-3",
        "no-transport",
        "bad-transport",
        "GET-bad-sid",
        "POST-bad-sid",
        "POST-handshake",
        "j",
        "ws",
    ],
)
async def test_bad_requests_get_400_with_a_json_body(
    echo_server: EchoServer, method: str, params: dict[str, str], expected: dict[str, Any]
) -> None:
    """A request the server cannot serve gets 400 and the reference server's JSON error body.

    The server MUST answer 400 when a mandatory query parameter (EIO,
    transport) is missing and when the sid is unknown.
    """
    async with httpx.AsyncClient() as client:
        response = await client.request(method, echo_server.engineio_url, params=params, content=b"")
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert response.json() == expected
    assert echo_server.connects == []


async def test_overlapping_gets_get_400_and_close_the_session(echo_server: EchoServer) -> None:
    """A second GET while one is pending is answered 400 and the session is closed.

    A polling client MUST NOT have more than one active GET; should it happen
    the server MUST return 400 and close the session (the waiting GET gets
    the CLOSE packet).
    """
    url = echo_server.engineio_url
    async with httpx.AsyncClient() as client:
        sid, _ = await handshake(client, url)
        first: list[httpx.Response] = []
        async with trio.open_nursery() as nursery:

            async def first_get() -> None:
                first.append(await client.get(url, params={**POLLING, "sid": sid}))

            nursery.start_soon(first_get)
            await wait_get_pending(echo_server, sid)
            second = await client.get(url, params={**POLLING, "sid": sid})
        assert second.status_code == 400
        assert second.json() == error(3, "Bad request")
        assert (first[0].status_code, first[0].text) == (200, "1")
        assert await echo_server.wait_disconnect(sid) == "transport error"


async def test_chunked_post_over_max_http_buffer_size_gets_413(serve_echo: ServeEcho) -> None:
    """A chunked POST (no Content-Length) is counted as it arrives: past the limit it is 413.

    The body is refused once it exceeds ``max_http_buffer_size`` (without
    reading the rest) and the session is closed as a transport error.
    """
    async with serve_echo(max_http_buffer_size=1000) as echo, httpx.AsyncClient() as client:
        url = echo.engineio_url
        sid, _ = await handshake(client, url)

        async def chunks() -> AsyncIterator[bytes]:
            yield b"4"
            for _ in range(10):
                yield b"x" * 200

        response = await client.post(url, params={**POLLING, "sid": sid}, content=chunks())
        assert response.request.headers["transfer-encoding"] == "chunked"
        assert "content-length" not in response.request.headers
        assert response.status_code == 413
        assert response.json() == error(3, "Bad request")
        assert await echo.wait_disconnect(sid) == "transport error"
        assert echo.messages[sid] == []
        after = await client.get(url, params={**POLLING, "sid": sid})
        assert after.status_code == 400


# -- websocket -------------------------------------------------------------------


async def test_websocket_only_echo(echo_server: EchoServer, open_raw_websocket: OpenRawWebSocket) -> None:
    """A websocket-only session: OPEN first, then one packet per frame, text and binary as they are.

    The server MUST send the OPEN packet (a websocket session has no
    upgrades); binary payloads travel as binary frames, without base64.
    """
    async with open_raw_websocket(echo_server.engineio_url) as ws:
        opened = await ws.get_message()
        assert isinstance(opened, str)
        assert opened[0] == "0"
        handshake_data = json.loads(opened[1:])
        sid = handshake_data["sid"]
        assert handshake_data["upgrades"] == []
        await ws.send_message("4héllo")
        assert await ws.get_message() == "4héllo"
        await ws.send_message(BINARY)
        assert await ws.get_message() == BINARY
        await ws.send_message('4{"a":[1,2]}')
        assert await ws.get_message() == '4{"a":[1,2]}'
        assert echo_server.eio.transport(sid) == "websocket"
    assert await echo_server.wait_disconnect(sid) == "transport close"


@pytest.mark.parametrize(
    ("query", "headers", "expected"),
    [
        ({"EIO": "3", "transport": "websocket"}, {}, error(5, "Unsupported protocol version")),
        ({"transport": "websocket"}, {}, error(5, "Unsupported protocol version")),
        ({"EIO": "4"}, {}, error(0, "Transport unknown")),
        ({**WEBSOCKET, "sid": "no-such-sid"}, {}, error(1, "Session ID unknown")),
        (WEBSOCKET, {"Origin": "http://evil.example"}, error(4, "Forbidden")),
    ],
    ids=["EIO-3", "no-EIO", "no-transport", "bad-sid", "bad-origin"],
)
async def test_websocket_refused_before_accept_gets_400_json(
    echo_server: EchoServer,
    open_raw_websocket: OpenRawWebSocket,
    query: dict[str, str],
    headers: dict[str, str],
    expected: dict[str, Any],
) -> None:
    """A websocket the server refuses gets an HTTP 400 with the JSON error body, never a 101.

    The protocol says the server MUST close a websocket that lacks a mandatory
    query parameter; hypercorn supports the ASGI ``websocket.http.response``
    extension, so the refusal is a proper HTTP response the client can read.
    """
    with pytest.raises(trio_websocket.ConnectionRejected) as refused:
        async with open_raw_websocket(echo_server.engineio_url, query, headers=headers):
            pytest.fail("the websocket was accepted")
    assert refused.value.status_code == 400
    assert dict(refused.value.headers)[b"content-type"] == b"application/json"
    assert refused.value.body is not None
    assert json.loads(refused.value.body) == expected
    assert echo_server.connects == []


async def test_second_websocket_for_a_session_is_closed(
    echo_server: EchoServer, open_raw_websocket: OpenRawWebSocket
) -> None:
    """A second websocket for a websocket session is accepted and closed; the first one goes on.

    A client MUST NOT open more than one websocket per session; should it
    happen, the server MUST close that websocket. The reference server accepts
    it, then closes it (a refused handshake is an error event to the ``ws`` package).
    """
    async with open_raw_websocket(echo_server.engineio_url) as ws:
        sid = json.loads(str(await ws.get_message())[1:])["sid"]
        async with open_raw_websocket(echo_server.engineio_url, {**WEBSOCKET, "sid": sid}) as second:
            with pytest.raises(trio_websocket.ConnectionClosed) as closed:
                await second.get_message()
            assert closed.value.reason is not None
            assert closed.value.reason.code == 1000
        await ws.send_message("4still here")
        assert await ws.get_message() == "4still here"


class DeflateOfferingClient:
    """A websocket client (wsproto over a trio stream) that offers permessage-deflate.

    Attributes:
        response_headers: the ``101`` response's headers, lowercase names.
        first_frame_header: the first byte of the server's first frame (FIN, RSV1 = compressed, opcode).
        accepted: the extensions wsproto agreed on.
    """

    def __init__(self, stream: trio.SocketStream, connection: WSConnection) -> None:
        self.stream = stream
        self.connection = connection
        self.response_headers: dict[bytes, bytes] = {}
        self.first_frame_header = 0
        self.accepted: list[Any] = []

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, url: str) -> AsyncIterator[DeflateOfferingClient]:
        parts = urlsplit(url)
        assert parts.hostname is not None
        assert parts.port is not None
        stream = await trio.open_tcp_stream(parts.hostname, parts.port)
        async with stream:
            client = cls(stream, WSConnection(ConnectionType.CLIENT))
            target = f"{parts.path}?EIO=4&transport=websocket"
            request = Request(host=parts.netloc, target=target, extensions=[PerMessageDeflate()])
            await stream.send_all(client.connection.send(request))
            received = b""
            while b"\r\n\r\n" not in received or received.endswith(b"\r\n\r\n"):
                # The response head, and at least the first byte of the OPEN packet's frame.
                received += await stream.receive_some()
            head, _, frames = received.partition(b"\r\n\r\n")
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                client.response_headers[name.strip().lower()] = value.strip()
            client.first_frame_header = frames[0]
            client.connection.receive_data(received)
            yield client

    async def receive_text(self) -> str:
        while True:
            for event in self.connection.events():
                if isinstance(event, AcceptConnection):
                    self.accepted = event.extensions
                elif isinstance(event, TextMessage):
                    assert event.message_finished
                    return event.data
                else:
                    raise AssertionError(f"unexpected {event!r}")
            self.connection.receive_data(await self.stream.receive_some())

    async def send_text(self, text: str) -> None:
        await self.stream.send_all(self.connection.send(TextMessage(data=text)))

    async def close(self) -> None:
        await self.stream.send_all(self.connection.send(CloseConnection(code=1000)))
        with trio.fail_after(5):
            while await self.stream.receive_some():
                pass


@pytest.mark.parametrize("compression", [True, False], ids=["compression", "no-compression"])
async def test_websocket_compression_can_be_refused(serve_echo: ServeEcho, compression: bool) -> None:
    """hypercorn accepts a client's permessage-deflate offer; ``websocket_compression=False``
    refuses it (engine.io's ``perMessageDeflate: false``): no extension in the ``101``, frames not
    compressed (RSV1 clear), and messages still flow both ways."""
    async with serve_echo(websocket_compression=compression) as echo:
        async with DeflateOfferingClient.open(echo.engineio_url) as client:
            sid = json.loads((await client.receive_text())[1:])["sid"]
            extensions = client.response_headers.get(b"sec-websocket-extensions")
            if compression:
                assert extensions is not None
                assert extensions.startswith(b"permessage-deflate")
                assert [extension.name for extension in client.accepted] == ["permessage-deflate"]
                assert client.first_frame_header == 0xC1  # FIN, RSV1 (compressed), text
            else:
                assert extensions is None
                assert client.accepted == []
                assert client.first_frame_header == 0x81  # FIN, text
            await client.send_text("4" + "compressible " * 100)
            assert await client.receive_text() == "4" + "compressible " * 100
            await client.close()
        assert await echo.wait_disconnect(sid) == "transport close"


async def test_websocket_message_over_max_http_buffer_size_closes_1009(
    serve_echo: ServeEcho, open_raw_websocket: OpenRawWebSocket
) -> None:
    """A websocket message of exactly ``max_http_buffer_size`` passes; one byte more closes with 1009.

    1009 is RFC 6455's "message too big"; the session ends as a transport error.
    """
    async with serve_echo(max_http_buffer_size=1000) as echo, open_raw_websocket(echo.engineio_url) as ws:
        sid = json.loads(str(await ws.get_message())[1:])["sid"]
        at_limit = "4" + "x" * 999
        await ws.send_message(at_limit)
        assert await ws.get_message() == at_limit
        await ws.send_message(b"y" * 1001)
        with pytest.raises(trio_websocket.ConnectionClosed) as closed:
            await ws.get_message()
        assert closed.value.reason is not None
        assert closed.value.reason.code == 1009
        assert await echo.wait_disconnect(sid) == "transport error"
        assert echo.messages[sid] == ["x" * 999]


async def test_upgrade_flushes_queued_packets_first_and_in_order(
    echo_server: EchoServer, open_raw_websocket: OpenRawWebSocket
) -> None:
    """Polling upgraded to websocket over real sockets; packets queued meanwhile come first, in order.

    On the probe the server MUST send NOOP to the pending GET and answer
    ``3probe``; on UPGRADE it takes the websocket as the transport and sends
    every packet queued during the upgrade on it, before any new one. A GET
    after the upgrade is refused.
    """
    url = echo_server.engineio_url
    async with httpx.AsyncClient() as client:
        sid, _ = await handshake(client, url)
        pending: list[httpx.Response] = []
        async with open_raw_websocket(url, {**WEBSOCKET, "sid": sid}) as ws:
            async with trio.open_nursery() as nursery:

                async def long_poll() -> None:
                    pending.append(await client.get(url, params={**POLLING, "sid": sid}))

                nursery.start_soon(long_poll)
                await wait_get_pending(echo_server, sid)
                await ws.send_message("2probe")
                assert await ws.get_message() == "3probe"
            assert (pending[0].status_code, pending[0].text) == (200, "6")

            # Still polling until UPGRADE: these are queued for the client meanwhile.
            posted = await client.post(url, params={**POLLING, "sid": sid}, content=b"4one\x1e4two")
            assert posted.text == "ok"
            await echo_server.wait_messages(sid, 2)
            await echo_server.eio.send(sid, "three")
            await echo_server.eio.send(sid, BINARY)
            assert echo_server.eio.transport(sid) == "polling"

            await ws.send_message("5")
            assert [await ws.get_message() for _ in range(4)] == ["4one", "4two", "4three", BINARY]
            assert echo_server.eio.transport(sid) == "websocket"
            await ws.send_message("4four")
            assert await ws.get_message() == "4four"

            refused = await client.get(url, params={**POLLING, "sid": sid})
            assert refused.status_code == 400
        assert await echo_server.wait_disconnect(sid) == "transport close"
        assert echo_server.messages[sid] == ["one", "two", "four"]


async def test_server_disconnect_during_an_upgrade_reaches_the_client_on_its_websocket(
    serve_echo: ServeEcho, open_raw_websocket: OpenRawWebSocket
) -> None:
    """``disconnect()`` between ``3probe`` and the client's UPGRADE: the CLOSE comes on the websocket, at once.

    A JS client sends UPGRADE as soon as its paused long poll returns, and
    polls no more; as the reference server does, the upgrade completes while
    closing and the CLOSE goes on the websocket, which is then closed cleanly.
    (It used to wait in the polling queue until ``close_timeout``.)
    """
    async with serve_echo(close_timeout=5) as echo, httpx.AsyncClient() as client:
        url = echo.engineio_url
        sid, _ = await handshake(client, url)
        async with open_raw_websocket(url, {**WEBSOCKET, "sid": sid}) as ws:
            await ws.send_message("2probe")
            assert await ws.get_message() == "3probe"
            await echo.eio.disconnect(sid)  # returns once the disconnect handler has run
            assert echo.disconnects == {sid: "server disconnect"}
            await ws.send_message("5")
            with trio.fail_after(1):  # well under close_timeout
                assert await ws.get_message() == "1"
                with pytest.raises(trio_websocket.ConnectionClosed) as closed:
                    await ws.get_message()
            assert closed.value.reason is not None
            assert closed.value.reason.code == 1000
        refused = await client.get(url, params={**POLLING, "sid": sid})
        assert refused.status_code == 400


async def test_a_post_blocked_by_backpressure_does_not_stall_the_upgrade(
    serve_echo: ServeEcho, open_raw_websocket: OpenRawWebSocket
) -> None:
    """A POST waiting for room in the outbound buffer can still finish while the session upgrades.

    To upgrade, a client pauses polling: it waits for its POST to be answered
    before it sends UPGRADE (engine.io-client does). Reproduced with the JS
    client too: 300 ordered messages with ``outbound_buffer_size=1`` (or 3,000
    with the default buffer and ``async_handlers=False``) never complete.
    """
    post_finished = trio.Event()
    async with (
        serve_echo(outbound_buffer_size=1, async_handlers=False) as echo,
        httpx.AsyncClient() as client,
        trio.open_nursery() as nursery,
    ):
        url = echo.engineio_url
        sid, _ = await handshake(client, url)

        async def post() -> None:
            response = await client.post(url, params={**POLLING, "sid": sid}, content=b"4one\x1e4two\x1e4three")
            assert response.text == "ok"
            post_finished.set()

        nursery.start_soon(post)
        await echo.wait_messages(sid, 2)  # the handler now waits for room to echo "two"
        async with open_raw_websocket(url, {**WEBSOCKET, "sid": sid}) as ws:
            await ws.send_message("2probe")
            assert await ws.get_message() == "3probe"
            with trio.move_on_after(1):
                await post_finished.wait()  # as the client does before UPGRADE
            finished_during_upgrade = post_finished.is_set()
            await ws.send_message("5")  # go on anyway, so that the test ends cleanly
            assert [await ws.get_message() for _ in range(3)] == ["4one", "4two", "4three"]
    assert finished_during_upgrade, "the POST stayed blocked until the UPGRADE packet: a client never sends it"


# -- shutdown --------------------------------------------------------------------


async def test_hypercorn_shutdown_closes_sessions_gracefully(
    serve_echo: ServeEcho, open_raw_websocket: OpenRawWebSocket
) -> None:
    """Leaving ``serve_hypercorn`` (hypercorn shutdown, ASGI lifespan included) closes every session.

    A websocket client gets its CLOSE packet (``1``) and then a clean close
    (1000); a polling client's waiting GET gets ``1``; the disconnect handlers
    see ``'server disconnect'`` and no session is left. It is quick: hypercorn
    does not have to wait out its graceful timeout (5 s) for open connections.
    """
    received: list[str | bytes] = []
    close_codes: list[int] = []
    polled: list[httpx.Response] = []

    async def websocket_client(url: str, *, task_status: trio.TaskStatus[str]) -> None:
        async with open_raw_websocket(url) as ws:
            task_status.started(json.loads(str(await ws.get_message())[1:])["sid"])
            while not ws.closed:
                with contextlib.suppress(trio_websocket.ConnectionClosed):
                    received.append(await ws.get_message())
            close_codes.append(ws.closed.code)

    async def polling_client(url: str, *, task_status: trio.TaskStatus[str]) -> None:
        async with httpx.AsyncClient() as client:
            sid, _ = await handshake(client, url)
            task_status.started(sid)
            polled.append(await client.get(url, params={**POLLING, "sid": sid}))

    async with trio.open_nursery() as nursery:
        async with serve_echo() as echo:
            ws_sid = await nursery.start(websocket_client, echo.engineio_url)
            polling_sid = await nursery.start(polling_client, echo.engineio_url)
            await wait_get_pending(echo, polling_sid)
            started_shutdown = trio.current_time()
        shutdown_seconds = trio.current_time() - started_shutdown
    assert received == ["1"]
    assert close_codes == [1000]
    assert (polled[0].status_code, polled[0].text) == (200, "1")
    assert echo.disconnects == {ws_sid: "server disconnect", polling_sid: "server disconnect"}
    assert list(echo.eio.sockets) == []
    assert shutdown_seconds < 4, f"shutdown took {shutdown_seconds:.1f} s: hypercorn waited for connections"
