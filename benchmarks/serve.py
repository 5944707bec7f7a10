"""Run one benchmark server in this process, so its CPU time can be read from /proc.

Usage: python benchmarks/serve.py KIND PORT

KIND is one of:
  raw-hypercorn-trio       a bare ASGI echo under hypercorn's trio worker (the ceiling of our stack):
                           websocket echo, and a bare long-polling echo (handshake, POST queues,
                           GET drains or waits; no pings, no limits)
  trio-engineio            trio_engineio's echo under hypercorn's trio worker (async_handlers=True)
  trio-engineio-stock      the same with the hypercorn fast path off (hypercorn's own send path)
  trio-engineio-inline     the same with async_handlers=False (handlers run in the reader)
  python-engineio-uvicorn  python-engineio's AsyncServer echo under uvicorn (asyncio)

Environment (all optional): ``BENCH_PING_INTERVAL`` and ``BENCH_PING_TIMEOUT`` (seconds) set
``ping_interval`` and ``ping_timeout`` of both Engine.IO servers (python-engineio and
trio_engineio) alike; ``BENCH_BACKLOG`` sets the listen backlog of hypercorn and uvicorn
(``scale.py`` opens thousands of sessions). The knobs of hypercorn are in ``serve_hypercorn_trio``.
"""

from __future__ import annotations

import os
import sys
from typing import Any, TypedDict

from trio.abc import Instrument
from trio.lowlevel import Task

KINDS = (
    "raw-hypercorn-trio",
    "trio-engineio",
    "trio-engineio-stock",
    "trio-engineio-inline",
    "python-engineio-uvicorn",
)


async def answer_lifespan(receive: Any, send: Any) -> None:
    """Complete ASGI lifespan's startup and shutdown, for the bare apps of the benchmarks."""
    while True:
        message = await receive()
        await send({"type": message["type"] + ".complete"})
        if message["type"] == "lifespan.shutdown":
            return


async def raw_echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The least an ASGI websocket echo can do: what every Engine.IO layer adds cost on top of."""
    if scope["type"] == "lifespan":
        await answer_lifespan(receive, send)
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


class RawPolling:
    """The least an Engine.IO long-polling echo can do over ASGI: the ceiling for polling.

    A GET without ``sid`` opens a session (an OPEN packet with a counter as sid); a POST's
    body is queued whole as the echo; a GET answers what is queued, or waits until a POST
    brings something. No heartbeat, no limits, no payload parsing: only the HTTP work
    every polling server must do.
    """

    def __init__(self) -> None:
        import trio

        self.trio = trio
        self.queued: dict[str, list[bytes]] = {}
        self.waiting: dict[str, Any] = {}
        self.next_sid = 0

    async def respond(self, send: Any, body: bytes) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain; charset=UTF-8"), (b"content-length", b"%d" % len(body))],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        query = dict(pair.split("=", 1) for pair in scope["query_string"].decode().split("&") if "=" in pair)
        sid = query.get("sid")
        if sid is None:
            self.next_sid += 1
            sid = str(self.next_sid)
            self.queued[sid] = []
            open_payload = '0{"sid":"%s","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'
            await self.respond(send, (open_payload % sid).encode())
            return
        if scope["method"] == "POST":
            chunks = []
            while True:
                message = await receive()
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    break
            self.queued[sid].append(b"".join(chunks))
            waiter = self.waiting.pop(sid, None)
            if waiter is not None:
                waiter.set()
            await self.respond(send, b"ok")
            return
        if not self.queued[sid]:
            event = self.waiting[sid] = self.trio.Event()
            await event.wait()
        body, self.queued[sid] = b"\x1e".join(self.queued[sid]), []
        await self.respond(send, body)


def raw_app() -> Any:
    """The raw ceiling: websocket echo and long-polling echo in one ASGI app."""
    polling = RawPolling()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await polling(scope, receive, send)
        else:
            await raw_echo(scope, receive, send)

    return app


class PingOptions(TypedDict, total=False):
    ping_interval: float
    ping_timeout: float


def ping_options() -> PingOptions:
    """``ping_interval``/``ping_timeout`` from ``BENCH_PING_INTERVAL``/``BENCH_PING_TIMEOUT``, for
    both Engine.IO servers alike; the servers' defaults (25 s and 20 s) where unset."""
    options = PingOptions()
    if os.environ.get("BENCH_PING_INTERVAL"):
        options["ping_interval"] = float(os.environ["BENCH_PING_INTERVAL"])
    if os.environ.get("BENCH_PING_TIMEOUT"):
        options["ping_timeout"] = float(os.environ["BENCH_PING_TIMEOUT"])
    return options


def trio_engineio_app(async_handlers: bool, fast_path: bool = True) -> Any:
    import trio_engineio

    eio = trio_engineio.AsyncServer(async_handlers=async_handlers, max_http_buffer_size=10_000_000, **ping_options())

    @eio.on("message")
    async def message(sid: str, data: Any) -> None:
        await eio.send(sid, data)

    return trio_engineio.ASGIApp(eio, hypercorn_fast_path=fast_path)


def python_engineio_app() -> Any:
    import engineio

    eio = engineio.AsyncServer(async_mode="asgi", **ping_options())

    @eio.on("message")  # type: ignore[untyped-decorator]
    async def message(sid: str, data: Any) -> None:
        await eio.send(sid, data)

    return engineio.ASGIApp(eio)


def serve_hypercorn_trio(app: Any, port: int) -> None:
    """hypercorn's trio worker; ``BENCH_MAX_APP_QUEUE_SIZE`` and ``BENCH_CERTFILE``/``BENCH_KEYFILE``
    (TLS) set the deployer knobs that ``run.py --knobs`` compares. With ``BENCH_STEPS_FILE``, Trio's
    task steps and spawns are counted and written there every 50 ms (``run.py --steps``)."""
    import trio
    from hypercorn.config import Config
    from hypercorn.trio import serve

    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.errorlog = None
    if "BENCH_BACKLOG" in os.environ:
        config.backlog = int(os.environ["BENCH_BACKLOG"])
    if "BENCH_MAX_APP_QUEUE_SIZE" in os.environ:
        config.max_app_queue_size = int(os.environ["BENCH_MAX_APP_QUEUE_SIZE"])
    if "BENCH_CERTFILE" in os.environ:
        config.certfile = os.environ["BENCH_CERTFILE"]
        config.keyfile = os.environ["BENCH_KEYFILE"]
    if "BENCH_STEPS_FILE" not in os.environ:
        trio.run(serve, app, config)
        return
    counter = StepCounter()
    steps_file = os.environ["BENCH_STEPS_FILE"]

    async def serve_and_count() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve, app, config)
            while True:
                await trio.sleep(0.05)
                write_steps(steps_file, counter)  # a few bytes to the page cache: no need for a thread

    trio.run(serve_and_count, instruments=[counter])


def write_steps(path: str, counter: StepCounter) -> None:
    with open(path + ".tmp", "w") as file:
        file.write(f"{counter.steps} {counter.spawns}")
    os.replace(path + ".tmp", path)


class StepCounter(Instrument):
    """A Trio instrument counting task steps (each time a task runs) and task spawns: scheduling
    work per message, exact where CPU time is noisy."""

    def __init__(self) -> None:
        self.steps = 0
        self.spawns = 0

    def before_task_step(self, task: Task) -> None:
        self.steps += 1

    def task_spawned(self, task: Task) -> None:
        self.spawns += 1


def main() -> None:
    kind, port = sys.argv[1], int(sys.argv[2])
    if kind == "raw-hypercorn-trio":
        serve_hypercorn_trio(raw_app(), port)
    elif kind == "trio-engineio":
        serve_hypercorn_trio(trio_engineio_app(async_handlers=True), port)
    elif kind == "trio-engineio-stock":
        serve_hypercorn_trio(trio_engineio_app(async_handlers=True, fast_path=False), port)
    elif kind == "trio-engineio-inline":
        serve_hypercorn_trio(trio_engineio_app(async_handlers=False), port)
    elif kind == "python-engineio-uvicorn":
        import uvicorn

        backlog = int(os.environ.get("BENCH_BACKLOG", 2048))  # uvicorn's default
        uvicorn.run(python_engineio_app(), host="127.0.0.1", port=port, log_level="error", backlog=backlog)
    else:
        raise SystemExit(f"unknown kind {kind!r}; use one of {', '.join(KINDS)}")


if __name__ == "__main__":
    main()
