"""ASGIApp: route ASGI traffic to the Engine.IO server, static files or another app.

Served by ``hypercorn --worker-class trio module:app``. ASGI lifespan opens the
server's nursery, so sessions and background tasks live exactly as long as the
application does.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from trio_engineio import _hypercorn
from trio_engineio import server as _server
from trio_engineio._http import ASGIApplication, Message, Receive, Scope, Send, send_response
from trio_engineio.server import AsyncServer

__all__ = ["ASGIApp", "get_static_file"]

_WRONG_LOOP = (
    "trio_engineio runs on Trio, but this ASGI server runs the application on {library}: "
    "start it with `hypercorn --worker-class trio module:app` (or `trio-engineio serve module:app`)"
)
"""Logged once and answered to everything when the ASGI server does not run the app on Trio."""
_TEXT_PLAIN = (b"content-type", b"text/plain; charset=utf-8")


_CONTENT_TYPES = {
    "css": "text/css",
    "gif": "image/gif",
    "html": "text/html",
    "ico": "image/x-icon",
    "jpg": "image/jpeg",
    "js": "application/javascript",
    "json": "application/json",
    "map": "application/json",
    "mjs": "application/javascript",
    "png": "image/png",
    "svg": "image/svg+xml",
    "txt": "text/plain",
    "wasm": "application/wasm",
}


def get_static_file(path: str, static_files: dict[str, Any]) -> dict[str, str] | None:
    """Map a URL path to a file with python-engineio's ``static_files`` rules.

    Args:
        path: the URL path (without the mount's ``root_path``).
        static_files: ``{url_prefix: filename | directory/ | {"filename": ..., "content_type": ...}}``;
            a ``""`` key names the file served for directory URLs (default ``index.html``).

    Returns:
        ``{"filename": ..., "content_type": ...}``, or ``None`` when nothing
        matches or the path tries to leave its directory.

    Example:
        >>> get_static_file("/static/app.js", {"/static": "public/"})
        {'filename': 'public/app.js', 'content_type': 'application/javascript'}
    """
    extra_path = ""
    entry: Any = static_files.get(path)
    if entry is None:
        remaining = path
        while remaining:
            remaining, last = remaining.rsplit("/", 1)
            extra_path = "/" + last + extra_path
            # The "" key names the directory index file; it is not a URL prefix
            # (python-engineio matches it as one, so "/" + index shadowed "/" mappings).
            if remaining in static_files and remaining != "":
                entry = static_files[remaining]
                break
            if remaining + "/" in static_files:
                entry = static_files[remaining + "/"]
                break
    if entry is None:
        return None
    if any(part in ("..", ".") or "\\" in part or "\0" in part for part in extra_path.split("/")):
        return None
    found: dict[str, str] = {"filename": entry} if isinstance(entry, str) else dict(entry)
    if found["filename"].endswith("/") and extra_path.startswith("/"):
        extra_path = extra_path[1:]
    found["filename"] += extra_path
    if found["filename"].endswith("/"):
        index = static_files.get("")
        if index is None:
            found["filename"] += "index.html"
        elif isinstance(index, str):
            found["filename"] += index
        else:
            found["filename"] += index["filename"]
            if "content_type" in index:
                found["content_type"] = index["content_type"]
    if "content_type" not in found:
        extension = found["filename"].rsplit(".", 1)[-1].lower()
        found["content_type"] = _CONTENT_TYPES.get(extension, "application/octet-stream")
    return found


class ASGIApp:
    """An ASGI application serving an :class:`~trio_engineio.AsyncServer`, like python-engineio's ``ASGIApp``.

    Requests under ``engineio_path`` go to the server, then static files are
    tried, then ``other_asgi_app``; anything left gets a 404 (a websocket too,
    where the ASGI server offers the websocket denial response extension; else
    it is closed). ASGI lifespan runs the server (see :meth:`lifespan`). Run by an
    ASGI server on asyncio instead of Trio, it logs once at ERROR how to start it
    on Trio, fails lifespan startup with that message, and answers every request
    500 with it.

    Args:
        engineio_server: the server.
        other_asgi_app: an ASGI app that gets every request not for Engine.IO
            or a static file (and lifespan events too).
        static_files: python-engineio's static file mapping (see
            :func:`~trio_engineio.asgi.get_static_file`).
        engineio_path: the URL prefix of Engine.IO, under the scope's ``root_path``;
            ``None`` sends all traffic to the server, and so do ``''`` and ``'/'`` (every
            path is under the root), as in python-engineio.
        on_startup: a callable (sync or async) run at lifespan startup.
        on_shutdown: a callable (sync or async) run at lifespan shutdown.
        hypercorn_worker_fixes: under hypercorn's trio worker, fix its close race (a
            client could crash the worker) and keep one connection's failure from ending
            the worker; ``TRIO_ENGINEIO_HYPERCORN_FIXES=0`` also turns it off. See
            :doc:`/performance`.
        hypercorn_fast_path: under hypercorn's trio worker, write websocket messages
            straight to the socket when no one else is writing;
            ``TRIO_ENGINEIO_HYPERCORN_FAST_PATH=0`` also turns it off. See :doc:`/performance`.

    Example::

        eio = trio_engineio.AsyncServer()
        app = trio_engineio.ASGIApp(eio, static_files={"/": "index.html"})
        # hypercorn --worker-class trio module:app
    """

    def __init__(
        self,
        engineio_server: AsyncServer,
        other_asgi_app: ASGIApplication | None = None,
        static_files: dict[str, Any] | None = None,
        engineio_path: str | None = "engine.io",
        on_startup: Callable[[], Any] | None = None,
        on_shutdown: Callable[[], Any] | None = None,
        *,
        hypercorn_worker_fixes: bool = True,
        hypercorn_fast_path: bool = True,
    ) -> None:
        self.engineio_server = engineio_server
        self.hypercorn_worker_fixes = hypercorn_worker_fixes
        self._worker_checked = False
        self._wrong_loop: str | None = None  # what every request is answered, when not run on Trio
        self._lifespan_nursery: trio.Nursery | None = None
        self._termination_watched: object = None  # the lifespan nursery watched in (one per run)
        engineio_server._hypercorn_fast_path = hypercorn_fast_path
        self.other_asgi_app = other_asgi_app
        if engineio_path is not None:
            # '' and '/' mean the root, as in python-engineio: every request goes to the server.
            stripped = engineio_path.strip("/")
            engineio_path = f"/{stripped}/" if stripped else "/"
        self.engineio_path = engineio_path
        self.static_files = static_files or {}
        self.on_startup = on_startup
        self.on_shutdown = on_shutdown

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI entry point: route a ``lifespan``, ``http`` or ``websocket`` scope.

        Args:
            scope: the ASGI connection scope.
            receive: the ASGI receive callable.
            send: the ASGI send callable.

        Raises:
            EngineIOError: an Engine.IO request while the server is not running
                (no lifespan, no ``async with``).

        Example::

            async with trio_engineio.testing.open_lifespan(app), trio_engineio.testing.open_http_client(app) as http:
                response = await http.get("/engine.io/", params={"EIO": "4", "transport": "polling"})
        """
        kind = scope["type"]
        if not self._worker_checked:
            self._check_worker(send)
        if self._wrong_loop is not None:
            await self._refuse_wrong_loop(scope, receive, send, self._wrong_loop)
            return
        if kind == "lifespan":
            await self.lifespan(scope, receive, send)
            return
        if self._termination_watched is not self._lifespan_nursery:
            self._watch_termination(send)
        path = _app_path(scope)
        if self.engineio_path is None or (path if path.endswith("/") else path + "/").startswith(self.engineio_path):
            await self.engineio_server.handle_request(scope, receive, send)
            return
        if kind == "http" and self.static_files:
            static_file = get_static_file(path, self.static_files)
            if static_file is not None and await trio.Path(static_file["filename"]).is_file():
                await self.serve_static_file(static_file, receive, send)
                return
        if self.other_asgi_app is not None:
            await self.other_asgi_app(scope, receive, send)
        elif kind == "websocket":
            await _refuse_websocket(scope, receive, send, 404, b"Not Found")
        else:
            await self.not_found(receive, send)

    def _check_worker(self, send: Send) -> None:
        # At lifespan startup, or at the first request when lifespan is off.
        self._worker_checked = True
        library = _foreign_async_library()
        if library is not None:
            self._wrong_loop = _WRONG_LOOP.format(library=library)
            self.engineio_server.logger.error("%s", self._wrong_loop)
            return
        if _hypercorn.is_trio_worker_send(send):
            _hypercorn.install_worker_fixes(self.hypercorn_worker_fixes, send=send)

    async def _refuse_wrong_loop(self, scope: Scope, receive: Receive, send: Send, text: str) -> None:
        """Answer every event with ``text``: on another event loop no Trio call can run, so none is made."""
        kind = scope["type"]
        if kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.failed", "message": text})
                    return
                if message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        elif kind == "websocket":
            await _refuse_websocket(scope, receive, send, 500, text.encode())
        else:
            await send_response(send, 500, [_TEXT_PLAIN], text.encode())

    def _watch_termination(self, send: Send) -> None:
        # Lifespan's send knows nothing of hypercorn's worker context; the first request's does.
        # The watcher belongs to the application's lifetime: the lifespan task's nursery.
        nursery = self._lifespan_nursery
        self._termination_watched = nursery
        wait_terminated = _hypercorn.worker_terminated(send)
        if nursery is not None and wait_terminated is not None:
            nursery.start_soon(self._shutdown_on_termination, wait_terminated)

    async def _shutdown_on_termination(self, wait_terminated: Callable[[], Awaitable[None]]) -> None:
        """Close every session as soon as hypercorn starts shutting down.

        hypercorn keeps open connections for ``graceful_timeout`` seconds and runs
        lifespan shutdown only after it has cut them: by then no client could be
        told. Closing now, every client still connected gets its CLOSE packet and
        every ``disconnect`` handler runs with ``"server disconnect"``.
        """
        await wait_terminated()
        self.engineio_server.logger.info("hypercorn is shutting down: closing every Engine.IO session")
        await self.engineio_server.shutdown()

    async def serve_static_file(self, static_file: dict[str, str], receive: Receive, send: Send) -> None:
        """Send a static file as the response (404 if it cannot be read).

        Args:
            static_file: ``{"filename": ..., "content_type": ...}``, as
                :func:`~trio_engineio.asgi.get_static_file` returns.
            receive: the ASGI receive callable.
            send: the ASGI send callable.

        Example::

            await app.serve_static_file({"filename": "index.html", "content_type": "text/html"}, receive, send)
        """
        try:
            body = await trio.Path(static_file["filename"]).read_bytes()
        except OSError as exc:  # unreadable, or gone since it was found: never an error for the ASGI server
            self.engineio_server.logger.error("cannot serve static file %s: %r", static_file["filename"], exc)
            await self.not_found(receive, send)
            return
        headers = [(b"content-type", static_file["content_type"].encode())]
        await send_response(send, 200, headers, body)

    async def not_found(self, receive: Receive, send: Send) -> None:
        """Answer 404 ``Not Found``; override it to customise the answer.

        Args:
            receive: the ASGI receive callable.
            send: the ASGI send callable.

        Example::

            class MyApp(trio_engineio.ASGIApp):
                async def not_found(self, receive, send):
                    await send({"type": "http.response.start", "status": 404, "headers": []})
                    await send({"type": "http.response.body", "body": b"nothing here"})
        """
        await send_response(send, 404, [(b"content-type", b"text/plain")], b"Not Found")

    async def lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the server's nursery for the application's lifetime.

        Startup opens it, then runs ``on_startup``; shutdown runs ``on_shutdown``,
        then closes every session gracefully. With ``other_asgi_app``, that app
        sees the same lifespan events and a failure it reports is passed on; an
        app that does not speak lifespan (it returns or raises) is left out. A
        failing ``on_startup``/``on_shutdown`` is reported as
        ``lifespan.startup.failed`` / ``lifespan.shutdown.failed``.

        Args:
            scope: the ``lifespan`` scope.
            receive: the ASGI receive callable.
            send: the ASGI send callable.

        Raises:
            RuntimeError: the server is already running (``async with eio:`` around
                an app whose lifespan also runs).

        Example::

            async with trio_engineio.testing.open_lifespan(app):  # what hypercorn does
                assert app.engineio_server.running
        """
        async with self.engineio_server, trio.open_nursery() as nursery:
            self._lifespan_nursery = nursery
            try:
                other = None
                if self.other_asgi_app is not None:
                    other = _OtherAppLifespan(self.other_asgi_app, scope)
                    nursery.start_soon(other.run)
                while True:
                    message = await receive()
                    kind = message["type"]
                    if kind not in ("lifespan.startup", "lifespan.shutdown"):
                        continue
                    hook = self.on_startup if kind == "lifespan.startup" else self.on_shutdown
                    failure: str | None = None
                    try:
                        await _call(hook)
                    except Exception as exc:
                        failure = repr(exc)
                    if failure is None and other is not None:
                        failure = await other.forward(message)
                    if kind == "lifespan.shutdown":
                        await self.engineio_server.shutdown()
                    if failure is not None:
                        await send({"type": kind + ".failed", "message": failure})
                    else:
                        await send({"type": kind + ".complete"})
                    if failure is not None or kind == "lifespan.shutdown":
                        nursery.cancel_scope.cancel()
                        return
            finally:
                self._lifespan_nursery = None


class _OtherAppLifespan:
    """Runs ``other_asgi_app``'s lifespan beside ours and relays each event to it."""

    def __init__(self, app: ASGIApplication, scope: Scope) -> None:
        self._app = app
        self._scope = scope
        self._to_app, self._app_receive = trio.open_memory_channel[Message](1)
        self._app_send, self._from_app = trio.open_memory_channel[Message](1)

    async def run(self) -> None:
        async with self._app_send, self._app_receive:  # when it ends, forward() must not wait
            # An app that does not support lifespan may raise; ours goes on without it.
            with contextlib.suppress(Exception):
                await self._app(self._scope, self._app_receive.receive, self._app_send.send)

    async def forward(self, message: Message) -> str | None:
        """Relay one event; return the other app's failure message, or ``None``."""
        try:
            await self._to_app.send(message)
            reply = await self._from_app.receive()
        except (trio.EndOfChannel, trio.BrokenResourceError):
            return None  # it ended: it does not speak lifespan
        if reply["type"].endswith(".failed"):
            return str(reply.get("message", ""))
        return None


async def _call(hook: Callable[[], Any] | None) -> None:
    if hook is None:
        return
    result = hook()
    if inspect.isawaitable(result):
        await result


async def _refuse_websocket(scope: Scope, receive: Receive, send: Send, status: int, body: bytes) -> None:
    """Refuse a websocket handshake with an HTTP ``status`` where the ASGI server can send one.

    That is ASGI's websocket denial response extension (hypercorn has it); elsewhere
    the websocket is closed before it is accepted, which servers answer with 403.
    """
    message = await receive()
    if message["type"] != "websocket.connect":
        return  # the client went away first
    if "websocket.http.response" in (scope.get("extensions") or {}):
        headers = [_TEXT_PLAIN, (b"content-length", str(len(body)).encode())]
        await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1000})


def _foreign_async_library() -> str | None:
    """The async library running this task when it is not Trio (``'asyncio'``...); ``None`` under Trio."""
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        pass
    else:
        return None
    try:
        import sniffio  # trio's own dependency

        return sniffio.current_async_library()
    except Exception:  # sniffio missing, or it does not know this loop
        return "an event loop that is not Trio's"


def _app_path(scope: Scope) -> str:
    """The path below the mount point: ASGI servers may or may not strip ``root_path``."""
    path: str = scope.get("path", "/")
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path):
        path = path[len(root_path) :] or "/"
    return path


# AsyncServer.attach() builds an ASGIApp without importing this module (a layer above it).
_server._asgi_app_class = ASGIApp
