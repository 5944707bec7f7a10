"""The application under test: an Engine.IO echo server, as your project would have it."""

from typing import Any

import trio_engineio


def create_app(**options: Any) -> trio_engineio.ASGIApp:
    eio = trio_engineio.AsyncServer(**options)

    @eio.on("message")
    async def message(sid: str, data: Any) -> None:
        await eio.send(sid, data)

    return trio_engineio.ASGIApp(eio)
