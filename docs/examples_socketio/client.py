"""A Socket.IO client in a Trio program: ``python client.py http://127.0.0.1:8000 alice``."""

import sys
from typing import Any

import trio

from trio_engineio import socketio


async def chat(url: str, name: str, line: str, **client_options: Any) -> str:
    async with socketio.AsyncClient(**client_options) as sio:

        @sio.event
        def said(message: dict[str, str]) -> None:
            print(f"{message['name']}: {message['text']}")

        await sio.connect(url, auth={"name": name})
        return str(await sio.call("say", line, timeout=5))


if __name__ == "__main__":
    print(trio.run(chat, sys.argv[1], sys.argv[2], "hello"))
