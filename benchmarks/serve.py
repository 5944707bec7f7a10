"""Run one benchmark server in this process, so its CPU time can be read from /proc.

Usage: python benchmarks/serve.py KIND PORT

KIND is one of:
  raw-hypercorn-trio       a bare ASGI websocket echo under hypercorn's trio worker (the floor)
  trio-engineio            trio_engineio's echo under hypercorn's trio worker (async_handlers=True)
  trio-engineio-stock      the same with the hypercorn fast path off (hypercorn's own send path)
  trio-engineio-inline     the same with async_handlers=False (handlers run in the reader)
  python-engineio-uvicorn  python-engineio's AsyncServer echo under uvicorn (asyncio)
"""

from __future__ import annotations

import sys
from typing import Any

KINDS = (
    "raw-hypercorn-trio",
    "trio-engineio",
    "trio-engineio-stock",
    "trio-engineio-inline",
    "python-engineio-uvicorn",
)


async def raw_echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The least an ASGI websocket echo can do: what every Engine.IO layer adds cost on top of."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    if scope["type"] != "websocket":
        return
    await receive()
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        await send({"type": "websocket.send", "text": message.get("text"), "bytes": message.get("bytes")})


def trio_engineio_app(async_handlers: bool, fast_path: bool = True) -> Any:
    import trio_engineio

    eio = trio_engineio.AsyncServer(async_handlers=async_handlers, max_http_buffer_size=10_000_000)

    @eio.on("message")
    async def message(sid: str, data: Any) -> None:
        await eio.send(sid, data)

    return trio_engineio.ASGIApp(eio, hypercorn_fast_path=fast_path)


def python_engineio_app() -> Any:
    import engineio

    eio = engineio.AsyncServer(async_mode="asgi")

    @eio.on("message")  # type: ignore[untyped-decorator]
    async def message(sid: str, data: Any) -> None:
        await eio.send(sid, data)

    return engineio.ASGIApp(eio)


def serve_hypercorn_trio(app: Any, port: int) -> None:
    """hypercorn's trio worker; ``BENCH_MAX_APP_QUEUE_SIZE`` and ``BENCH_CERTFILE``/``BENCH_KEYFILE``
    (TLS) set the deployer knobs that ``run.py --knobs`` compares."""
    import os

    import trio
    from hypercorn.config import Config
    from hypercorn.trio import serve

    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.errorlog = None
    if "BENCH_MAX_APP_QUEUE_SIZE" in os.environ:
        config.max_app_queue_size = int(os.environ["BENCH_MAX_APP_QUEUE_SIZE"])
    if "BENCH_CERTFILE" in os.environ:
        config.certfile = os.environ["BENCH_CERTFILE"]
        config.keyfile = os.environ["BENCH_KEYFILE"]
    trio.run(serve, app, config)


def main() -> None:
    kind, port = sys.argv[1], int(sys.argv[2])
    if kind == "raw-hypercorn-trio":
        serve_hypercorn_trio(raw_echo, port)
    elif kind == "trio-engineio":
        serve_hypercorn_trio(trio_engineio_app(async_handlers=True), port)
    elif kind == "trio-engineio-stock":
        serve_hypercorn_trio(trio_engineio_app(async_handlers=True, fast_path=False), port)
    elif kind == "trio-engineio-inline":
        serve_hypercorn_trio(trio_engineio_app(async_handlers=False), port)
    elif kind == "python-engineio-uvicorn":
        import uvicorn

        uvicorn.run(python_engineio_app(), host="127.0.0.1", port=port, log_level="error")
    else:
        raise SystemExit(f"unknown kind {kind!r}; use one of {', '.join(KINDS)}")


if __name__ == "__main__":
    main()
