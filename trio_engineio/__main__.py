"""The ``trio-engineio`` command line: serve an app, or talk to any Engine.IO server.

Usage::

    trio-engineio serve [APP] [--bind 127.0.0.1:8000] [--workers 1]
    trio-engineio connect URL [--transport polling|websocket] [--header 'Name: value'] [--path PATH]
                              [--linger 1]

``serve`` runs ``APP`` (``module:attribute``, default the built-in echo demo)
under hypercorn's trio worker. ``connect`` is an interactive client in the
spirit of wscat: incoming messages are printed (binary as hex), each line
typed is sent as a text message, and end of input disconnects; the URL's
path, if any, is the Engine.IO path. Status lines (connection, upgrade,
disconnection and why) and failures (the URL tried and the likely cause,
never a traceback) go to standard error.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import signal
import socket
import ssl
import sys
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import trio

from trio_engineio import __version__

__all__ = ["main"]

_DISTRIBUTION = "engineio-trio"
"""The name to ``pip install`` (``trio-engineio`` on PyPI is another, unrelated project)."""


def _parse_header(text: str) -> tuple[str, str]:
    name, separator, value = text.partition(":")
    if not separator or not name.strip():
        raise argparse.ArgumentTypeError(f"expected 'Name: value', got {text!r}")
    return name.strip(), value.strip()


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trio-engineio",
        description="Serve an ASGI app under hypercorn's trio worker, or talk to any Engine.IO server. "
        f"The command of the {_DISTRIBUTION} distribution (import name trio_engineio).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s ({_DISTRIBUTION} {__version__})")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve an ASGI app under hypercorn's trio worker")
    serve.add_argument("app", nargs="?", default="trio_engineio._demo:app", help="module:attribute (default: demo)")
    serve.add_argument("--bind", default="127.0.0.1:8000", help="host:port to listen on (default 127.0.0.1:8000)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (polling needs sticky sessions)")
    connect = commands.add_parser("connect", help="an interactive Engine.IO client")
    connect.add_argument("url", help="the server's URL, e.g. http://127.0.0.1:8000")
    connect.add_argument("--transport", choices=["polling", "websocket"], help="use only this transport")
    connect.add_argument("--header", action="append", type=_parse_header, default=[], help="'Name: value'")
    connect.add_argument(
        "--path",
        help="the Engine.IO endpoint, if the URL has no path (default engine.io; socket.io for a Socket.IO server)",
    )
    connect.add_argument(
        "--linger",
        type=float,
        default=1.0,
        help="after end of input, seconds of quiet to wait for replies before disconnecting (default 1)",
    )
    return parser


def format_message(data: Any) -> str:
    """How ``connect`` prints a received message: after ``<`` and a space, text as it came, binary as hex, JSON as JSON.

    Example:
        >>> format_message(b"\\x00\\xff")
        '< [binary, 2 bytes] 00 ff'
    """
    if isinstance(data, bytes):
        return f"< [binary, {len(data)} bytes] {data.hex(' ')}"
    if isinstance(data, str):
        return f"< {data}"
    return f"< {json.dumps(data, ensure_ascii=False)}"


_ENGINEIO_PARAMETERS = ("EIO", "transport", "sid", "t", "j", "b64")
"""Query parameters the client sets itself: dropped from a URL copied from a request."""


class _UsageError(Exception):
    """A command line that cannot work: printed as is, exit status 2."""


def connect_target(url: str, path: str | None = None) -> tuple[str, str, list[str]]:
    """Where ``connect`` goes: the server URL, the Engine.IO path, and notes about the URL given.

    The URL's path, when it has one, is the Engine.IO path (``--path`` gives it
    otherwise, default ``engine.io``), so a URL copied from a browser's network
    tab works as it is; the Engine.IO parameters of its query (``EIO``,
    ``transport``, ``sid``, ``t``) are dropped, since the client sets them.

    Raises:
        _UsageError: no scheme, a scheme other than http, https, ws or wss, no
            host, or a path in the URL that ``--path`` contradicts.

    Example:
        >>> url, path, notes = connect_target("http://127.0.0.1:8000/socket.io/?EIO=4&transport=polling&token=x")
        >>> url, path
        ('http://127.0.0.1:8000?token=x', 'socket.io')
        >>> notes
        ["ignoring EIO, transport from the URL (the client sets Engine.IO's parameters)"]
        >>> connect_target("ws://127.0.0.1:8000", "engine.io")
        ('ws://127.0.0.1:8000', 'engine.io', [])
    """
    if "://" not in url:
        raise _UsageError(f"{url!r} has no scheme: try http://{url} (or https://, ws://, wss://)")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "ws", "wss"):
        raise _UsageError(f"{url!r}: the scheme must be http, https, ws or wss, not {parts.scheme!r}")
    if not parts.hostname:
        raise _UsageError(f"{url!r} has no host: for example http://127.0.0.1:8000")
    notes: list[str] = []
    query = parse_qsl(parts.query, keep_blank_values=True)
    dropped = [name for name, _ in query if name in _ENGINEIO_PARAMETERS]
    if dropped:
        notes.append(
            f"ignoring {', '.join(dict.fromkeys(dropped))} from the URL (the client sets Engine.IO's parameters)"
        )
    kept = urlencode([(name, value) for name, value in query if name not in _ENGINEIO_PARAMETERS])
    url_path = parts.path.strip("/")
    if url_path and path is not None and path.strip("/") != url_path:
        raise _UsageError(f"the URL's path /{url_path}/ and --path {path} disagree: give the Engine.IO path once")
    engineio_path = url_path or (path if path is not None else "engine.io")
    return urlunsplit((parts.scheme, parts.netloc, "", kept, "")), engineio_path, notes


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, what caused it, and the members of exception groups among them."""
    seen: set[int] = set()
    pending = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        members = getattr(current, "exceptions", None)  # an exception group (a builtin from Python 3.11)
        if isinstance(members, list | tuple):
            pending.extend(member for member in members if isinstance(member, BaseException))
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                pending.append(linked)


_ERROR_CODES = {
    0: "the server does not offer this transport (try the other one with --transport)",
    1: "the server does not know the session",
    3: "the server found the request malformed",
    4: "the server refused this client (an origin it does not allow?)",
    5: "the server speaks another Engine.IO version: this client speaks v4 "
    "(python-engineio 4 and later, engine.io 4 and later, Socket.IO 3 and later)",
}


def explain_failure(exc: BaseException, tried: str, path: str, transport: str) -> list[str]:
    """The lines ``connect`` prints when it could not connect: the URL tried, the likely cause, the server's answer.

    Args:
        exc: what :meth:`AsyncClient.connect <trio_engineio.AsyncClient.connect>` raised.
        tried: the URL of the first request.
        path: the Engine.IO path.
        transport: ``'polling'`` or ``'websocket'``, the transport of the first request.

    Example:
        >>> from trio_engineio.exceptions import ConnectionError
        >>> refused = ConnectionError("Unexpected status code 401", status_code=401, error_body="Unauthorized")
        >>> explain_failure(refused, "http://h/engine.io/", "engine.io", "polling")  # doctest: +NORMALIZE_WHITESPACE
        ['! could not connect to http://h/engine.io/',
         '  the server refused the connection (401): its connect handler said no; send credentials with --header?',
         '  the server said: "Unauthorized"']
    """
    lines = [f"! could not connect to {tried}"]
    status = getattr(exc, "status_code", None)
    body = getattr(exc, "error_body", None)
    secure = tried.startswith(("https:", "wss:"))
    plain = "use http:// (or ws://)"
    causes = list(_causes(exc))
    if status == 404:
        lines.append(
            f"  nothing is served at /{path}/ (404): is the Engine.IO path right? Give it as the URL's path or "
            "with --path (default engine.io; Socket.IO servers use socket.io)"
        )
    elif status == 403 and transport == "websocket" and not isinstance(body, dict):
        lines.append(
            "  the server refused the websocket (403). ASGI servers answer 403 to a websocket nobody accepted: "
            f"the path /{path}/ may be wrong, or the origin refused; --transport polling shows the server's answer"
        )
    elif status == 401:
        lines.append(
            "  the server refused the connection (401): its connect handler said no; send credentials with --header?"
        )
    elif status is not None:
        code = body.get("code") if isinstance(body, dict) else None
        cause = _ERROR_CODES.get(code, "") if isinstance(code, int) else ""
        lines.append(f"  the server refused the handshake ({status})" + (f": {cause}" if cause else ""))
    elif any(isinstance(cause, ssl.SSLError) for cause in causes):
        error = next(cause for cause in causes if isinstance(cause, ssl.SSLError))
        lines.append(f"  the TLS handshake failed ({error.reason or error}): if the server speaks plain HTTP, {plain}")
    elif any(isinstance(cause, ConnectionRefusedError) for cause in causes):
        lines.append("  connection refused: is the server running, and on this host and port?")
    elif any(isinstance(cause, socket.gaierror) for cause in causes):
        lines.append("  the host name could not be resolved: is it spelt right?")
    elif "timed out" in str(exc):
        lines.append(f"  no answer in time: {exc}")
    elif "OPEN packet" in str(exc) or "Unexpected response" in str(exc):
        lines.append(f"  the server answered, but not as an Engine.IO v4 server: {exc}")
    elif secure:
        lines.append(f"  {exc}")
        lines.append(f"  is the server serving TLS on this port? If it speaks plain HTTP, {plain}")
    else:
        lines.append(f"  {exc}")
    if body is not None:
        lines.append(f"  the server said: {json.dumps(body, ensure_ascii=False)}")
    return lines


class _StatusLines(logging.Handler):
    """Status lines from the client's log: the upgrade's outcome, the close's detail, errors.

    The client has no upgrade event (python-engineio's has none either); it logs the
    outcome with python-engineio's messages, which this handler recognises.
    """

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.close_detail = ""

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == "WebSocket upgrade was successful":
            print("* upgraded to websocket", file=sys.stderr)
        elif str(record.msg).startswith("WebSocket upgrade failed"):
            print(f"* staying on polling: {record.getMessage()}", file=sys.stderr)
        elif record.msg == "Connection closed (%s): %s" and isinstance(record.args, tuple):
            self.close_detail = str(record.args[-1])
        elif record.levelno >= logging.WARNING:
            print(f"! {record.getMessage()}", file=sys.stderr)


_CLOSE_EXPLANATIONS = {
    "client disconnect": "* disconnected",
    "server disconnect": "* disconnected by the server",
    "ping timeout": "! disconnected: the server stopped sending pings (ping timeout)",
    "transport error": "! disconnected: the connection failed (transport error)",
}


async def _connect(url: str, transport: str | None, headers: list[tuple[str, str]], path: str, linger: float) -> int:
    from trio_engineio._transports import engineio_url
    from trio_engineio.client import AsyncClient
    from trio_engineio.exceptions import EngineIOError
    from trio_engineio.protocol import Transport

    first = transport or "polling"
    tried = engineio_url(url, path, Transport(first))
    print(f"* connecting to {tried.split('?', 1)[0]}", file=sys.stderr)
    status = _StatusLines()
    logger = logging.Logger("trio_engineio.cli", logging.INFO)  # this run's own, not in logging's registry
    logger.addHandler(status)
    client = AsyncClient(logger=logger)
    ended = trio.Event()
    reasons: list[str] = []

    def on_disconnect(reason: str) -> None:
        reasons.append(str(reason))
        ended.set()

    client.on("disconnect", on_disconnect)
    async with client:
        try:
            await client.connect(
                url, headers=dict(headers), transports=[transport] if transport else None, engineio_path=path
            )
        except EngineIOError as exc:
            print("\n".join(explain_failure(exc, tried, path.strip("/"), first)), file=sys.stderr)
            return 1
        print(f"* connected, sid {client.sid}, transport {client.transport()}", file=sys.stderr)

        # After end of input, replies are awaited until the line has been quiet for `linger`.
        quiet = trio.CancelScope(deadline=trio.current_time() + linger)

        async def print_messages() -> None:
            async for data in client:
                quiet.deadline = trio.current_time() + linger
                print(format_message(data), flush=True)
            await ended.wait()  # the disconnect handler runs once the messages are all out
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
    reason = reasons[0] if reasons else "transport error"
    summary = _CLOSE_EXPLANATIONS.get(reason, f"* disconnected ({reason})")
    if status.close_detail and reason != "client disconnect":
        summary += f": {status.close_detail}"
    print(summary, file=sys.stderr)
    return 1 if reason in ("ping timeout", "transport error") else 0


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
    if logging.getLogger().handlers:
        # The app configured logging (logging.basicConfig, say), and hypercorn's loggers propagate to
        # it: a handler of their own as well would print each of their lines twice.
        for name in ("hypercorn.access", "hypercorn.error"):
            logger = logging.getLogger(name)
            if logger.level == logging.NOTSET:
                logger.setLevel(logging.INFO)  # what hypercorn's own handlers show
        config.accesslog = logging.getLogger("hypercorn.access")
        config.errorlog = logging.getLogger("hypercorn.error")

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
        The exit status: 0, or 1 when ``connect`` could not connect or its connection
        failed, 2 for a ``connect`` URL that cannot work (argparse also exits with 2 on
        bad arguments), 130 when ``connect`` was interrupted (Ctrl-C).

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
    try:
        url, path, notes = connect_target(args.url, args.path)
    except _UsageError as exc:
        print(f"! {exc}", file=sys.stderr)
        return 2
    for note in notes:
        print(f"* {note}", file=sys.stderr)
    try:
        return trio.run(_connect, url, args.transport, args.header, path, args.linger)
    except KeyboardInterrupt:
        print("* interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
