"""The ``trio-engineio`` command line: serve an app, or talk to any Engine.IO server.

Usage::

    trio-engineio serve [APP] [--bind 127.0.0.1:8000] [--workers 1]
    trio-engineio connect URL [--transport polling|websocket] [--header 'Name: value'] [--path engine.io]
                              [--linger 1]

``serve`` runs ``APP`` (``module:attribute``, default the built-in echo demo)
under hypercorn's trio worker. ``connect`` is an interactive client in the
spirit of wscat: incoming messages are printed (binary as hex), each line
typed is sent as a text message, and end of input disconnects.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

import trio

__all__ = ["main"]


def _parse_header(text: str) -> tuple[str, str]:
    name, separator, value = text.partition(":")
    if not separator or not name.strip():
        raise argparse.ArgumentTypeError(f"expected 'Name: value', got {text!r}")
    return name.strip(), value.strip()


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trio-engineio",
        description="Serve an ASGI app under hypercorn's trio worker, or talk to any Engine.IO server.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve an ASGI app under hypercorn's trio worker")
    serve.add_argument("app", nargs="?", default="trio_engineio._demo:app", help="module:attribute (default: demo)")
    serve.add_argument("--bind", default="127.0.0.1:8000", help="host:port to listen on (default 127.0.0.1:8000)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (polling needs sticky sessions)")
    connect = commands.add_parser("connect", help="an interactive Engine.IO client")
    connect.add_argument("url", help="the server's URL, e.g. http://127.0.0.1:8000")
    connect.add_argument("--transport", choices=["polling", "websocket"], help="use only this transport")
    connect.add_argument("--header", action="append", type=_parse_header, default=[], help="'Name: value'")
    connect.add_argument("--path", default="engine.io", help="the Engine.IO endpoint (default engine.io)")
    connect.add_argument(
        "--linger",
        type=float,
        default=1.0,
        help="after end of input, seconds of quiet to wait for replies before disconnecting (default 1)",
    )
    return parser


def format_message(data: Any) -> str:
    """How ``connect`` prints a received message: text as is, binary as hex, decoded JSON as JSON.

    Example:
        >>> format_message(b"\\x00\\xff")
        '< [binary, 2 bytes] 00 ff'
    """
    if isinstance(data, bytes):
        return f"< [binary, {len(data)} bytes] {data.hex(' ')}"
    if isinstance(data, str):
        return f"< {data}"
    return f"< {json.dumps(data, ensure_ascii=False)}"


async def _connect(url: str, transport: str | None, headers: list[tuple[str, str]], path: str, linger: float) -> int:
    from trio_engineio.client import AsyncClient
    from trio_engineio.exceptions import EngineIOError

    async with AsyncClient() as client:
        try:
            await client.connect(
                url, headers=dict(headers), transports=[transport] if transport else None, engineio_path=path
            )
        except EngineIOError as exc:
            print(f"! could not connect: {exc}", file=sys.stderr)
            return 1
        print(f"* connected, sid {client.sid}, transport {client.transport()}", file=sys.stderr)

        # After end of input, replies are awaited until the line has been quiet for `linger`.
        quiet = trio.CancelScope(deadline=trio.current_time() + linger)

        async def print_messages() -> None:
            async for data in client:
                quiet.deadline = trio.current_time() + linger
                print(format_message(data), flush=True)
            print("* disconnected", file=sys.stderr)
            nursery.cancel_scope.cancel()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(print_messages)
            stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
            async with stdin:
                pending = b""
                while True:
                    chunk = await stdin.receive_some()
                    if not chunk:
                        break
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        await client.send(line.decode("utf-8", "replace"))
                        quiet.deadline = trio.current_time() + linger
            with quiet:
                await trio.sleep_forever()
            await client.disconnect()
    return 0


def _load_app(path: str) -> Any:
    """Import ``module:attribute`` (``attribute`` defaults to ``app``) from the current directory."""
    module_name, _, attribute = path.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    return getattr(importlib.import_module(module_name), attribute or "app")


async def _serve(app: Any, bind: str) -> None:
    """Serve ``app`` under hypercorn's trio worker until SIGINT or SIGTERM, then shut down gracefully.

    hypercorn waits for open connections before it runs ASGI lifespan shutdown,
    so the Engine.IO server is shut down first: its clients get their CLOSE at once.
    """
    from hypercorn.config import Config
    from hypercorn.trio import serve

    from trio_engineio.asgi import ASGIApp

    config = Config()
    config.bind = [bind]
    config.accesslog = "-"
    config.errorlog = "-"

    async def shutdown_trigger() -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                break
        if isinstance(app, ASGIApp) and app.engineio_server.running:
            await app.engineio_server.shutdown()

    await serve(app, config, shutdown_trigger=shutdown_trigger)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line (see the module's usage); the ``trio-engineio`` console script calls it.

    Args:
        argv: the arguments, without the program name; ``None`` reads ``sys.argv``.

    Returns:
        The exit status, 0 or 1 (1 when ``connect`` could not connect); argparse
        exits with 2 on bad arguments.

    Example::

        from trio_engineio.__main__ import main

        main(["serve", "myapp:app", "--bind", "0.0.0.0:8000"])  # returns when hypercorn stops
    """
    args = _build_parser().parse_args(argv)
    if args.command == "serve":
        if args.workers == 1:
            trio.run(_serve, _load_app(args.app), args.bind)
            return 0
        from hypercorn.__main__ import main as hypercorn_main

        print(
            "! several workers share no sessions: polling clients need sticky sessions in front "
            "(see the server guide), websocket-only clients do not",
            file=sys.stderr,
        )
        return int(
            hypercorn_main(["--worker-class", "trio", "--bind", args.bind, "--workers", str(args.workers), args.app])
            or 0
        )
    return trio.run(_connect, args.url, args.transport, args.header, args.path, args.linger)


if __name__ == "__main__":
    sys.exit(main())
