"""The crossing-close reproducer of hypercorn's trio worker crash (see docs/hypercorn.rst).

``app`` is an Engine.IO echo server whose message handler answers ``"bye"`` with
a burst of messages. :func:`cross_close` is a raw websocket client (wsproto over
a trio TCP stream) that sends ``4bye``, waits for the burst to start, then sends
an invalid packet and its close frame in one TCP write: hypercorn's reader
answers the client's close while our session is writing, and the invalid
packet makes our app end the websocket (a server-side close) at that instant:
the two closes cross. Without the worker fixes, hypercorn
0.18's ``send_eof`` (outside ``send_lock``) meets that answer and
``trio.BusyResourceError`` ends the worker.

It is also the app: ``hypercorn --worker-class trio
tests.integration.crossing_close:app`` (``CROSSING_CLOSE_MODE`` picks the fixes).
"""

from __future__ import annotations

import json
import os
from urllib.parse import urlsplit

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Message, Request, TextMessage

from trio_engineio import ASGIApp, AsyncServer
from trio_engineio._http import Receive, Scope, Send

MODE = os.environ.get("CROSSING_CLOSE_MODE", "fixed")
"""``fixed`` (the default: our worker fixes on), ``unfixed`` (off), or ``contained``
(the close race left in place, so that only the containment of one connection's failure
keeps the worker alive)."""
BURST = 200


def _keep_only_containment() -> None:
    from hypercorn.trio.tcp_server import TCPServer

    from trio_engineio._hypercorn import worker_fixes

    TCPServer._close = worker_fixes.original_close  # type: ignore[method-assign,assignment]


async def raw_burst_app(scope: Scope, receive: Receive, send: Send) -> None:
    """A plain ASGI websocket app (no Engine.IO) that writes a burst and returns right after.

    Its client's close frame lands while it writes: the crossing at its barest, which
    kills an unfixed worker within a few rounds whatever the Engine.IO layer does.
    """
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    for _ in range(64):
        await send({"type": "websocket.send", "bytes": b"x" * 65536})


eio = AsyncServer(async_mode="asgi", ping_interval=5, ping_timeout=5)
app = ASGIApp(
    eio,
    other_asgi_app=raw_burst_app,
    hypercorn_worker_fixes=MODE != "unfixed",
    on_startup=_keep_only_containment if MODE == "contained" else None,
)


@eio.on("message")
async def message(sid: str, data: object) -> None:
    if data == "bye":
        # The server writes (holding hypercorn's send_lock across checkpoints) while the
        # client's close frame and an invalid packet arrive: the invalid packet makes our
        # app end the websocket at once, so hypercorn closes the connection (send_eof) while
        # its reader waits for the lock to answer the client's close.
        for _ in range(BURST):
            await eio.send(sid, "x" * 2000)
    else:
        await eio.send(sid, data)  # type: ignore[arg-type]


async def _polling_handshake(host: str, port: int) -> str:
    stream = await trio.open_tcp_stream(host, port)
    async with stream:
        await stream.send_all(
            f"GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        response = b""
        while True:
            chunk = await stream.receive_some(65536)
            if not chunk:
                break
            response += chunk
    body = response.split(b"\r\n\r\n", 1)[1].decode()
    sid: str = json.loads(body[1:])["sid"]
    return sid


async def cross_close(url: str, *, upgrade: bool) -> None:
    """One session that ends with crossing closes (websocket-only, or upgraded from polling)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    query = "EIO=4&transport=websocket"
    if upgrade:
        query += "&sid=" + await _polling_handshake(host, port)
    stream = await trio.open_tcp_stream(host, port)
    async with stream:
        ws = WSConnection(ConnectionType.CLIENT)
        await stream.send_all(ws.send(Request(host=f"{host}:{port}", target=f"/engine.io/?{query}")))
        texts: list[str] = []

        async def receive_until(predicate: object) -> None:
            while True:
                for event in ws.events():
                    if isinstance(event, AcceptConnection):
                        texts.append("<accepted>")
                    elif isinstance(event, Message) and isinstance(event.data, str):
                        texts.append(event.data)
                    elif isinstance(event, CloseConnection):
                        return
                if callable(predicate) and predicate():
                    return
                data = await stream.receive_some(65536)
                if not data:
                    return
                ws.receive_data(data)

        if upgrade:
            await receive_until(lambda: "<accepted>" in texts)
            await stream.send_all(ws.send(TextMessage(data="2probe")))
            await receive_until(lambda: "3probe" in texts)
            await stream.send_all(ws.send(TextMessage(data="5")))
        else:
            await receive_until(lambda: any(text.startswith("0") for text in texts))
        # The crossing: the server is writing its burst and closing when our close frame lands.
        await stream.send_all(ws.send(TextMessage(data="4bye")))
        count = len(texts)
        await receive_until(lambda: len(texts) > count)
        await stream.send_all(ws.send(TextMessage(data="not a packet")) + ws.send(CloseConnection(code=1000)))
        with trio.move_on_after(5):
            while await stream.receive_some(65536):
                pass


async def cross_close_raw(url: str) -> None:
    """One connection to :func:`raw_burst_app`: a close frame sent while the server writes."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    stream = await trio.open_tcp_stream(host, port)
    async with stream:
        ws = WSConnection(ConnectionType.CLIENT)
        await stream.send_all(ws.send(Request(host=f"{host}:{port}", target="/raw")))
        accepted = False
        while not accepted:
            ws.receive_data(await stream.receive_some(65536))
            accepted = any(isinstance(event, AcceptConnection) for event in ws.events())
        await trio.sleep(0.02)  # not reading: the server blocks in send_all, holding its send lock
        await stream.send_all(ws.send(CloseConnection(code=1000)))
        with trio.move_on_after(5):
            while await stream.receive_some(65536):
                pass
