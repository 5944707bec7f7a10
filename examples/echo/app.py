"""The echo demo: a page using the official JS engine.io-client echoes what you type.

Run it from the repository root with ``make run`` (or ``trio-engineio serve examples.echo.app:app``,
or ``hypercorn --worker-class trio examples.echo.app:app``) and open http://127.0.0.1:8000.

``logger=True`` prints the server's activity, and the handlers below log through ``eio.logger``.
The module leaves the root logger alone: hypercorn gives its own loggers a handler and lets them
propagate, so a ``logging.basicConfig()`` here would print each of hypercorn's lines twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio_engineio
from examples.common import page_static_files

HERE = Path(__file__).resolve().parent

eio = trio_engineio.AsyncServer(async_mode="asgi", logger=True)
app = trio_engineio.ASGIApp(eio, static_files=page_static_files(HERE / "index.html"))


@eio.on("connect")
async def connect(sid: str, environ: dict[str, Any]) -> None:
    eio.logger.info("connect %s from %s", sid, environ["REMOTE_ADDR"])


@eio.on("message")
async def message(sid: str, data: Any) -> None:
    async with eio.session(sid) as session:
        session["count"] = session.get("count", 0) + 1
    await eio.send(sid, data)


@eio.on("disconnect")
async def disconnect(sid: str, reason: str) -> None:
    eio.logger.info("disconnect %s: %s", sid, reason)
