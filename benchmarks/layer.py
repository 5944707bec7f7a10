"""In-process cost of the Engine.IO layer alone, side by side with python-engineio.

Each server's ASGI app is driven in one process with ASGI ``receive``/``send``
callables that cost nothing: N websocket text messages in, N echoes out. What
is left is the Engine.IO layer's own CPU per message (packet decoding, session
state, handler dispatch, encoding), without hypercorn or uvicorn, and without a
network. Reported as microseconds per message and as a ratio to python-engineio.

Usage: python benchmarks/layer.py [--messages 50000]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import trio

import trio_engineio

Scope = dict[str, Any]
SCOPE: Scope = {
    "type": "websocket",
    "path": "/engine.io/",
    "root_path": "",
    "query_string": b"EIO=4&transport=websocket",
    "headers": [(b"host", b"bench"), (b"upgrade", b"websocket"), (b"connection", b"Upgrade")],
    "client": ("127.0.0.1", 1),
    "server": ("127.0.0.1", 2),
    "scheme": "ws",
}
FRAME = {"type": "websocket.receive", "text": "4" + "x" * 20, "bytes": None}


Message = MutableMapping[str, Any]


def fake_asgi(
    messages: int, wait_done: Callable[[], Awaitable[object]], set_done: Callable[[], None]
) -> tuple[Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]]:
    """ASGI callables feeding ``messages`` frames and counting the echoes (the OPEN packet aside)."""
    incoming = iter([{"type": "websocket.connect"}] + [FRAME] * messages)
    sent = 0

    async def receive() -> Message:
        for message in incoming:
            return message
        await wait_done()
        return {"type": "websocket.disconnect", "code": 1000}

    async def send(message: Message) -> None:
        nonlocal sent
        if message["type"] == "websocket.send":
            sent += 1
            if sent == messages + 1:
                set_done()

    return receive, send


def measure_trio_engineio(messages: int, async_handlers: bool) -> float:
    async def main() -> float:
        eio = trio_engineio.AsyncServer(async_handlers=async_handlers)
        app = trio_engineio.ASGIApp(eio)

        @eio.on("message")
        async def message(sid: str, data: Any) -> None:
            await eio.send(sid, data)

        done = trio.Event()
        receive, send = fake_asgi(messages, done.wait, done.set)
        async with eio:
            start = time.process_time()
            await app(SCOPE, receive, send)
            return time.process_time() - start

    return trio.run(main)


def measure_python_engineio(messages: int) -> float:
    import engineio

    async def main() -> float:
        eio = engineio.AsyncServer(async_mode="asgi")
        app = engineio.ASGIApp(eio)

        @eio.on("message")  # type: ignore[untyped-decorator]
        async def message(sid: str, data: Any) -> None:
            await eio.send(sid, data)

        done = asyncio.Event()
        receive, send = fake_asgi(messages, done.wait, done.set)
        start = time.process_time()
        await app(SCOPE, receive, send)
        elapsed = time.process_time() - start
        await eio.shutdown()
        return elapsed

    return asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=50_000)
    args = parser.parse_args()
    n = args.messages
    results = {
        "python-engineio (asyncio)": measure_python_engineio(n),
        "trio-engineio": measure_trio_engineio(n, async_handlers=True),
        "trio-engineio, async_handlers=False": measure_trio_engineio(n, async_handlers=False),
    }
    reference = results["python-engineio (asyncio)"]
    print(f"\nEngine.IO layer only, websocket echo in process, {n} messages of 20 bytes")
    print(f"{'server':38} {'CPU us/msg':>11} {'vs python-engineio':>19}")
    for name, seconds in results.items():
        print(f"{name:38} {seconds * 1e6 / n:11.2f} {seconds / reference:18.2f}x")


if __name__ == "__main__":
    main()
