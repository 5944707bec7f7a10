"""The client's transports: long-polling over httpx, websocket over trio-websocket.

This module is the edge where foreign errors stop: every httpx, trio-websocket,
``OSError`` or timeout failure leaves it as an :class:`~trio_engineio.EngineIOError`
subclass (:class:`~trio_engineio.exceptions.ConnectionError` for the network,
:class:`~trio_engineio.exceptions.RemoteProtocolError` for a bad packet), with the
original kept as ``__cause__``.

Both transports only move bytes and decode packets; what the packets mean is
the business of :class:`~trio_engineio.protocol.client_session.ClientSession`.

Websockets come from a :class:`WebSocketConnector` (the client's
``websocket_connector``): :class:`TrioWebSocketConnector` by default, or any
object that returns a :class:`ClientWebSocket`, such as the in-memory one of
:mod:`trio_engineio.testing`.
"""

from __future__ import annotations

import itertools
import json
import secrets
import ssl
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
import trio
import trio_websocket

from trio_engineio.exceptions import ConnectionError, EngineIOError, WebSocketClosedError
from trio_engineio.protocol.handshake import Transport
from trio_engineio.protocol.packet import Packet
from trio_engineio.protocol.payload import decode_payload_bytes

__all__ = [
    "ClientWebSocket",
    "PollingTransport",
    "TrioWebSocketConnector",
    "WebSocketConnector",
    "WebSocketTransport",
    "connect_websocket",
    "engineio_url",
    "make_ssl_context",
    "split_websocket_options",
    "timestamped",
    "websocket_handshake_headers",
]

_WEBSOCKET_OPTIONS = frozenset({"subprotocols", "message_queue_size", "max_message_size", "receive_buffer_size"})
# trio-websocket's own default (1 MiB) is below what engine.io servers send by default.
_DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024


def engineio_url(url: str, engineio_path: str, transport: Transport) -> str:
    """The URL of the Engine.IO endpoint, as python-engineio builds it.

    Args:
        url: the server's URL; its query string is kept.
        engineio_path: the endpoint's path, with or without slashes.
        transport: the transport the URL is for (decides http/ws).

    Returns:
        ``<scheme>://<netloc>/<path>/?<query>&transport=<transport>&EIO=4``.

    Raises:
        ValueError: the URL's scheme is not http, https, ws or wss.

    Example:
        >>> engineio_url("http://h:1/?a=b", "engine.io", Transport.WEBSOCKET)
        'ws://h:1/engine.io/?a=b&transport=websocket&EIO=4'
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "ws", "wss"):
        raise ValueError(f"the URL scheme must be http, https, ws or wss, not {parts.scheme!r}")
    scheme = "http" if transport is Transport.POLLING else "ws"
    if parts.scheme in ("https", "wss"):
        scheme += "s"
    path = engineio_path.strip("/")
    separator = "&" if parts.query else ""
    return f"{scheme}://{parts.netloc}/{path}/?{parts.query}{separator}transport={transport.value}&EIO=4"


def make_ssl_context(verify: bool) -> ssl.SSLContext:
    """The TLS context of websocket connections.

    Args:
        verify: ``False`` accepts any certificate (for self-signed test servers).

    Returns:
        A client context.
    """
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class _Timestamps:
    """Cache-busting ``t=`` values: unique per request, no clock needed."""

    def __init__(self) -> None:
        self._prefix = secrets.token_hex(4)
        self._counter = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}.{next(self._counter)}"


def _json_or_none(body: bytes) -> object:
    try:
        return json.loads(body)
    except ValueError:
        return None


@contextmanager
def _http_errors(action: str) -> Iterator[None]:
    """Translate httpx's, the OS's and timeout errors raised by ``action``."""
    try:
        yield
    except trio.TooSlowError as exc:
        raise ConnectionError(f"{action} timed out") from exc
    except httpx.HTTPError as exc:
        raise ConnectionError(f"{action} failed: {exc!r}") from exc
    except OSError as exc:
        raise ConnectionError(f"{action} failed: {exc!r}") from exc


def _split_cookie_header(headers: Mapping[str, str]) -> tuple[dict[str, str], str | None]:
    others: dict[str, str] = {}
    cookie: str | None = None
    for name, value in headers.items():
        if name.lower() == "cookie":
            cookie = value
        else:
            others[name] = value
    return others, cookie


def _merge_cookies(*cookies: str | None) -> str | None:
    present = [c for c in cookies if c]
    return "; ".join(present) if present else None


class PollingTransport:
    """HTTP long-polling over an ``httpx.AsyncClient``.

    The caller's headers go on every request; the client's cookie jar (which
    keeps what the server sets, for sticky load balancers) is merged with a
    ``Cookie`` header the caller gave.

    Args:
        http: the HTTP client (never closed here).
        url: the polling URL from :func:`engineio_url`.
        headers: extra request headers.
        request_timeout: seconds any request may take (a GET waits longer, see :meth:`get`).
        timestamp_requests: add a cache-busting ``t`` parameter to each request.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        url: str,
        *,
        headers: Mapping[str, str],
        request_timeout: float,
        timestamp_requests: bool,
    ) -> None:
        self.http = http
        self.url = url
        self._headers, self._cookie = _split_cookie_header(headers)
        self._request_timeout = request_timeout
        self._timestamps = _Timestamps() if timestamp_requests else None

    def set_sid(self, sid: str) -> None:
        """Address the session ``sid`` from now on."""
        self.url += "&sid=" + sid

    async def _request(
        self, method: str, time_limit: float, body: bytes | None, content_type: str | None
    ) -> httpx.Response:
        url = self.url if self._timestamps is None else f"{self.url}&t={self._timestamps.next()}"
        headers = dict(self._headers)
        if content_type is not None:
            headers["Content-Type"] = content_type
        with _http_errors(f"{method} {url}"), trio.fail_after(time_limit):
            request = self.http.build_request(method, url, headers=headers, content=body, timeout=time_limit)
            cookie = _merge_cookies(self._cookie, request.headers.get("cookie"))
            if cookie is not None:
                request.headers["Cookie"] = cookie
            response = await self.http.send(request)
            try:
                await response.aread()
            finally:
                await response.aclose()
        return response

    async def handshake(self) -> list[Packet]:
        """Open a session: the GET whose answer starts with the OPEN packet.

        Returns:
            The packets of the response (the OPEN packet first).

        Raises:
            ConnectionError: the request failed, timed out or was refused
                (``status_code`` and ``error_body`` say how), or the answer
                is not a payload.
        """
        response = await self._request("GET", self._request_timeout, None, None)
        if not response.is_success:
            raise ConnectionError(
                f"Unexpected status code {response.status_code} in server response",
                status_code=response.status_code,
                error_body=_json_or_none(response.content),
            )
        try:
            return decode_payload_bytes(response.content)
        except EngineIOError as exc:
            raise ConnectionError(f"Unexpected response from server: {exc}", status_code=response.status_code) from exc

    async def get(self, time_limit: float) -> list[Packet]:
        """Long-poll for packets.

        Args:
            time_limit: seconds the server may hold the request.

        Returns:
            The packets of the response.

        Raises:
            ConnectionError: the request failed, timed out or was answered
                with an error status.
            UnknownPacketError: the body is not a valid payload.
        """
        response = await self._request("GET", time_limit, None, None)
        self._check(response)
        return decode_payload_bytes(response.content)

    async def post(self, body: bytes) -> None:
        """Send one payload.

        Args:
            body: the encoded payload.

        Raises:
            ConnectionError: the request failed, timed out or was answered
                with an error status.
        """
        response = await self._request("POST", self._request_timeout, body, "text/plain;charset=UTF-8")
        self._check(response)

    @staticmethod
    def _check(response: httpx.Response) -> None:
        if not response.is_success:
            raise ConnectionError(
                f"the server answered {response.request.method} with status {response.status_code}",
                status_code=response.status_code,
                error_body=_json_or_none(response.content),
            )


class ClientWebSocket(Protocol):
    """The websocket an :class:`~trio_engineio.AsyncClient` talks through.

    A :class:`WebSocketConnector` returns one. Each call carries one whole
    websocket message; text frames are ``str`` and binary frames ``bytes``.
    The client never calls :meth:`send` from two tasks at once, nor :meth:`receive`.
    A structural protocol: any object with these three methods fits.

    Example::

        class LoggingWebSocket:
            def __init__(self, inner):
                self.inner = inner

            async def send(self, frame):
                print(">", frame)
                await self.inner.send(frame)

            async def receive(self):
                frame = await self.inner.receive()
                print("<", frame)
                return frame

            async def aclose(self, *, polite=True):
                await self.inner.aclose(polite=polite)
    """

    async def send(self, frame: str | bytes) -> None:
        """Send one message: a text frame for ``str``, binary for ``bytes``.

        Args:
            frame: the whole message.

        Raises:
            ~trio_engineio.exceptions.WebSocketClosedError: the websocket is closed.

        Example::

            await websocket.send("4hello")  # an Engine.IO MESSAGE packet
        """
        ...

    async def receive(self) -> str | bytes:
        """Receive the next message.

        Returns:
            ``str`` for a text frame, ``bytes`` for a binary one.

        Raises:
            ~trio_engineio.exceptions.WebSocketClosedError: the websocket is closed
                (``orderly`` when the server closed it with a normal close code).

        Example::

            frame = await websocket.receive()
        """
        ...

    async def aclose(self, *, polite: bool = True) -> None:
        """Close the websocket and release what it holds; idempotent, and safe when cancelled.

        Args:
            polite: run the websocket close handshake first (bounded by the
                connector's ``time_limit``); ``False`` closes at once.

        Example::

            await websocket.aclose(polite=False)  # the server stopped answering
        """
        ...


class WebSocketConnector(Protocol):
    """Where an :class:`~trio_engineio.AsyncClient`'s websockets come from (its ``websocket_connector``).

    What ``transport=`` is to ``httpx.AsyncClient``: the client keeps the
    protocol, the connector only opens websockets. The default runs
    trio-websocket over TCP or TLS; :func:`trio_engineio.testing.open_client`
    uses :class:`trio_engineio.testing.InMemoryWebSocketConnector`, which
    reaches an ASGI app in memory.

    Example::

        class Recording:
            def __init__(self, inner):
                self.inner, self.urls = inner, []

            async def connect(self, nursery, url, *, headers, time_limit):
                self.urls.append(url)
                return await self.inner.connect(nursery, url, headers=headers, time_limit=time_limit)
    """

    async def connect(
        self, nursery: trio.Nursery, url: str, *, headers: Mapping[str, str], time_limit: float
    ) -> ClientWebSocket:
        """Open a websocket and complete its handshake.

        Args:
            nursery: where the websocket's background tasks may run; it
                outlives the websocket (it is the connection's nursery).
            url: the ``ws://`` or ``wss://`` URL, query string included.
            headers: the handshake headers (the caller's, ``websocket_extra_options``'
                ``headers``, and a ``Cookie`` merged with the client's cookie jar).
            time_limit: the client's ``request_timeout``: bound each step of
                the handshake, and a polite close, by it.

        Returns:
            The open websocket; the client always closes it (:meth:`ClientWebSocket.aclose`).

        Raises:
            ~trio_engineio.exceptions.ConnectionError: the websocket could not be
                opened, timed out, or was refused (``status_code`` and ``error_body``
                then tell how).

        Example::

            websocket = await connector.connect(
                nursery, "ws://127.0.0.1:8000/engine.io/?EIO=4&transport=websocket", headers={}, time_limit=5
            )
        """
        ...


class TrioWebSocketConnector:
    """The default :class:`WebSocketConnector`: trio-websocket over TCP or TLS (see :func:`connect_websocket`).

    Args:
        ssl_context: the TLS context for ``wss``, or a function that makes it when one is needed.
        options: trio-websocket's options from ``websocket_extra_options``
            (``headers`` in it are ignored: the client merges them).
    """

    def __init__(self, ssl_context: ssl.SSLContext | Callable[[], ssl.SSLContext], options: Mapping[str, Any]) -> None:
        self._ssl_context = ssl_context
        self._options = {key: value for key, value in options.items() if key != "headers"}

    async def connect(
        self, nursery: trio.Nursery, url: str, *, headers: Mapping[str, str], time_limit: float
    ) -> WebSocketTransport:
        """Open the websocket; see :meth:`WebSocketConnector.connect`."""
        return await connect_websocket(
            nursery,
            url,
            headers=headers,
            http=None,
            ssl_context=self._ssl_context,
            time_limit=time_limit,
            options=self._options,
            timestamp=False,
        )


def timestamped(url: str) -> str:
    """``url`` with a cache-busting ``t`` parameter added (its query string must not be empty)."""
    return url + "&t=" + _Timestamps().next()


def websocket_handshake_headers(
    url: str, headers: Mapping[str, str], http: httpx.AsyncClient | None, options: Mapping[str, Any]
) -> dict[str, str]:
    """The headers of a websocket handshake.

    Args:
        url: the ``ws://`` or ``wss://`` URL.
        headers: the caller's headers.
        http: the HTTP client whose cookie jar holds cookies for the URL, if any.
        options: ``websocket_extra_options``; its ``headers`` go over ``headers``.

    Returns:
        The headers, with one ``Cookie`` header merging the caller's and the jar's.
    """
    extra_headers, _ = split_websocket_options(options)
    merged, user_cookie = _split_cookie_header({**headers, **extra_headers})
    jar_cookie = None
    if http is not None:  # the jar holds cookies by http(s) URL
        jar_cookie = http.build_request("GET", "http" + url[2:]).headers.get("cookie")
    cookie = _merge_cookies(user_cookie, jar_cookie)
    if cookie is not None:
        merged["Cookie"] = cookie
    return merged


class _GuardedNursery:
    """Hands trio-websocket a nursery in which its reader task cannot crash the connection.

    trio-websocket reports a refused handshake by raising from its reader task;
    the error is caught here, kept, and the handshake waiting for it is woken
    by cancelling ``handshake_scope``. ``tasks_scope`` holds the reader task, so
    that closing the websocket can end it (see :meth:`WebSocketTransport.aclose`).
    """

    def __init__(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        self.error: BaseException | None = None
        self.handshake_scope = trio.CancelScope()
        self.tasks_scope = trio.CancelScope()

    def start_soon(self, async_fn: Callable[[], Awaitable[object]], *args: object, name: object = None) -> None:
        self._nursery.start_soon(self._guard, async_fn, name=name)

    async def _guard(self, async_fn: Callable[[], Awaitable[object]]) -> None:
        try:
            with self.tasks_scope:
                await async_fn()
        except Exception as exc:
            self.error = exc
        finally:
            # Wakes a handshake still waiting (no effect once it is done).
            self.handshake_scope.cancel()


class WebSocketTransport:
    """One websocket connection; see :func:`connect_websocket`.

    The TCP (or TLS) stream is opened here and always closed by :meth:`aclose`,
    whoever closed the websocket first.
    """

    def __init__(
        self,
        connection: trio_websocket.WebSocketConnection,
        stream: trio.SocketStream | trio.SSLStream[trio.SocketStream],
        guard: _GuardedNursery,
        close_timeout: float,
    ) -> None:
        self._connection = connection
        self._stream = stream
        self._guard = guard
        self._close_timeout = close_timeout

    async def send(self, frame: str | bytes) -> None:
        """Send one message (a text frame for ``str``, binary for ``bytes``).

        Raises:
            WebSocketClosedError: the websocket is closed.
        """
        try:
            await self._connection.send_message(frame)
        except trio_websocket.ConnectionClosed as exc:
            raise self._closed(exc.reason) from exc
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            raise WebSocketClosedError(f"the websocket broke: {exc!r}", code=None) from exc

    async def receive(self) -> str | bytes:
        """Receive one message.

        Raises:
            WebSocketClosedError: the websocket is closed (``orderly`` when the
                server closed it with a normal close code).
        """
        try:
            return await self._connection.get_message()
        except trio_websocket.ConnectionClosed as exc:
            raise self._closed(exc.reason) from exc

    def _closed(self, reason: trio_websocket.CloseReason | None) -> WebSocketClosedError:
        if reason is None:
            detail = f": {self._guard.error!r}" if self._guard.error is not None else ""
            return WebSocketClosedError(f"the websocket closed{detail}", code=None)
        return WebSocketClosedError(f"the websocket closed with code {reason.code} ({reason.name})", code=reason.code)

    async def aclose(self, *, polite: bool = True) -> None:
        """Close the websocket and its stream; idempotent.

        Safe to call when cancelled: the close is shielded and bounded.

        Args:
            polite: run the websocket close handshake first (for at most the
                close timeout); ``False`` just closes the stream.
        """
        with trio.CancelScope(shield=True):
            with trio.move_on_after(self._close_timeout if polite else 0):
                with suppress(
                    trio_websocket.ConnectionClosed, trio.BrokenResourceError, trio.ClosedResourceError, OSError
                ):
                    await self._connection.aclose()
            await self._stream.aclose()
            # trio-websocket's reader task does not notice the closed stream while it waits
            # for room in its message queue (the application stopped reading): end it here,
            # or the connection's nursery would wait for it forever.
            self._guard.tasks_scope.cancel()


def split_websocket_options(options: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, Any]]:
    """Split ``websocket_extra_options`` into handshake headers and trio-websocket options.

    Args:
        options: the mapping given to the client.

    Returns:
        The extra headers, and the keyword arguments for ``wrap_client_stream``.

    Raises:
        TypeError: an unknown key.
    """
    extra = dict(options)
    headers = dict(extra.pop("headers", None) or {})
    unknown = set(extra) - _WEBSOCKET_OPTIONS
    if unknown:
        raise TypeError(
            f"unknown websocket_extra_options {sorted(unknown)}; allowed: 'headers', {sorted(_WEBSOCKET_OPTIONS)}"
        )
    extra.setdefault("max_message_size", _DEFAULT_MAX_MESSAGE_SIZE)
    return headers, extra


async def connect_websocket(
    nursery: trio.Nursery,
    url: str,
    *,
    headers: Mapping[str, str],
    http: httpx.AsyncClient | None,
    ssl_context: ssl.SSLContext | Callable[[], ssl.SSLContext],
    time_limit: float,
    options: Mapping[str, Any],
    timestamp: bool,
) -> WebSocketTransport:
    """Open a websocket; its background reader runs in ``nursery``.

    Args:
        nursery: where trio-websocket's reader task runs (the connection's nursery).
        url: the ``ws://`` or ``wss://`` URL from :func:`engineio_url`.
        headers: extra handshake headers; a ``Cookie`` header is merged with
            the cookies ``http``'s jar holds for the URL.
        http: the HTTP client whose cookies go with the handshake, if any.
        ssl_context: the TLS context for ``wss``, or a function that makes it (called only
            for ``wss``: making one costs tens of milliseconds of CPU).
        time_limit: seconds the TCP connect and the handshake may take (each).
        options: ``websocket_extra_options``: ``headers`` (merged over
            ``headers``) and trio-websocket's ``subprotocols``,
            ``message_queue_size``, ``max_message_size`` and ``receive_buffer_size``.
        timestamp: add a cache-busting ``t`` parameter to the URL.

    Returns:
        The open websocket. The caller must :meth:`~WebSocketTransport.aclose` it.

    Raises:
        ConnectionError: the connection failed, timed out, or the server
            refused the handshake (``status_code`` and ``error_body`` say how).
        TypeError: an unknown key in ``options``.
    """
    _, ws_options = split_websocket_options(options)
    if timestamp:
        url = timestamped(url)
    parts = urlsplit(url)
    secure = parts.scheme == "wss"
    host = parts.hostname or ""
    port = parts.port or (443 if secure else 80)
    host_header = parts.netloc.rpartition("@")[2]
    resource = parts.path + ("?" + parts.query if parts.query else "")
    handshake_headers = websocket_handshake_headers(url, headers, http, options)
    header_list = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in handshake_headers.items()]

    stream: trio.SocketStream | trio.SSLStream[trio.SocketStream]
    try:
        with trio.fail_after(time_limit):
            if secure:
                context = ssl_context if isinstance(ssl_context, ssl.SSLContext) else ssl_context()
                stream = await trio.open_ssl_over_tcp_stream(host, port, ssl_context=context, https_compatible=True)
            else:
                stream = await trio.open_tcp_stream(host, port)
    except trio.TooSlowError as exc:
        raise ConnectionError(f"connecting to {host_header} timed out") from exc
    except OSError as exc:
        raise ConnectionError(f"cannot connect to {host_header}: {exc!r}") from exc

    guard = _GuardedNursery(nursery)
    connection: trio_websocket.WebSocketConnection | None = None
    try:
        with trio.move_on_after(time_limit) as timer, guard.handshake_scope:
            connection = await trio_websocket.wrap_client_stream(
                guard,  # type: ignore[arg-type]  # it only needs start_soon
                stream,
                host_header,
                resource,
                extra_headers=header_list,
                **ws_options,
            )
    except BaseException:
        with trio.CancelScope(shield=True):
            await stream.aclose()
        raise
    if connection is None:
        with trio.CancelScope(shield=True):
            await stream.aclose()
        error = guard.error
        if isinstance(error, trio_websocket.ConnectionRejected):
            body = error.body or b""
            raise ConnectionError(
                f"Unexpected status code {error.status_code} in server response",
                status_code=error.status_code,
                error_body=_json_or_none(body),
            ) from error
        if timer.cancelled_caught:
            raise ConnectionError(f"the websocket handshake with {host_header} timed out")
        raise ConnectionError(f"the websocket handshake with {host_header} failed: {error!r}") from error
    return WebSocketTransport(connection, stream, guard, time_limit)
