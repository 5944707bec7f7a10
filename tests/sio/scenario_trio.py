"""The interop scenario with :class:`trio_engineio.socketio.AsyncClient`, in a Trio program.

The same checks as ``sio_client_asyncio.py`` and ``tests/js/sio_client.mjs``, against
``sio_app`` served in memory or by hypercorn. ``client_options`` reach the client (the
in-memory tests give it their transports).
"""

from __future__ import annotations

from typing import Any

import trio
from sio_app import attachment

from trio_engineio import socketio


class Recorder:
    """A client whose received events are kept in order, with a way to wait for one."""

    def __init__(self, **client_options: Any) -> None:
        self.client = socketio.AsyncClient(reconnection=False, **client_options)
        self.events: list[tuple[str, Any]] = []
        self.changed = trio.Event()
        self.disconnect_reason: str | None = None

        @self.client.on("*")
        async def any_event(event: str, *args: Any) -> None:
            self.events.append((event, args[0] if len(args) == 1 else list(args)))
            self._wake()

        @self.client.event
        async def question(data: Any) -> Any:
            return f"answer:{data}"

        @self.client.event
        async def ignore_me() -> str:
            # Handlers of this client run one at a time: this holds up its next events too.
            await trio.sleep(0.5)  # past the server's 0.3 s timeout
            return "late"

        @self.client.event
        async def disconnect(reason: str) -> None:
            self.disconnect_reason = str(reason)
            self._wake()

    def _wake(self) -> None:
        self.changed.set()
        self.changed = trio.Event()

    def named(self, event: str) -> list[Any]:
        return [data for name, data in self.events if name == event]

    async def wait_for(self, predicate: Any, limit: float = 5) -> None:
        with trio.fail_after(limit):
            while not predicate():
                await self.changed.wait()


async def run_scenario(url: str, transports: list[str] | None, **client_options: Any) -> dict[str, Any]:
    checks: dict[str, Any] = {}
    refusals: list[Any] = []
    async with socketio.AsyncClient(reconnection=False, **client_options) as refused:
        refused.on("connect_error", refusals.append)
        try:
            await refused.connect(url, auth={"token": "wrong"}, transports=transports)
            checks["auth_refused"] = "connected"
        except socketio.exceptions.ConnectionError:
            checks["auth_refused"] = refusals[0]["message"] if refusals else "no connect_error"

    a, b = Recorder(**client_options), Recorder(**client_options)
    async with a.client, b.client:
        await a.client.connect(url, auth={"token": "secret", "user": "alice"}, transports=transports)
        await b.client.connect(url, auth={"token": "secret", "user": "bob"}, transports=transports)
        await a.wait_for(lambda: a.named("welcome"))
        checks["welcome"] = a.named("welcome")[0]["user"]
        checks["welcome_sid"] = a.named("welcome")[0]["sid"] == a.client.get_sid()

        checks["ack_text"] = await a.client.call("echo", "hello")
        checks["ack_binary"] = (await a.client.call("echo", b"\x00\x01\xff")) == b"\x00\x01\xff"
        acked: list[Any] = []
        got_ack = trio.Event()

        def on_ack(data: Any) -> None:
            acked.append(data)
            got_ack.set()

        await a.client.emit("echo", {"k": [1, 2]}, callback=on_ack)
        with trio.fail_after(5):
            await got_ack.wait()
        checks["client_emit_callback"] = acked[0]
        checks["server_call"] = await a.client.call("call_me", "q1")
        started = trio.current_time()
        checks["server_call_timeout"] = await a.client.call("call_timeout")
        # The 0.3 s given, not python-socketio's 60 s default (a loose bound: real processes,
        # possibly a busy machine).
        checks["server_call_timeout_fast"] = trio.current_time() - started < 5
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
            with trio.fail_after(5):
                # The server's view of the upgrade can only be asked for, not waited on.
                while await a.client.call("transport") != "websocket":  # noqa: ASYNC110
                    await trio.sleep(0.05)
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


def expected_checks(
    transports: list[str] | None, *, server_disconnect: str, client_disconnect: str = "client disconnect"
) -> dict[str, Any]:
    """What every client must report (``server_disconnect`` is each client's own wording)."""
    transport = "polling" if transports == ["polling"] else "websocket"
    return {
        "auth_refused": "bad token",
        "welcome": "alice",
        "welcome_sid": True,
        "ack_text": "hello",
        "ack_binary": True,
        "client_emit_callback": {"k": [1, 2]},
        "server_call": "answer:q1",
        "server_call_timeout": "timeout",
        "server_call_timeout_fast": True,
        "client_call_timeout": "timeout",
        "server_emit_callback": ["answer:q2"],
        "session": {"user": "alice", "count": 2},
        "join": True,
        "room_skip": [False, True],
        "room": [True, True],
        "broadcast": True,
        "binary_order": True,
        "binary_attachments": True,
        "transport": transport,
        "client_transport": transport,
        "client_disconnect": client_disconnect,
        "server_disconnect": server_disconnect,
    }
