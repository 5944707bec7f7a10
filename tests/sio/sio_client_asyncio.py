"""python-socketio's asyncio ``AsyncClient`` (on aiohttp) against ``sio_app``: prints its checks as JSON.

Run as ``python sio_client_asyncio.py URL TRANSPORTS_JSON`` (``null`` for the default:
polling, then upgrade); ``sio_client.mjs`` does the same with the node client. The
scenario and the names of its checks are the same in both (see ``test_interop.py``).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import socketio


def attachment(i: int, which: int) -> bytes:
    return bytes([(i + which * 7 + k) % 256 for k in range(64 + which)])


class Recorder:
    """A client whose received events are kept in order, with a way to wait for one."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.client = socketio.AsyncClient(reconnection=False)
        self.events: list[tuple[str, Any]] = []
        self.changed = asyncio.Event()
        self.disconnect_reason: str | None = None

        # Registered by call: python-socketio's decorators are untyped.
        self.client.on("*", self.any_event)
        self.client.on("question", self.question)
        self.client.on("ignore_me", self.ignore_me)
        self.client.on("disconnect", self.disconnect)

    async def any_event(self, event: str, *args: Any) -> None:
        self.events.append((event, args[0] if len(args) == 1 else list(args)))
        self.changed.set()

    async def question(self, data: Any) -> Any:
        return f"answer:{data}"

    async def ignore_me(self) -> str:
        await asyncio.sleep(1)  # past the server's 0.3 s timeout
        return "late"

    async def disconnect(self, reason: str) -> None:
        self.disconnect_reason = str(reason)
        self.changed.set()

    def named(self, event: str) -> list[Any]:
        return [data for name, data in self.events if name == event]

    async def wait_for(self, predicate: Any, limit: float = 5) -> None:
        async def wait() -> None:
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(wait(), limit)


async def scenario(url: str, transports: list[str] | None) -> dict[str, Any]:
    checks: dict[str, Any] = {}

    refused = socketio.AsyncClient(reconnection=False)
    refusals: list[Any] = []
    refused.on("connect_error", lambda data: refusals.append(data))
    try:
        await refused.connect(url, auth={"token": "wrong"}, transports=transports)
        checks["auth_refused"] = "connected"
    except socketio.exceptions.ConnectionError:
        checks["auth_refused"] = refusals[0]["message"] if refusals else "no connect_error"

    a, b = Recorder("a"), Recorder("b")
    await a.client.connect(url, auth={"token": "secret", "user": "alice"}, transports=transports)
    await b.client.connect(url, auth={"token": "secret", "user": "bob"}, transports=transports)
    await a.wait_for(lambda: a.named("welcome"))
    checks["welcome"] = a.named("welcome")[0]["user"]
    checks["welcome_sid"] = a.named("welcome")[0]["sid"] == a.client.get_sid()

    checks["ack_text"] = await a.client.call("echo", "hello")
    checks["ack_binary"] = (await a.client.call("echo", b"\x00\x01\xff")) == b"\x00\x01\xff"
    acked: list[Any] = []
    done = asyncio.Event()

    def on_ack(data: Any) -> None:
        acked.append(data)
        done.set()

    await a.client.emit("echo", {"k": [1, 2]}, callback=on_ack)
    await asyncio.wait_for(done.wait(), 5)
    checks["client_emit_callback"] = acked[0]
    checks["server_call"] = await a.client.call("call_me", "q1")
    started = time.monotonic()
    checks["server_call_timeout"] = await a.client.call("call_timeout")
    # The 0.3 s given, not python-socketio's 60 s default (a loose bound: a busy machine).
    checks["server_call_timeout_fast"] = time.monotonic() - started < 5
    try:
        await a.client.call("no_such_event_with_no_ack", timeout=0.2)
        checks["client_call_timeout"] = "answered"
    except socketio.exceptions.TimeoutError:
        checks["client_call_timeout"] = "timeout"
    await a.client.emit("emit_cb", "q2")
    await a.wait_for(lambda: a.named("cb_result"))
    checks["server_emit_callback"] = a.named("cb_result")[0]
    await a.client.call("whoami")
    checks["session"] = await a.client.call("whoami")

    room = f"room-{a.client.get_sid()}"  # its own: other runs share the server
    await a.client.call("join", room)
    checks["join"] = await b.client.call("join", room) == [room]
    for skip in (True, False):
        key = "room_skip" if skip else "room"
        await a.client.call("room_emit", {"room": room, "skip": skip, "data": key})
        for rec in (a, b):
            await rec.wait_for(lambda rec=rec, key=key: key in rec.named("marker"))
        checks[key] = [key in rec.named("room_msg") for rec in (a, b)]
    await a.client.call("broadcast", "all")
    for rec in (a, b):
        await rec.wait_for(lambda rec=rec: "all" in rec.named("bcast"))
    checks["broadcast"] = True

    count = await a.client.call("binary_burst", 200)
    await a.wait_for(lambda: len(a.named("bin")) >= count)
    received = a.named("bin")
    checks["binary_order"] = [event["i"] for event in received] == list(range(200))
    checks["binary_attachments"] = all(
        event["a"] == attachment(event["i"], 0) and event["b"] == attachment(event["i"], 1) for event in received
    )

    if transports is None:  # the upgrade: give it a moment to complete

        async def upgraded() -> None:
            # The server's view of the upgrade can only be asked for, not waited on.
            while await a.client.call("transport") != "websocket":  # noqa: ASYNC110
                await asyncio.sleep(0.05)

        await asyncio.wait_for(upgraded(), 5)
    checks["transport"] = await a.client.call("transport")
    checks["client_transport"] = a.client.transport()

    a_sid = a.client.get_sid()
    await a.client.disconnect()
    await b.wait_for(lambda: any(event["sid"] == a_sid for event in b.named("left")))
    checks["client_disconnect"] = next(event["reason"] for event in b.named("left") if event["sid"] == a_sid)
    await b.client.emit("kick")
    await b.wait_for(lambda: b.disconnect_reason is not None)
    checks["server_disconnect"] = b.disconnect_reason
    await b.client.wait()
    return checks


async def main() -> None:
    url = sys.argv[1]
    transports = json.loads(sys.argv[2]) if len(sys.argv) > 2 else None
    checks = await asyncio.wait_for(scenario(url, transports), 20)
    print(json.dumps(checks))


if __name__ == "__main__":
    asyncio.run(main())
