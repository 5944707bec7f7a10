"""A browser chat: every message goes to everyone connected, signed with its sender's name.

Run it from the repository root (``make install`` first, for the JavaScript client)::

    trio-engineio serve examples.chat.app:app
    # or: hypercorn --worker-class trio examples.chat.app:app

and open http://127.0.0.1:8000 in two browser windows. The page takes two query
parameters: ``?name=alice`` picks your name (otherwise you are ``guest-...``), and
``?transport=polling`` (or ``websocket``) keeps the page on one transport instead of
long-polling first and upgrading to a websocket.

The server keeps one name per session id, tells everyone when someone joins or
leaves, and broadcasts each message as JSON::

    {"type": "welcome", "name": "alice", "users": ["alice", "bob"]}   # to the newcomer only
    {"type": "join", "name": "bob"}
    {"type": "message", "name": "bob", "text": "hi"}
    {"type": "leave", "name": "bob"}
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import trio_engineio
from examples.common import page_static_files

__all__ = ["ChatRoom", "app", "eio", "room"]

HERE = Path(__file__).resolve().parent
MAX_NAME_LENGTH = 16
MAX_TEXT_LENGTH = 500
logger = logging.getLogger(__name__)


def choose_name(query_string: str, sid: str, taken: set[str]) -> str:
    """The name for a new session: its ``name`` query parameter, cleaned up and made unique.

    Args:
        query_string: the handshake's query string (``environ["QUERY_STRING"]``).
        sid: the session id, for the ``guest-...`` fallback.
        taken: the names already in use.

    Returns:
        Letters, digits, ``-`` and ``_`` only, at most 16 characters, not in ``taken``.

    Example:
        >>> choose_name("EIO=4&transport=polling&name=Alice%21", "ab12cd", {"Alice"})
        'Alice-2'
    """
    requested = parse_qs(query_string).get("name", [""])[0]
    base = re.sub(r"[^\w-]", "", requested, flags=re.ASCII)[:MAX_NAME_LENGTH] or f"guest-{sid[:4]}"
    name, suffix = base, 1
    while name in taken:
        suffix += 1
        name = f"{base}-{suffix}"
    return name


class ChatRoom:
    """One chat room: an Engine.IO server, its ASGI app, and who is connected.

    Args:
        server_options: keyword arguments for :class:`trio_engineio.AsyncServer`
            (``cors_allowed_origins``, ``ping_interval``, ...).

    Attributes:
        eio: the server.
        app: the ASGI app serving the page at ``/``, the client bundle and ``/engine.io/``.
        names: the name of each connected session id.
    """

    def __init__(self, **server_options: Any) -> None:
        self.eio = trio_engineio.AsyncServer(async_mode="asgi", **server_options)
        self.app = trio_engineio.ASGIApp(self.eio, static_files=page_static_files(HERE / "index.html"))
        self.names: dict[str, str] = {}
        self.eio.on("connect", self.connect)
        self.eio.on("message", self.message)
        self.eio.on("disconnect", self.disconnect)

    async def broadcast(self, message: dict[str, Any]) -> None:
        """Send ``message`` (as JSON text) to every connected session.

        One send at a time: ``send`` only waits when a client's outbound buffer
        (1024 packets) is full, so a stuck client slows the room down rather than
        making the server buffer without limit.
        """
        for sid in list(self.names):
            await self.eio.send(sid, message)

    async def connect(self, sid: str, environ: dict[str, Any]) -> None:
        """Name the newcomer, welcome them, and tell everyone."""
        name = choose_name(environ.get("QUERY_STRING", ""), sid, set(self.names.values()))
        self.names[sid] = name
        logger.info("%s joined (%s)", name, environ.get("HTTP_ORIGIN", "no origin"))
        # Queued during the handshake, so it is the first message the newcomer receives.
        await self.eio.send(sid, {"type": "welcome", "name": name, "users": sorted(self.names.values())})
        await self.broadcast({"type": "join", "name": name})

    async def message(self, sid: str, data: Any) -> None:
        """Broadcast a text message with its sender's name; ignore anything else."""
        name = self.names.get(sid)
        if name is None or not isinstance(data, str) or not data.strip():
            return
        await self.broadcast({"type": "message", "name": name, "text": data[:MAX_TEXT_LENGTH]})

    async def disconnect(self, sid: str, reason: str) -> None:
        """Forget the session and tell everyone who left."""
        name = self.names.pop(sid, None)
        if name is not None:
            logger.info("%s left (%s)", name, reason)
            await self.broadcast({"type": "leave", "name": name})


room = ChatRoom()
eio = room.eio
app = room.app
