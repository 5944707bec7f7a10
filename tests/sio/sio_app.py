"""The Socket.IO server the interop tests run under ``hypercorn --worker-class trio``.

Every behaviour the clients check has a handler here; the clients (``sio_client.mjs`` with
the node ``socket.io-client`` v4, ``sio_client_asyncio.py`` with python-socketio's asyncio
``AsyncClient``) drive them and print what they saw. ``SIO_OUTBOUND_BUFFER`` sets the
engine's ``outbound_buffer_size`` (the slow-consumer bound).

Events (client -> server, acknowledged):

- ``echo(x)``: acknowledges ``x`` (text or binary).
- ``call_me(x)``: the server ``call()``s the client's ``question`` with ``x`` (no timeout)
  and acknowledges the answer.
- ``call_timeout()``: the server ``call()``s ``ignore_me`` with a 0.3 s timeout;
  acknowledges ``'timeout'``.
- ``emit_cb(x)``: the server emits ``question(x)`` with ``callback=``; the callback emits
  ``cb_result(answer)`` back.
- ``whoami()``: counts calls in ``session()``; acknowledges ``{user, count}``.
- ``join(room)``: acknowledges the rooms the client is in, its own sid room left out.
- ``room_emit({room, skip, data})``: emits ``room_msg`` to the room, with or without
  ``skip_sid``, then ``marker`` to each member. ``broadcast(x)``: ``bcast`` to everyone.
- ``binary_burst(n)``: ``n`` ``bin`` events ``{i, a, b}`` with two binary attachments.
- ``broadcast_burst({n, size, pause})``: ``n`` ``burst`` broadcasts, ``pause`` seconds apart;
  acknowledges the seconds taken.
- ``transport()``: the session's transport. ``kick()``: the server disconnects the client.

Server -> client: ``welcome({sid, user})`` from the connect handler; ``left({sid, reason})``
to everyone when a client disconnects.
"""

from __future__ import annotations

import os
from typing import Any

import trio

from trio_engineio import socketio


def attachment(i: int, which: int) -> bytes:
    """The ``which`` attachment (0 or 1) of binary event ``i``: its bytes depend on both."""
    return bytes([(i + which * 7 + k) % 256 for k in range(64 + which)])


def create_app(*, outbound_buffer_size: int = 1024, close_timeout: float = 5) -> socketio.ASGIApp:
    """A new server with the handlers above, and its ASGI app."""
    sio = socketio.AsyncServer(
        cors_allowed_origins="*",
        outbound_buffer_size=outbound_buffer_size,
        close_timeout=close_timeout,
    )

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        if not isinstance(auth, dict) or auth.get("token") != "secret":
            raise socketio.exceptions.ConnectionRefusedError("bad token")
        await sio.save_session(sid, {"user": auth.get("user"), "count": 0})
        await sio.emit("welcome", {"sid": sid, "user": auth.get("user")}, to=sid)

    @sio.event
    async def disconnect(sid: str, reason: str) -> None:
        await sio.emit("left", {"sid": sid, "reason": str(reason)}, skip_sid=sid)

    @sio.event
    async def echo(sid: str, data: Any) -> Any:
        return data

    @sio.event
    async def call_me(sid: str, data: Any) -> Any:
        return await sio.call("question", data, to=sid, timeout=None)

    @sio.event
    async def call_timeout(sid: str) -> str:
        try:
            await sio.call("ignore_me", to=sid, timeout=0.3)
        except socketio.exceptions.TimeoutError:
            return "timeout"
        return "answered"

    @sio.event
    async def emit_cb(sid: str, data: Any) -> None:
        async def callback(*args: Any) -> None:
            await sio.emit("cb_result", list(args), to=sid)

        await sio.emit("question", data, to=sid, callback=callback)

    @sio.event
    async def whoami(sid: str) -> dict[str, Any]:
        async with sio.session(sid) as session:
            session["count"] += 1
            return {"user": session["user"], "count": session["count"]}

    @sio.event
    async def join(sid: str, room: str) -> list[str]:
        await sio.enter_room(sid, room)
        return sorted(room for room in sio.rooms(sid) if room != sid)

    @sio.event
    async def room_emit(sid: str, data: dict[str, Any]) -> str:
        room = data["room"]
        await sio.emit("room_msg", data["data"], to=room, skip_sid=sid if data["skip"] else None)
        for member, _ in sio.manager.get_participants("/", room):
            await sio.emit("marker", data["data"], to=member)
        return "sent"

    @sio.event
    async def broadcast(sid: str, data: Any) -> str:
        await sio.emit("bcast", data)
        return "sent"

    @sio.event
    async def binary_burst(sid: str, count: int) -> int:
        for i in range(count):
            await sio.emit("bin", {"i": i, "a": attachment(i, 0), "b": attachment(i, 1)}, to=sid)
        return count

    @sio.event
    async def broadcast_burst(sid: str, data: dict[str, Any]) -> float:
        payload = "x" * data["size"]
        started = trio.current_time()
        for i in range(data["n"]):
            await sio.emit("burst", {"i": i, "p": payload})
            if data.get("pause"):
                await trio.sleep(data["pause"])
        return trio.current_time() - started

    @sio.event
    async def transport(sid: str) -> str:
        return str(sio.transport(sid))

    @sio.event
    async def kick(sid: str) -> None:
        await sio.disconnect(sid)

    return socketio.ASGIApp(sio)


app = create_app(
    outbound_buffer_size=int(os.environ.get("SIO_OUTBOUND_BUFFER", "1024")),
    close_timeout=float(os.environ.get("SIO_CLOSE_TIMEOUT", "5")),
)
