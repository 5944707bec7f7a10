"""A Socket.IO chat server on Trio: ``hypercorn --worker-class trio chat:app``."""

from typing import Any

from trio_engineio import socketio


def create_app() -> socketio.ASGIApp:
    sio = socketio.AsyncServer(cors_allowed_origins="*")

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        if not isinstance(auth, dict) or not auth.get("name"):
            raise socketio.exceptions.ConnectionRefusedError("a name, please")
        await sio.save_session(sid, {"name": auth["name"]})
        await sio.enter_room(sid, "lobby")

    @sio.event
    async def say(sid: str, text: str) -> str:
        async with sio.session(sid) as session:
            await sio.emit("said", {"name": session["name"], "text": text}, to="lobby", skip_sid=sid)
        return "delivered"  # the sender's acknowledgement

    @sio.event
    async def disconnect(sid: str, reason: str) -> None:
        await sio.emit("left", sid, to="lobby")

    return socketio.ASGIApp(sio)


app = create_app()
