"""Polling requests: the handshake, GETs that wait for packets, POSTs that bring them.

Each function serves one HTTP request for a :class:`~trio_engineio._requests.ServerContext`
(the server) and hands the session's part to :class:`~trio_engineio._session.Session`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import trio

from trio_engineio._http import (
    Headers,
    Receive,
    Scope,
    Send,
    build_environ,
    choose_encoding,
    compress,
    read_body,
    send_response,
)
from trio_engineio._json import encode_json
from trio_engineio._requests import ServerContext, refusal_message, replace_headers
from trio_engineio._session import Session
from trio_engineio.exceptions import CloseReason, ContentTooLongError, EngineIOError, SocketIsClosedError
from trio_engineio.protocol import (
    EngineIORequest,
    ErrorCode,
    HandshakeError,
    Packet,
    PollDecision,
    Transport,
    decode_jsonp_body,
    decode_payload,
    decode_payload_bytes,
    encode_jsonp,
    encode_payload,
    error_body,
    parse_query,
    parse_request,
)

__all__ = ["handle_http"]

_TEXT_PLAIN = (b"content-type", b"text/plain; charset=UTF-8")
_NO_STORE = (b"cache-control", b"no-store")
_PACKETS_PER_CHECKPOINT = 16
"""A POST's packets are handled this many at a time between checkpoints (a bound on one request's turn)."""


async def _refuse_http(host: ServerContext, send: Send, environ: dict[str, Any], error: HandshakeError) -> None:
    host.logger.info("refused %s %s: %s", environ["REQUEST_METHOD"], environ["RAW_URI"], error)
    message = refusal_message(error)
    await host._trigger_connection_error(environ, error.code, message)
    headers = [(b"content-type", b"application/json"), *host._cors_headers(environ)]
    await send_response(send, error.http_status, headers, error_body(error.code, message))


async def _send_packets(
    host: ServerContext,
    send: Send,
    environ: dict[str, Any],
    packets: list[Packet],
    request: EngineIORequest,
    extra_headers: Sequence[tuple[bytes, bytes]] = (),
    *,
    initial: bool = False,
) -> None:
    payload = encode_payload(packets)
    if request.jsonp_index is not None:
        body = encode_jsonp(payload, request.jsonp_index).encode()
        headers: Headers = [(b"content-type", b"text/javascript; charset=UTF-8")]
    else:
        body = payload.encode()
        headers = [_TEXT_PLAIN]
    headers.append(_NO_STORE)
    if host.http_compression and len(body) >= host.compression_threshold:
        coding = choose_encoding(environ.get("HTTP_ACCEPT_ENCODING", ""))
        if coding is not None:
            body = compress(body, coding)
            headers.append((b"content-encoding", coding.encode()))
            headers.append((b"vary", b"Accept-Encoding"))  # caches must key on it
    headers += extra_headers
    headers += host._cors_headers(environ)
    headers = replace_headers(headers, await host._hook_headers(environ, initial=initial))
    await send_response(send, 200, headers, body)


async def handle_http(host: ServerContext, scope: Scope, receive: Receive, send: Send) -> None:
    environ = build_environ(scope)
    method = environ["REQUEST_METHOD"]
    if host._origin_refused(environ):
        await _refuse_http(host, send, environ, HandshakeError(ErrorCode.FORBIDDEN, "origin not allowed"))
        return
    if method == "OPTIONS":
        await send_response(send, 200, [_TEXT_PLAIN, *host._cors_headers(environ)], b"")
        return
    try:
        request = parse_request(
            parse_query(scope.get("query_string", b"")),
            method=method,
            is_websocket=False,
            transports=host.transports,
        )
        if request.sid is None:
            await host._check_allow_request(environ)
            await _handshake_polling(host, receive, send, environ, request)
            return
        session = host._sessions.get(request.sid)
        if session is None:
            raise HandshakeError(ErrorCode.UNKNOWN_SID, f"sid {request.sid!r}")
        if method == "GET":
            await _poll(host, session, receive, send, environ, request)
        else:
            await _post(host, session, receive, send, environ, request)
    except HandshakeError as error:
        await _refuse_http(host, send, environ, error)


async def _handshake_polling(
    host: ServerContext, receive: Receive, send: Send, environ: dict[str, Any], request: EngineIORequest
) -> None:
    client_left = trio.Event()
    async with trio.open_nursery() as nursery:
        # The connect handler may be slow; a client that leaves meanwhile never learns its
        # sid, so its session must end now rather than at its ping timeout.
        nursery.start_soon(_set_on_disconnect, receive, client_left)
        session = await host._open_session(Transport.POLLING, environ)
        nursery.cancel_scope.cancel()
    if session is None:
        return await _refuse_connect(host, send, environ)
    if client_left.is_set():
        await session.close(CloseReason.TRANSPORT_CLOSE, "the client went away during the handshake")
        return
    packet = host._open_packet(session.sid, Transport.POLLING)
    try:
        await _send_packets(host, send, environ, [packet], request, host._cookie_header(session.sid), initial=True)
    except SocketIsClosedError:
        # The client never learns its sid: end the session now, not at its ping timeout.
        await session.close(CloseReason.TRANSPORT_CLOSE, "the client went away before the handshake response")
        raise


async def _refuse_connect(host: ServerContext, send: Send, environ: dict[str, Any]) -> None:
    refusal = environ.get("trio_engineio.refusal")
    body = encode_json(host._json, refusal if refusal not in (None, False) else "Unauthorized")
    headers = [(b"content-type", b"application/json"), *host._cors_headers(environ)]
    await send_response(send, 401, headers, body.encode())


async def _poll(
    host: ServerContext,
    session: Session,
    receive: Receive,
    send: Send,
    environ: dict[str, Any],
    request: EngineIORequest,
) -> None:
    outcome = await session.handle_get(receive)
    if outcome.packets is None:
        if outcome.status != 200:
            raise HandshakeError(ErrorCode.BAD_REQUEST, "this session does not accept this GET now")
        return  # the client went away
    try:
        await _send_packets(host, send, environ, outcome.packets, request)
    except SocketIsClosedError:
        session.poll_not_sent()  # no packet is lost with a response that never left
        raise
    session.poll_sent()


async def _post(
    host: ServerContext,
    session: Session,
    receive: Receive,
    send: Send,
    environ: dict[str, Any],
    request: EngineIORequest,
) -> None:
    decision, events = session.begin_post()
    if decision is not PollDecision.PROCEED:
        await session.dispatch(events)
        raise HandshakeError(ErrorCode.BAD_REQUEST, "this session does not accept this POST now")
    try:
        try:
            declared = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > host.max_http_buffer_size:
            raise ContentTooLongError(f"Content-Length {declared} exceeds max_http_buffer_size")
        body = await read_body(receive, host.max_http_buffer_size)
        if body is None:
            return
        if request.jsonp_index is not None:
            packets = decode_payload(decode_jsonp_body(body), max_packets=host.max_packets_per_post)
        else:
            packets = decode_payload_bytes(body, max_packets=host.max_packets_per_post)
    except ContentTooLongError as exc:
        session.machine.end_post()
        await session.close(CloseReason.TRANSPORT_ERROR, str(exc))
        await host._trigger_connection_error(environ, ErrorCode.BAD_REQUEST, ErrorCode.BAD_REQUEST.message)
        headers = [(b"content-type", b"application/json"), *host._cors_headers(environ)]
        await send_response(send, exc.http_status, headers, error_body(ErrorCode.BAD_REQUEST))
        return
    except EngineIOError as exc:
        session.machine.end_post()
        await session.close(CloseReason.TRANSPORT_ERROR, f"invalid POST: {exc}")
        raise HandshakeError(ErrorCode.BAD_REQUEST, str(exc)) from exc
    try:
        for index, packet in enumerate(packets):
            if index and index % _PACKETS_PER_CHECKPOINT == 0:
                # Handling a PONG or a NOOP never yields: let the other sessions run.
                await trio.lowlevel.checkpoint()
            if session.machine.is_closed:
                break  # a closed session ignores the rest (an unsolicited PONG closed it, say)
            await session.receive_packet(packet, via=Transport.POLLING)
    finally:
        session.machine.end_post()
    headers = [_TEXT_PLAIN, *host._cors_headers(environ)]
    headers = replace_headers(headers, await host._hook_headers(environ, initial=False))
    await send_response(send, 200, headers, b"ok")


async def _set_on_disconnect(receive: Receive, event: trio.Event) -> None:
    """Set ``event`` when the HTTP client disconnects."""
    while (await receive())["type"] != "http.disconnect":
        pass
    event.set()
