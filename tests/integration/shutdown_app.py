"""The app of test_shutdown.py: an echo server that streams to clients who ask, and records
every disconnect (sid and reason) as a line in the file named by ``SHUTDOWN_APP_RECORD``.

Served as ``hypercorn --worker-class trio tests.integration.shutdown_app:app``.
"""

from __future__ import annotations

import os
from typing import Any

import trio

from trio_engineio import ASGIApp, AsyncServer

eio = AsyncServer(async_mode="asgi", logger=True)
app = ASGIApp(eio)
_record = os.environ.get("SHUTDOWN_APP_RECORD", os.devnull)


@eio.on("message")
async def message(sid: str, data: Any) -> None:
    if data == "stream":  # keep sending until the session ends: "mid-send" at shutdown

        async def stream() -> None:
            index = 0
            while sid in eio.sockets:
                await eio.send(sid, str(index))
                index += 1
                await trio.sleep(0.001)

        eio.start_background_task(stream)
    else:
        await eio.send(sid, data)


@eio.on("disconnect")
def disconnect(sid: str, reason: str) -> None:
    with open(_record, "a") as record:
        record.write(f"{sid} {reason}\n")
