"""HTTP details of the server: the WSGI-style environ, CORS, compression, responses.

Kept apart from the session logic so that :mod:`trio_engineio.server` reads as
the protocol's flow and this module as the HTTP plumbing underneath.
"""

from __future__ import annotations

import gzip
import sys
import zlib
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from trio_engineio._concurrency import is_fatal
from trio_engineio._handlers import accepts_arguments
from trio_engineio._logging import LoggerLike
from trio_engineio.exceptions import ContentTooLongError

__all__ = [
    "ASGIApplication",
    "CorsOrigins",
    "Headers",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "build_environ",
    "choose_encoding",
    "compress",
    "cookie_header",
    "cors_headers",
    "origin_refused",
    "read_body",
    "send_response",
]

# The ASGI callables, typed as Starlette, Quart and hypercorn type them, so their apps fit.
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApplication = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]
CorsOrigins = Any
"""python-engineio's ``cors_allowed_origins``: ``None`` (same origin), ``"*"``, a string, a list
of strings, a callable taking the origin (and the environ), or ``[]`` (CORS handling off)."""


def build_environ(scope: Scope) -> dict[str, Any]:
    """A python-engineio style WSGI environ for an ASGI scope.

    Unlike python-engineio, ``REMOTE_ADDR``/``REMOTE_PORT`` come from the
    scope's client and ``wsgi.url_scheme`` from its scheme, and ``SCRIPT_NAME``
    is the scope's ``root_path``.
    """
    query_string: bytes = scope.get("query_string", b"")
    query = query_string.decode("latin-1")
    path: str = scope.get("path", "/")
    client = scope.get("client") or ("", 0)
    server = scope.get("server") or ("", 0)
    scheme = scope.get("scheme", "http")
    if scope["type"] == "websocket":
        scheme = {"ws": "http", "wss": "https"}.get(scheme, scheme)
    environ: dict[str, Any] = {
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scheme,
        "wsgi.errors": sys.stderr,
        "wsgi.async": True,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "SERVER_SOFTWARE": "trio_engineio",
        "REQUEST_METHOD": scope.get("method", "GET"),
        "SCRIPT_NAME": scope.get("root_path", ""),
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "RAW_URI": path + ("?" + query if query else ""),
        "SERVER_PROTOCOL": "HTTP/" + scope.get("http_version", "1.1"),
        "REMOTE_ADDR": client[0] or "",
        "REMOTE_PORT": str(client[1] or 0),
        "SERVER_NAME": server[0] or "",
        "SERVER_PORT": str(server[1] or 0) if server[1] is not None else "",
        "asgi.scope": scope,
    }
    for raw_name, raw_value in scope.get("headers", []):
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        value = raw_value.decode("latin-1")
        key = name if name in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + name
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


def choose_encoding(accept_encoding: str, available: Iterable[str] = ("gzip", "deflate")) -> str | None:
    """Pick the content coding the client prefers among ``available``, honouring q-values.

    ``q=0`` forbids a coding; ``*`` stands for any coding not named. Ties go to
    the order of ``available``.

    Example:
        >>> choose_encoding("deflate;q=0.5, gzip;q=0.8")
        'gzip'
        >>> choose_encoding("gzip;q=0, *")
        'deflate'
    """
    weights: dict[str, float] = {}
    for item in accept_encoding.split(","):
        name, _, params = item.strip().partition(";")
        name = name.strip().lower()
        if not name:
            continue
        weight = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        weights[name] = weight
    best: str | None = None
    best_weight = 0.0
    for coding in available:
        weight = weights.get(coding, weights.get("*", 0.0))
        if weight > best_weight:
            best, best_weight = coding, weight
    return best


def compress(body: bytes, coding: str) -> bytes:
    """Compress ``body`` with ``gzip`` or ``deflate`` (zlib-wrapped, as browsers expect)."""
    if coding == "gzip":
        return gzip.compress(body, compresslevel=6, mtime=0)
    return zlib.compress(body)


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """Read an HTTP request body, counting the bytes actually received.

    Args:
        receive: the ASGI receive callable.
        limit: the most bytes allowed.

    Returns:
        The body, or ``None`` if the client disconnected first.

    Raises:
        ContentTooLongError: the body exceeds ``limit`` (reading stops there).
    """
    chunks: list[bytes] = []
    size = 0
    message = await receive()
    while True:
        if message["type"] == "http.disconnect":
            return None
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise ContentTooLongError(f"request body exceeds max_http_buffer_size ({limit} bytes)")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
        message = await receive()


async def send_response(send: Send, status: int, headers: Headers, body: bytes) -> None:
    """Send a complete HTTP response with its Content-Length."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


# -- CORS and cookies ------------------------------------------------------------------


def allowed_origins(allowed: CorsOrigins, environ: dict[str, Any], logger: LoggerLike) -> list[str] | None:
    """The allowed origins for this request; ``None`` means any."""
    if allowed is None:
        host = environ.get("HTTP_HOST")
        if host is None:
            return []
        scheme = environ["wsgi.url_scheme"]
        origins = [f"{scheme}://{host}"]
        if "HTTP_X_FORWARDED_PROTO" in environ or "HTTP_X_FORWARDED_HOST" in environ:
            forwarded_scheme = environ.get("HTTP_X_FORWARDED_PROTO", scheme).split(",")[0].strip()
            forwarded_host = environ.get("HTTP_X_FORWARDED_HOST", host).split(",")[0].strip()
            origins.append(f"{forwarded_scheme}://{forwarded_host}")
        return origins
    if allowed == "*":
        return None
    if isinstance(allowed, str):
        return [allowed]
    if callable(allowed):
        origin = environ.get("HTTP_ORIGIN")
        try:
            # Arity decides, not a TypeError retry: that would call it twice and hide its own bugs.
            accepted = allowed(origin, environ) if accepts_arguments(allowed, 2, unknown=True) else allowed(origin)
        except BaseException as exc:
            if is_fatal(exc):
                raise
            logger.exception("cors_allowed_origins callable raised; refusing origin %r", origin)
            accepted = False
        return [origin] if accepted and origin else []
    origins = list(allowed)
    return None if "*" in origins else origins


def origin_refused(allowed: CorsOrigins, environ: dict[str, Any], logger: LoggerLike) -> bool:
    """Whether the request's Origin is not allowed (no Origin: allowed; ``[]``: CORS handling off)."""
    if allowed == []:
        return False
    origin = environ.get("HTTP_ORIGIN")
    if not origin:
        return False
    origins = allowed_origins(allowed, environ, logger)
    return origins is not None and origin not in origins


def cors_headers(allowed: CorsOrigins, credentials: bool, environ: dict[str, Any], logger: LoggerLike) -> Headers:
    """The CORS response headers for this request."""
    if allowed == []:
        return []
    headers: Headers = []
    origin = environ.get("HTTP_ORIGIN")
    if origin:
        origins = allowed_origins(allowed, environ, logger)
        if origins is None or origin in origins:
            headers.append((b"access-control-allow-origin", origin.encode("latin-1")))
            headers.append((b"vary", b"Origin"))
    if environ["REQUEST_METHOD"] == "OPTIONS":
        headers.append((b"access-control-allow-methods", b"OPTIONS, GET, POST"))
        requested = environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS")
        if requested:
            headers.append((b"access-control-allow-headers", requested.encode("latin-1")))
    if credentials:
        headers.append((b"access-control-allow-credentials", b"true"))
    return headers


def cookie_header(cookie: str | dict[str, Any] | None, sid: str) -> Headers:
    """The ``Set-Cookie`` header of a handshake, python-engineio's ``cookie`` option."""
    if not cookie:
        return []
    attributes = cookie if isinstance(cookie, dict) else {"name": cookie, "path": "/", "SameSite": "Lax"}
    text = f"{attributes.get('name', 'io')}={sid}"
    for name, value in attributes.items():
        if name == "name":
            continue
        if callable(value):
            value = value()
        text += f"; {name}" if value is True else f"; {name}={value}"
    return [(b"set-cookie", text.encode("latin-1"))]
