"""Fake peers for client tests: a server that accepts connections and then stops talking."""

from __future__ import annotations

import contextlib
from typing import Any

from trio_engineio.exceptions import EngineIOError
from trio_engineio.protocol import (
    Packet,
    decode_frame,
    decode_payload_bytes,
    encode_frame,
    encode_payload,
    open_packet,
    parse_query,
)


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
