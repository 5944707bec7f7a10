"""A Socket.IO chat on Trio: python-socketio's server on trio_engineio, the official browser client.

Run it from the repository root (``pip install 'engineio-trio[socketio]'`` first)::

    hypercorn --worker-class trio examples.socketio_chat.app:app

and open http://127.0.0.1:8000/?name=alice and http://127.0.0.1:8000/?name=bob. The page
loads ``socket.io.min.js``, the browser bundle of socket.io-client 4.8.4 (MIT, its notice in
``LICENSE.socket.io-client``), from this directory: no CDN, no npm.

Events:

- the client connects with ``auth={"name": ...}`` (refused without a name);
- ``say(text)`` (client -> server, acknowledged with ``"delivered"``): everyone else gets
  ``said({name, text})``;
- ``joined(name)`` / ``left(name)`` go to everyone else; ``welcome({name, users})`` to the
  newcomer, from the connect handler.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from trio_engineio import socketio

__all__ = ["MAX_TEXT_LENGTH", "app", "create_app"]

HERE = Path(__file__).resolve().parent
MAX_TEXT_LENGTH = 500
STATIC_FILES = {
    "/": {"filename": str(HERE / "index.html"), "content_type": "text/html; charset=utf-8"},
    "/socket.io.min.js": {"filename": str(HERE / "socket.io.min.js"), "content_type": "application/javascript"},
}


def clean_name(requested: Any) -> str:
    """Letters, digits, ``-`` and ``_`` of ``requested``, at most 16 characters.

    Example:
        >>> clean_name("<b>alice</b>!")
        'baliceb'
    """
    return re.sub(r"[^\w-]", "", str(requested), flags=re.ASCII)[:16]


def create_app(**server_options: Any) -> socketio.ASGIApp:
    """The chat server and its ASGI app (the page at ``/``, Socket.IO at ``/socket.io/``).

    Args:
        server_options: :class:`trio_engineio.socketio.AsyncServer`'s arguments.

    Returns:
        The app; its ``socketio_server`` is the server.
    """
    sio = socketio.AsyncServer(**server_options)
    names: dict[str, str] = {}

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        name = clean_name(auth.get("name", "")) if isinstance(auth, dict) else ""
        if not name:
            raise socketio.exceptions.ConnectionRefusedError("choose a name")
        if name in names.values():
            raise socketio.exceptions.ConnectionRefusedError(f"{name} is taken")
        names[sid] = name
        await sio.emit("welcome", {"name": name, "users": sorted(names.values())}, to=sid)
        await sio.emit("joined", name, skip_sid=sid)

    @sio.event
    async def say(sid: str, text: Any) -> str:
        if not isinstance(text, str) or not text.strip():
            return "ignored"
        await sio.emit("said", {"name": names[sid], "text": text[:MAX_TEXT_LENGTH]}, skip_sid=sid)
        return "delivered"

    @sio.event
    async def disconnect(sid: str, reason: str) -> None:
        name = names.pop(sid, None)
        if name is not None:
            await sio.emit("left", name)

    return socketio.ASGIApp(sio, static_files=STATIC_FILES)


app = create_app()
