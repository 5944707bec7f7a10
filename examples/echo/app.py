"""The echo demo: a page using the official JS engine.io-client echoes what you type.

Run it with ``make run`` (or ``hypercorn --worker-class trio examples.echo.app:app``)
and open http://127.0.0.1:8000.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import trio_engineio

HERE = Path(__file__).parent
CLIENT_BUNDLE = HERE.parent.parent / "tests" / "js" / "node_modules" / "engine.io-client" / "dist" / "engine.io.min.js"

logging.basicConfig(level=logging.INFO)
eio = trio_engineio.AsyncServer(async_mode="asgi", logger=True)
app = trio_engineio.ASGIApp(
    eio,
    static_files={
        "/": str(HERE / "index.html"),
        "/engine.io.min.js": {"filename": str(CLIENT_BUNDLE), "content_type": "application/javascript"},
    },
)


@eio.on("connect")
async def connect(sid: str, environ: dict[str, Any]) -> None:
    logging.info("connect %s from %s", sid, environ["REMOTE_ADDR"])


@eio.on("message")
async def message(sid: str, data: Any) -> None:
    async with eio.session(sid) as session:
        session["count"] = session.get("count", 0) + 1
    await eio.send(sid, data)


@eio.on("disconnect")
async def disconnect(sid: str, reason: str) -> None:
    logging.info("disconnect %s: %s", sid, reason)
