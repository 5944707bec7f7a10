"""Websocket requests: a websocket-only session, or the upgrade of a polling one.

The reader loop lives here: it feeds the session its client's packets until the session
or the socket ends; writes go through one writer path (the hypercorn fast path, or the
ASGI ``send``), serialised by the session.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import trio

from trio_engineio import _hypercorn
from trio_engineio._http import Message, Receive, Scope, Send, build_environ
from trio_engineio._json import encode_json
from trio_engineio._requests import ServerContext, checked_send, refusal_message
from trio_engineio._session import Session, WebSocketWriter
from trio_engineio.exceptions import CloseReason, ContentTooLongError, SocketIsClosedError, UnknownPacketError
from trio_engineio.protocol import (
    ErrorCode,
    HandshakeError,
    Transport,
    UpgradeCompleted,
    UpgradeProbed,
    decode_frame,
    encode_frame,
    error_body,
    parse_query,
    parse_request,
)

__all__ = ["handle_websocket"]

_PEER_CLOSED = 0
"""Not a websocket close code: the peer closed the websocket (or it broke); send no close."""
_OVERSIZED = "a websocket message exceeded max_http_buffer_size ({} bytes)"


async def _refuse_websocket(host: ServerContext, scope: Scope, send: Send, status: int, body: bytes) -> None:
    if "websocket.http.response" in scope.get("extensions", {}):
        await send(
            {
                "type": "websocket.http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1008})


async def handle_websocket(host: ServerContext, scope: Scope, receive: Receive, send: Send) -> None:
    environ = build_environ(scope)
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    # ``send`` itself goes to the websocket writer (it translates errors per frame);
    # the handshake's own messages go through this.
    handshake_send = checked_send(send)
    try:
        if host._origin_refused(environ):
            raise HandshakeError(ErrorCode.FORBIDDEN, "origin not allowed")
        request = parse_request(
            parse_query(scope.get("query_string", b"")), method="GET", is_websocket=True, transports=host.transports
        )
        if request.sid is not None:
            session = host._sessions.get(request.sid)
            if session is None:
                raise HandshakeError(ErrorCode.UNKNOWN_SID, f"sid {request.sid!r}")
            if not host.allow_upgrades:
                # The handshake advertised no upgrade; a client that tries anyway is refused.
                raise HandshakeError(ErrorCode.BAD_REQUEST, "upgrades are disabled (allow_upgrades=False)")
            upgrade = _upgrade(host, session, receive, send, environ)
            del environ  # held by the upgrade until it has accepted (see below), not for the session's life
            await upgrade
            return
        await host._check_allow_request(environ)
    except HandshakeError as error:
        host.logger.info("refused websocket %s: %s", environ["RAW_URI"], error)
        reply = refusal_message(error)
        await host._trigger_connection_error(environ, error.code, reply)
        await _refuse_websocket(host, scope, handshake_send, error.http_status, error_body(error.code, reply))
        return
    new_session = await host._open_session(Transport.WEBSOCKET, environ)
    if new_session is None:
        refusal = environ.get("trio_engineio.refusal")
        body = encode_json(host._json, refusal if refusal not in (None, False) else "Unauthorized").encode()
        await _refuse_websocket(host, scope, handshake_send, 401, body)
        return
    close_code = 1000
    abort = _hypercorn.connection_aborter(send)
    try:
        await _accept_websocket(host, send, environ, initial=True)
        # The handshake's objects (the environ, a few KiB of strings; the query; the first
        # message) are not needed past it: this frame lives as long as the session, so let go
        # of them (an application that wants the environ keeps it).
        del environ, message, request, handshake_send
        oversized = _hypercorn.limit_message_size(send, host.max_http_buffer_size)
        write = _websocket_writer(send, host._hypercorn_fast_path)
        await write(encode_frame(host._open_packet(new_session.sid, Transport.WEBSOCKET)))
        with trio.CancelScope() as reader_scope:
            new_session.attach_websocket(write, reader_scope, abort)
            code = await _read_websocket(host, new_session, receive, write, probing=False, oversized=oversized)
            close_code = 1000 if code is None else code
    except SocketIsClosedError:
        close_code = _PEER_CLOSED
    finally:
        await new_session.close(CloseReason.TRANSPORT_CLOSE, "the websocket closed")
    await _close_websocket(host, send, receive, close_code, abort)


async def _accept_websocket(host: ServerContext, send: Send, environ: dict[str, Any], *, initial: bool) -> None:
    """Accept a websocket, with the header handlers' headers; without compression if so configured.

    Raises:
        SocketIsClosedError: the client has gone.
    """
    if not host.websocket_compression:
        _hypercorn.refuse_websocket_compression(send)
    message: Message = {"type": "websocket.accept"}
    headers = await host._hook_headers(environ, initial=initial)
    if headers:
        message["headers"] = headers
    await checked_send(send)(message)


async def _upgrade(
    host: ServerContext, session: Session, receive: Receive, send: Send, environ: dict[str, Any]
) -> None:
    with trio.CancelScope() as reader_scope:
        if not session.begin_probe(reader_scope):
            # Already upgraded or upgrading (or a websocket session): as the reference server
            # does, accept this websocket and close it, and the session carries on. Clients
            # (the `ws` package) report a refused handshake as an error, not as a close.
            host.logger.info("session %s: a second websocket was accepted and closed", session.sid)
            close_code = 1000
            try:
                await _accept_websocket(host, send, environ, initial=False)
            except SocketIsClosedError:
                close_code = _PEER_CLOSED
            await _close_websocket(host, send, receive, close_code, _hypercorn.connection_aborter(send))
            return
        result: int | None = 1000  # stays so when the session cancels an abandoned probe
        try:
            await _accept_websocket(host, send, environ, initial=False)
            del environ  # this frame lives as long as the session (see handle_websocket)
            oversized = _hypercorn.limit_message_size(send, host.max_http_buffer_size)
            write = _websocket_writer(send, host._hypercorn_fast_path)
            result = await _read_websocket(host, session, receive, write, probing=True, oversized=oversized)
        except SocketIsClosedError:
            result = _PEER_CLOSED
        finally:
            if result is not None:
                session.end_probe()
    close_code = 1000 if result is None else result
    abort = _hypercorn.connection_aborter(send)
    if result is None:  # upgraded
        with trio.CancelScope() as reader_scope:
            session.attach_websocket(write, reader_scope, abort)
            try:
                code = await _read_websocket(host, session, receive, write, probing=False, oversized=oversized)
                close_code = 1000 if code is None else code
            finally:
                await session.close(CloseReason.TRANSPORT_CLOSE, "the websocket closed")
    await _close_websocket(host, send, receive, close_code, abort)


async def _close_websocket(
    host: ServerContext, send: Send, receive: Receive, code: int, abort: Callable[[], None] | None
) -> None:
    """Close our side; under hypercorn's trio worker, then wait for the client's.

    hypercorn's reader hands every message and the final ``websocket.disconnect`` to
    a bounded queue that only this task reads: returning while the client still sends
    would leave it blocked on that queue for good. A client that does not finish
    the close within ``close_timeout`` is cut off (``abort``).
    """
    if code == _PEER_CLOSED:
        # The socket is gone: a close now is pointless, and hypercorn's trio worker can crash
        # on it (its connection close races the reply to the client's close frame).
        await _hypercorn.flush_after_disconnect(receive)
        return

    async def send_close() -> None:
        with contextlib.suppress(Exception):
            await send({"type": "websocket.close", "code": code})

    if abort is None:
        # Not hypercorn's trio worker: ASGI lets us return right after the close (the
        # server finishes the closing handshake), and nothing waits on a queue of ours.
        await send_close()
        return

    # Drain while the close is sent: the close may wait for hypercorn's send lock, held
    # by a write whose failure makes hypercorn hand us websocket.disconnect, which
    # waits for room in the queue this task drains.
    async with trio.open_nursery() as nursery:
        nursery.start_soon(send_close)
        for last_try in (False, True):
            with trio.move_on_after(host.close_timeout) as drained:
                with contextlib.suppress(Exception):  # an ASGI server may raise once it is over
                    while (await receive())["type"] != "websocket.disconnect":
                        pass
            if not drained.cancelled_caught or last_try:
                break
            abort()
        nursery.cancel_scope.cancel()
    await _hypercorn.flush_after_disconnect(receive)


async def _read_websocket(
    host: ServerContext,
    session: Session,
    receive: Receive,
    write: WebSocketWriter,
    *,
    probing: bool,
    oversized: Callable[[], bool] | None = None,
) -> int | None:
    """Feed websocket messages to the session until it or the socket ends.

    ``oversized()`` says whether the ASGI server itself refused a message for its size
    (see :func:`trio_engineio._hypercorn.limit_message_size`).

    Returns:
        The close code to send, or ``None`` when a probe completed the upgrade.
    """
    limit = host.max_http_buffer_size
    take_waiting = None
    if host._hypercorn_fast_path and _hypercorn.env_switch(_hypercorn.FAST_PATH_ENV):
        take_waiting = _hypercorn.waiting_message_taker(receive)
    while True:
        message: Message | None = None
        if take_waiting is not None:
            try:  # noqa: SIM105 - suppress() costs an object and two calls per message
                message = take_waiting()
            except trio.WouldBlock:
                pass
        if message is None:  # waited for here, outside the except: the exception would stay alive
            message = await receive()
        if message["type"] != "websocket.receive":  # websocket.disconnect
            if oversized is not None and oversized() and not probing:
                await session.close(CloseReason.TRANSPORT_ERROR, _OVERSIZED.format(limit))
            return _PEER_CLOSED
        frame: str | bytes | None = message.get("text")
        if frame is None:
            frame = message.get("bytes") or b""
        # surrogatepass: a text frame from a server that let a lone surrogate through
        # (none should) is measured, not a UnicodeEncodeError escaping into it.
        if len(frame) > limit or (
            type(frame) is str and len(frame) * 4 > limit and len(frame.encode("utf-8", "surrogatepass")) > limit
        ):
            await session.close(CloseReason.TRANSPORT_ERROR, _OVERSIZED.format(limit))
            return ContentTooLongError.close_code  # 1009; checked inline, no exception on this path
        try:
            packet = decode_frame(frame)
        except UnknownPacketError as exc:
            if not probing:
                await session.close(CloseReason.TRANSPORT_ERROR, f"invalid packet: {exc}")
            return exc.close_code  # 1002
        events = await session.receive_packet(packet, via=Transport.WEBSOCKET)
        if probing:
            for event in events:
                if type(event) is UpgradeProbed:
                    # The probe's own reader is its only writer until the upgrade completes.
                    await write(encode_frame(event.reply))
                elif type(event) is UpgradeCompleted:
                    return None


def _websocket_writer(send: Send, fast_path: bool) -> WebSocketWriter:
    write_fast = _hypercorn.fast_websocket_writer(send, fast_path)
    if write_fast is not None:

        async def write_direct(frame: str | bytes) -> bool:
            try:
                return await write_fast(frame)
            except Exception as exc:
                raise SocketIsClosedError("the websocket is closed") from exc

        return write_direct

    async def write(frame: str | bytes) -> bool:
        task = trio.lowlevel.current_task()
        yields_before = _schedule_points(task)
        try:
            if type(frame) is str:
                await send({"type": "websocket.send", "text": frame})
            else:
                await send({"type": "websocket.send", "bytes": frame})
        except Exception as exc:
            # hypercorn raises several things once the socket is gone; all mean the same here.
            raise SocketIsClosedError("the websocket is closed") from exc
        # Whether it reached a scheduling point is read from the task, not assumed: hypercorn's
        # send yields when it writes, but returns at once, the frame dropped, once the client
        # has gone, and an app sending in a loop would then starve the very reader that would
        # notice (see WebSocketWriter). Asked, the caller skips a second scheduling point per
        # message (a task step, 13-32 µs here).
        return yields_before is not None and _schedule_points(task) != yields_before

    return write


def _schedule_points(task: trio.lowlevel.Task) -> int | None:
    """How many times ``task`` has yielded to Trio's scheduler so far.

    Trio counts it (for its own checkpoint tests) but has no public name for it; a Trio
    without the attribute gives ``None``, and every write is then followed by a checkpoint
    of its own (correct: one scheduling point more per message).
    """
    count = getattr(task, "_schedule_points", None)
    return count if type(count) is int else None
