"""The HTTP long-polling transport of the server, in memory through httpx, on virtual time.

Spec references are to the Engine.IO v4 protocol (https://socket.io/docs/v4/engine-io-protocol/).
"""

from __future__ import annotations

import base64
import gzip
import json
import zlib
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import trio
import trio.testing
from server_helpers import ChunkedBody, Poller, Recorder, make_app, open_data, start_request

from trio_engineio.protocol import Packet, PacketType, decode_payload

HANDSHAKE = {"EIO": "4", "transport": "polling"}


def message(data: str | bytes) -> Packet:
    return Packet(PacketType.MESSAGE, data)


async def raw_body(http: httpx.AsyncClient, poller: Poller, headers: dict[str, str]) -> tuple[httpx.Response, bytes]:
    """A GET whose body is returned as sent (httpx would otherwise decompress it)."""
    request = http.build_request("GET", poller.path, params=poller.params(), headers=headers)
    response = await http.send(request, stream=True)
    raw = b"".join([chunk async for chunk in response.aiter_raw()])
    await response.aclose()
    return response, raw


# -- handshake ---------------------------------------------------------------------------------


async def test_handshake_answers_open_with_the_session_parameters(autojump_clock: trio.testing.MockClock) -> None:
    """spec: the server MUST answer the handshake with an OPEN packet carrying sid, upgrades,
    pingInterval, pingTimeout and maxPayload."""
    eio, app = make_app(ping_interval=12, ping_timeout=7, max_http_buffer_size=5000)
    async with eio, Poller.open(app) as poller:
        opened = await poller.handshake()
        assert set(opened) == {"sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"}
        assert opened["upgrades"] == ["websocket"]
        assert opened["pingInterval"] == 12000
        assert opened["pingTimeout"] == 7000
        assert opened["maxPayload"] == 5000
        assert opened["sid"] in eio.sockets
        assert poller.handshake_response is not None
        assert poller.handshake_response.text.count("\x1e") == 0  # the OPEN packet alone


@pytest.mark.parametrize("options", [{"allow_upgrades": False}, {"transports": ["polling"]}])
async def test_handshake_offers_no_upgrade_when_upgrades_are_off(
    autojump_clock: trio.testing.MockClock, options: dict[str, Any]
) -> None:
    """``upgrades`` is ``[]`` when upgrades are disallowed or websocket is not an allowed transport."""
    eio, app = make_app(**options)
    async with eio, Poller.open(app) as poller:
        assert (await poller.handshake())["upgrades"] == []


async def test_polling_disabled_refuses_a_polling_handshake(autojump_clock: trio.testing.MockClock) -> None:
    """With ``transports=['websocket']`` a polling handshake is an unknown transport (code 0)."""
    eio, app = make_app(transports=["websocket"])
    async with eio, Poller.open(app) as poller:
        response = await poller.http.get(poller.path, params=HANDSHAKE)
        assert response.status_code == 400
        assert response.json() == {"code": 0, "message": "Transport unknown"}


async def test_response_headers(autojump_clock: trio.testing.MockClock) -> None:
    """Every polling response is ``text/plain; charset=UTF-8``, not cacheable, with its Content-Length."""
    eio, app = make_app()
    async with eio, Poller.open(app) as poller:
        await poller.handshake()
        await eio.send(poller.sid, "hello é")
        get = await poller.get_response()
        post = await poller.post_response("4x")
        assert poller.handshake_response is not None
        for response in (poller.handshake_response, get):
            assert response.headers["content-type"] == "text/plain; charset=UTF-8"
            assert response.headers["cache-control"] == "no-store"
            assert int(response.headers["content-length"]) == len(response.content)
        assert get.content == "4hello é".encode()
        assert post.headers["content-type"] == "text/plain; charset=UTF-8"
        assert int(post.headers["content-length"]) == 2


# -- exchanging packets --------------------------------------------------------------------------


async def test_post_is_answered_ok_and_delivers_its_messages(autojump_clock: trio.testing.MockClock) -> None:
    """spec: to indicate success the server MUST answer a POST with 200 and ``ok``; its packets reach
    the message handler in order."""
    eio, app = make_app()
    recorder = Recorder(eio)
    async with eio, Poller.open(app) as poller:
        await poller.handshake()
        response = await poller.post_response("4one\x1e4two")
        assert (response.status_code, response.text) == (200, "ok")
        await trio.testing.wait_all_tasks_blocked()
    assert [data for _, data in recorder.messages] == ["one", "two"]


async def test_get_returns_every_queued_packet_joined_with_record_separators(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """spec: a GET returns the queued packets joined with ``\\x1e``, binary as ``b`` + base64."""
    eio, app = make_app()
    async with eio, Poller.open(app) as poller:
        await poller.handshake()
        await eio.send(poller.sid, "a")
        await eio.send(poller.sid, b"\x00\x01\xfe\xff")
        await eio.send(poller.sid, {"k": 1})
        response = await poller.get_response()
        assert response.text == "4a\x1ebAAH+/w==\x1e4" + json.dumps({"k": 1}, separators=(",", ":"))


async def test_binary_both_ways(autojump_clock: trio.testing.MockClock) -> None:
    """spec: binary payloads MUST be base64-encoded and prefixed with ``b`` (polling), both directions."""
    eio, app = make_app()
    recorder = Recorder(eio)
    blob = bytes(range(256))
    async with eio, Poller.open(app) as poller:
        await poller.handshake()
        await poller.post_response("b" + base64.b64encode(blob).decode())
        await recorder.message_received.wait()
        await eio.send(poller.sid, blob[::-1])
        assert await poller.get() == [message(blob[::-1])]
    assert recorder.messages == [(poller.sid, blob)]


async def test_a_post_with_100_packets_delivers_them_all(autojump_clock: trio.testing.MockClock) -> None:
    """Up to ``max_packets_per_post`` (1024 by default) none is dropped (python-engineio drops past 16)."""
    eio, app = make_app()
    recorder = Recorder(eio)
    async with eio, Poller.open(app) as poller:
        await poller.handshake()
        await poller.post(*[message(str(i)) for i in range(100)])
        await trio.testing.wait_all_tasks_blocked()
    assert [data for _, data in recorder.messages] == [str(i) for i in range(100)]


@pytest.mark.parametrize(("limit", "sent"), [(16, 40), (3, 10)])
async def test_a_get_carries_at_most_max_packets_per_poll(
    autojump_clock: trio.testing.MockClock, limit: int, sent: int
) -> None:
    """A GET response holds at most ``max_packets_per_poll`` packets (16 by default); the rest
    come on the next GETs, in order."""
    options = {} if limit == 16 else {"max_packets_per_poll": limit}
    eio, app = make_app(**options)
    async with eio, Poller.open(app) as poller:
        await poller.handshake()
        for i in range(sent):
            await eio.send(poller.sid, str(i))
        received: list[str | bytes] = []
        while len(received) < sent:
            packets = await poller.get()
            assert 1 <= len(packets) <= limit
            received += [p.data for p in packets]
        assert received == [str(i) for i in range(sent)]


async def test_get_responses_stay_within_max_http_buffer_size_and_drop_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A GET response holds only the packets that fit in max_http_buffer_size (the client's maxPayload),
    the others wait for the next GET; a packet larger than that still goes out, alone."""
    eio, app = make_app(max_http_buffer_size=100)
    async with eio, Poller.open(app) as poller:
        await poller.handshake()
        sizes = [40, 40, 40, 250, 10, 10]
        for i, size in enumerate(sizes):
            await eio.send(poller.sid, str(i) * size)
        bodies = []
        received: list[str | bytes] = []
        while len(received) < len(sizes):
            response = await poller.get_response()
            bodies.append(len(response.content))
            received += [p.data for p in decode_payload(response.text)]
        assert received == [str(i) * size for i, size in enumerate(sizes)]
        assert bodies == [83, 41, 251, 23]


async def test_get_waits_for_a_packet(autojump_clock: trio.testing.MockClock) -> None:
    """A GET with nothing queued waits (long polling) and answers as soon as a message is sent."""
    eio, app = make_app()
    async with eio, Poller.open(app) as poller, trio.open_nursery() as nursery:
        await poller.handshake()
        pending = await start_request(nursery, poller.get_response)
        await trio.sleep(3)
        assert not pending.done.is_set()
        await eio.send(poller.sid, "late")
        response = await pending.result()
        assert response.text == "4late"
        assert trio.current_time() == 3


# -- heartbeat and backpressure ------------------------------------------------------------------


async def test_heartbeat_over_polling(autojump_clock: trio.testing.MockClock) -> None:
    """spec: the server sends PING every pingInterval (here in a GET); a PONG POSTed back restarts the
    interval from its instant; without a PONG within pingTimeout the server SHOULD consider the
    connection closed: reason 'ping timeout', exactly on time."""
    eio, app = make_app(ping_interval=25, ping_timeout=20)
    closed_at: list[tuple[float, str]] = []
    eio.on("disconnect", lambda sid, reason: closed_at.append((trio.current_time(), reason)))
    async with eio, Poller.open(app) as poller:
        await poller.handshake()
        assert await poller.get() == [Packet(PacketType.PING)]
        assert trio.current_time() == 25
        await trio.sleep(4)
        await poller.post(Packet(PacketType.PONG))
        assert await poller.get() == [Packet(PacketType.PING)]
        assert trio.current_time() == 29 + 25
        response = await poller.get_response()  # waits through the timeout
        assert response.text == "1"
        assert closed_at == [(29 + 25 + 20, "ping timeout")]
        assert trio.current_time() == 74
        assert (await poller.get_response()).status_code == 400


async def test_send_waits_while_the_client_does_not_poll(autojump_clock: trio.testing.MockClock) -> None:
    """Backpressure: with ``outbound_buffer_size`` packets waiting, ``send`` waits until a GET makes
    room; nothing is dropped."""
    eio, app = make_app(outbound_buffer_size=3)
    async with eio, Poller.open(app) as poller, trio.open_nursery() as nursery:
        await poller.handshake()
        sent: list[int] = []

        async def sender() -> None:
            for i in range(6):
                await eio.send(poller.sid, str(i))
                sent.append(i)

        nursery.start_soon(sender)
        await trio.sleep(10)
        assert sent == [0, 1, 2]
        received = [p.data for p in await poller.get()]
        await trio.testing.wait_all_tasks_blocked()
        assert sent == list(range(6))
        while len(received) < 6:
            received += [p.data for p in await poller.get()]
        assert received == [str(i) for i in range(6)]


async def test_a_send_waiting_for_room_returns_when_the_session_closes(autojump_clock: trio.testing.MockClock) -> None:
    """A ``send`` blocked on a full buffer does not hang once the session is gone: it returns
    (logged, as sends to a closed session are)."""
    eio, app = make_app(outbound_buffer_size=2)
    async with eio, Poller.open(app) as poller, trio.open_nursery() as nursery:
        await poller.handshake()
        returned: list[float] = []

        async def sender() -> None:
            for i in range(5):
                await eio.send(poller.sid, str(i))
            returned.append(trio.current_time())

        nursery.start_soon(sender)
        await trio.sleep(3)
        assert returned == []
        await poller.post(Packet(PacketType.CLOSE))
        await trio.testing.wait_all_tasks_blocked()
        assert returned == [3]


# -- overlapping requests -----------------------------------------------------------------------


async def test_second_concurrent_get_is_400_and_closes_the_session(autojump_clock: trio.testing.MockClock) -> None:
    """spec: a client MUST NOT have more than one active GET; should it happen, the server MUST answer
    400 and close the session. The first GET gets CLOSE (``1``)."""
    eio, app = make_app()
    recorder = Recorder(eio)
    async with eio, Poller.open(app) as poller, trio.open_nursery() as nursery:
        await poller.handshake()
        first = await start_request(nursery, poller.get_response)
        second = await poller.get_response()
        assert second.status_code == 400
        assert second.json()["code"] == 3
        assert (await first.result()).text == "1"
        await recorder.disconnected.wait()
        assert recorder.disconnects == [(poller.sid, "transport error")]
        assert (await poller.get_response()).status_code == 400


async def test_second_concurrent_post_is_400_and_closes_the_session(autojump_clock: trio.testing.MockClock) -> None:
    """spec: a client MUST NOT have more than one active POST; should it happen, the server MUST
    answer 400 and close the session."""
    eio, app = make_app()
    recorder = Recorder(eio)
    release = trio.Event()
    async with eio, Poller.open(app) as poller, trio.open_nursery() as nursery:
        await poller.handshake()
        first = await start_request(nursery, poller.post_chunked, ChunkedBody([b"4a", b"\x1e4b"], hold=release))
        second = await poller.post_response("4c")
        assert second.status_code == 400
        assert second.json()["code"] == 3
        await recorder.disconnected.wait()
        assert recorder.disconnects == [(poller.sid, "transport error")]
        release.set()
        await first.result()
        assert (await poller.get_response()).status_code == 400
        assert (await poller.post_response("4d")).status_code == 400
    assert [data for _, data in recorder.messages if data in ("c", "d")] == []


@pytest.mark.parametrize("body", ["9bad", "", "4ok\x1e\x1e4x", "bnot-base64!", b"4\xff\xfe"])
async def test_an_invalid_packet_closes_the_session(autojump_clock: trio.testing.MockClock, body: str | bytes) -> None:
    """An undecodable POST gets 400, the session closes (transport error), later requests get 400."""
    eio, app = make_app()
    recorder = Recorder(eio)
    async with eio, Poller.open(app) as poller:
        await poller.handshake()
        response = await poller.post_response(body)
        assert response.status_code == 400
        assert response.json()["code"] == 3
        await recorder.disconnected.wait()
        assert recorder.disconnects == [(poller.sid, "transport error")]
        assert (await poller.get_response()).status_code == 400
        assert (await poller.post_response("4x")).status_code == 400


# -- closing ----------------------------------------------------------------------------------------


async def test_client_close_answers_the_pending_get_with_noop(autojump_clock: trio.testing.MockClock) -> None:
    """A client ``1`` while a GET is pending answers that GET with NOOP (``6``); reason 'client disconnect'."""
    eio, app = make_app()
    recorder = Recorder(eio)
    async with eio, Poller.open(app) as poller, trio.open_nursery() as nursery:
        await poller.handshake()
        pending = await start_request(nursery, poller.get_response)
        assert (await poller.post_response("1")).text == "ok"
        response = await pending.result()
        assert (response.status_code, response.text) == (200, "6")
        await recorder.disconnected.wait()
        assert recorder.disconnects == [(poller.sid, "client disconnect")]
        assert trio.current_time() == 0


async def test_server_disconnect_answers_the_pending_get_with_close(autojump_clock: trio.testing.MockClock) -> None:
    """spec: the server closes a polling session by sending CLOSE; a pending GET carries it."""
    eio, app = make_app()
    recorder = Recorder(eio)
    async with eio, Poller.open(app) as poller, trio.open_nursery() as nursery:
        await poller.handshake()
        pending = await start_request(nursery, poller.get_response)
        await eio.send(poller.sid, "last words")
        # The message already released the GET; the next one gets the close.
        assert (await pending.result()).text == "4last words"
        pending = await start_request(nursery, poller.get_response)
        await eio.disconnect(poller.sid)
        assert (await pending.result()).text == "1"
        assert recorder.disconnects == [(poller.sid, "server disconnect")]
        await trio.testing.wait_all_tasks_blocked()
        assert poller.sid not in eio.sockets
        assert (await poller.get_response()).status_code == 400


async def test_server_disconnect_without_a_pending_get_is_delivered_by_the_next(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With no GET pending, the CLOSE waits behind the queued packets for the next GET."""
    eio, app = make_app()
    async with eio, Poller.open(app) as poller:
        await poller.handshake()
        await eio.send(poller.sid, "queued")
        await eio.disconnect(poller.sid)
        await trio.sleep(1)
        assert await poller.get() == [message("queued"), Packet(PacketType.CLOSE)]
        await trio.testing.wait_all_tasks_blocked()
        assert poller.sid not in eio.sockets


async def test_undelivered_server_close_is_dropped_after_close_timeout(autojump_clock: trio.testing.MockClock) -> None:
    """A client that never polls again does not keep its session: it is dropped after ``close_timeout``."""
    eio, app = make_app(close_timeout=3)
    async with eio, Poller.open(app) as poller:
        await poller.handshake()
        await eio.disconnect(poller.sid)
        session = eio._sessions[poller.sid]
        await session.wait_finished()
        assert trio.current_time() == 3
        assert poller.sid not in eio.sockets


async def test_an_aborted_get_loses_no_packet(autojump_clock: trio.testing.MockClock) -> None:
    """A client that gives up on a pending GET loses nothing: the next GET gets what was sent meanwhile."""
    eio, app = make_app()
    recorder = Recorder(eio)
    async with eio, Poller.open(app) as poller:
        await poller.handshake()
        with trio.move_on_after(2) as aborted:
            await poller.get()
        assert aborted.cancelled_caught
        await eio.send(poller.sid, "kept")
        await eio.send(poller.sid, "kept too")
        assert await poller.get() == [message("kept"), message("kept too")]
        assert recorder.disconnects == []


async def test_a_client_disconnecting_a_pending_get_loses_no_packet(autojump_clock: trio.testing.MockClock) -> None:
    """An ``http.disconnect`` while a GET waits takes nothing from the queue."""
    eio, app = make_app()
    async with eio, Poller.open(app) as poller:
        await poller.handshake()
        sent: list[MutableMapping[str, Any]] = []
        messages: list[dict[str, Any]] = [{"type": "http.request", "body": b""}, {"type": "http.disconnect"}]
        gate = trio.Event()

        async def receive() -> dict[str, Any]:
            if len(messages) == 1:
                await gate.wait()
            return messages.pop(0)

        async def send(event: MutableMapping[str, Any]) -> None:
            sent.append(event)

        scope: dict[str, Any] = {
            "type": "http",
            "method": "GET",
            "path": "/engine.io/",
            "query_string": f"EIO=4&transport=polling&sid={poller.sid}".encode(),
            "headers": [(b"host", b"testserver")],
        }
        async with trio.open_nursery() as nursery:
            nursery.start_soon(eio.handle_request, scope, receive, send)
            await trio.sleep(1)
            gate.set()
        assert sent == []
        await eio.send(poller.sid, "kept")
        assert await poller.get() == [message("kept")]


# -- limits -------------------------------------------------------------------------------------------


async def test_post_over_max_http_buffer_size_is_413(autojump_clock: trio.testing.MockClock) -> None:
    """A POST body over max_http_buffer_size is refused with 413; the session closes with a transport error."""
    eio, app = make_app(max_http_buffer_size=100)
    recorder = Recorder(eio)
    async with eio, Poller.open(app) as poller:
        await poller.handshake()
        assert (await poller.post_response("4" + "x" * 99)).status_code == 200
        response = await poller.post_response("4" + "x" * 100)
        assert response.status_code == 413
        await recorder.disconnected.wait()
        assert recorder.disconnects == [(poller.sid, "transport error")]
    assert [len(data) for _, data in recorder.messages] == [99]


async def test_chunked_post_over_max_http_buffer_size_is_413(autojump_clock: trio.testing.MockClock) -> None:
    """The limit counts the bytes actually read: a chunked body (no Content-Length) stops at the limit."""
    eio, app = make_app(max_http_buffer_size=100)
    recorder = Recorder(eio)
    async with eio, Poller.open(app) as poller:
        await poller.handshake()
        body = ChunkedBody([b"4" + b"x" * 19] + [b"\x1e4" + b"x" * 18] * 9)
        response = await poller.post_chunked(body)
        assert response.status_code == 413
        assert body.sent < 10  # reading stopped at the limit
        await recorder.disconnected.wait()
        assert recorder.disconnects == [(poller.sid, "transport error")]
        small = await Poller(poller.http).handshake()
        assert small["maxPayload"] == 100
    assert recorder.messages == []


@pytest.mark.parametrize(("limit", "options"), [(16, {"max_packets_per_post": 16}), (1024, {})])
async def test_post_over_max_packets_per_post_is_400_and_closes_the_session(
    autojump_clock: trio.testing.MockClock, limit: int, options: dict[str, Any]
) -> None:
    """``max_packets_per_post`` packets pass; one more is refused with 400 and the reference
    server's JSON body, none of its packets is handled, and the session closes (transport error)."""
    eio, app = make_app(**options)
    assert eio.max_packets_per_post == limit
    recorder = Recorder(eio)
    async with eio, Poller.open(app) as poller:
        await poller.handshake()
        await poller.post(*[message(f"ok {i}") for i in range(limit)])
        response = await poller.post_response("\x1e".join(["4refused"] * (limit + 1)))
        assert response.status_code == 400
        assert response.json() == {"code": 3, "message": "Bad request"}
        await recorder.disconnected.wait()
        assert recorder.disconnects == [(poller.sid, "transport error")]
        assert (await poller.get_response()).status_code == 400
    assert [data for _, data in recorder.messages] == [f"ok {i}" for i in range(limit)]


async def test_jsonp_post_over_max_packets_per_post_is_400(autojump_clock: trio.testing.MockClock) -> None:
    eio, app = make_app(max_packets_per_post=2)
    recorder = Recorder(eio)
    async with eio, Poller.open(app) as poller:
        await poller.handshake()
        form = "d=" + quote("4a\x1e4b\x1e4c", safe="")
        response = await poller.http.post(
            poller.path,
            params=poller.params(j="0"),
            content=form.encode(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 400
        assert response.json() == {"code": 3, "message": "Bad request"}
        await recorder.disconnected.wait()
        assert recorder.disconnects == [(poller.sid, "transport error")]
    assert recorder.messages == []


@pytest.mark.parametrize("limit", [0, -1])
def test_max_packets_per_post_must_be_at_least_1(limit: int) -> None:
    with pytest.raises(ValueError, match="max_packets_per_post"):
        make_app(max_packets_per_post=limit)


async def test_an_unsolicited_pong_closes_the_session_and_ends_its_post(autojump_clock: trio.testing.MockClock) -> None:
    """A PONG with no PING outstanding is a protocol violation: the session closes (transport
    error) and the rest of the POST is not handled."""
    eio, app = make_app()
    recorder = Recorder(eio)
    async with eio, Poller.open(app) as poller:
        await poller.handshake()
        await poller.post(message("before"), Packet(PacketType.PONG), message("after"))
        await recorder.disconnected.wait()
        assert recorder.disconnects == [(poller.sid, "transport error")]
        assert (await poller.get_response()).status_code == 400
    assert [data for _, data in recorder.messages] == ["before"]


async def test_a_post_lets_other_tasks_run_between_its_packets(autojump_clock: trio.testing.MockClock) -> None:
    """Handling a NOOP never yields, so the POST loop checkpoints every 16 packets: 1,024 NOOPs
    give other tasks about 64 more turns than 16 NOOPs do."""
    eio, app = make_app()

    async def turns_during(poller: Poller, count: int) -> int:
        turns = 0

        async def count_turns() -> None:
            nonlocal turns
            while True:
                turns += 1
                await trio.lowlevel.checkpoint()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(count_turns)
            await poller.post(*[Packet(PacketType.NOOP)] * count)
            nursery.cancel_scope.cancel()
        return turns

    async with eio, Poller.open(app) as poller:
        await poller.handshake()
        few = await turns_during(poller, 16)
        many = await turns_during(poller, 1024)
    assert many - few >= 1024 // 16 - 2, (few, many)


async def test_chunked_post_within_the_limit_is_delivered(autojump_clock: trio.testing.MockClock) -> None:
    """A chunked body under the limit is read whole: packets split across chunks arrive intact."""
    eio, app = make_app()
    recorder = Recorder(eio)
    async with eio, Poller.open(app) as poller:
        await poller.handshake()
        response = await poller.post_chunked(ChunkedBody([b"4he", b"llo\x1e", b"4wor", b"ld"]))
        assert (response.status_code, response.text) == (200, "ok")
        await trio.testing.wait_all_tasks_blocked()
    assert [data for _, data in recorder.messages] == ["hello", "world"]


# -- JSONP ---------------------------------------------------------------------------------------------


async def test_jsonp_get_and_post(autojump_clock: trio.testing.MockClock) -> None:
    """JSONP polling (``j=``): responses are ``___eio[j]("payload");`` JavaScript, POSTs a ``d=`` form field."""
    eio, app = make_app()
    recorder = Recorder(eio)
    async with eio, Poller.open(app) as poller:
        response = await poller.http.get(poller.path, params={**HANDSHAKE, "j": "3"})
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/javascript; charset=UTF-8"
        prefix, suffix = "___eio[3](", ");"
        assert response.text.startswith(prefix)
        assert response.text.endswith(suffix)
        poller.sid = open_data(json.loads(response.text[len(prefix) : -len(suffix)]))["sid"]

        form = "d=" + quote("4line one\\nline two\x1e4b", safe="")
        post = await poller.http.post(
            poller.path,
            params=poller.params(j="3"),
            content=form.encode(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert (post.status_code, post.text) == (200, "ok")
        await trio.testing.wait_all_tasks_blocked()
        assert [data for _, data in recorder.messages] == ["line one\nline two", "b"]

        await eio.send(poller.sid, 'say "hi"\u2028')
        get = await poller.get_response(j="3")
        assert get.text == '___eio[3]("4say \\"hi\\"\\u2028");'


@pytest.mark.parametrize("index", ["abc", "-1", "1.5"])
async def test_jsonp_index_must_be_a_number(autojump_clock: trio.testing.MockClock, index: str) -> None:
    """The JSONP index is interpolated into JavaScript: anything but digits is a bad request (code 3)."""
    eio, app = make_app()
    async with eio, Poller.open(app) as poller:
        response = await poller.http.get(poller.path, params={**HANDSHAKE, "j": index})
        assert response.status_code == 400
        assert response.json() == {"code": 3, "message": "Bad request"}


# -- bad requests ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "query", "code", "message_text"),
    [
        ("GET", {"EIO": "4", "transport": "carrier-pigeon"}, 0, "Transport unknown"),
        ("GET", {"EIO": "4"}, 0, "Transport unknown"),
        ("GET", {"EIO": "4", "transport": "polling", "sid": "no-such-sid"}, 1, "Session ID unknown"),
        ("POST", {"EIO": "4", "transport": "polling", "sid": "no-such-sid"}, 1, "Session ID unknown"),
        ("POST", {"EIO": "4", "transport": "polling"}, 2, "Bad handshake method"),
        ("PUT", {"EIO": "4", "transport": "polling"}, 2, "Bad handshake method"),
        ("GET", {"EIO": "4", "transport": "websocket"}, 3, "Bad request"),
        ("GET", {"EIO": "3", "transport": "polling"}, 5, "Unsupported protocol version"),
        ("GET", {"transport": "polling"}, 5, "Unsupported protocol version"),
    ],
)
async def test_bad_requests_get_400_with_a_json_code(
    autojump_clock: trio.testing.MockClock, method: str, query: dict[str, str], code: int, message_text: str
) -> None:
    """Every bad request gets 400 and the reference server's JSON body ``{"code": N, "message": ...}``
    (spec: a missing mandatory query parameter, or an unknown sid, MUST get 400)."""
    eio, app = make_app()
    async with eio, Poller.open(app) as poller:
        response = await poller.http.request(method, poller.path, params=query)
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {"code": code, "message": message_text}
        assert list(eio.sockets) == []


async def test_bad_method_on_a_session_is_400(autojump_clock: trio.testing.MockClock) -> None:
    """A method other than GET/POST on an existing session is a bad request (code 3)."""
    eio, app = make_app()
    async with eio, Poller.open(app) as poller:
        await poller.handshake()
        response = await poller.http.put(poller.path, params=poller.params(), content=b"4x")
        assert response.status_code == 400
        assert response.json()["code"] == 3


async def test_refused_origin_is_400_with_code_4(autojump_clock: trio.testing.MockClock) -> None:
    """A request from a disallowed Origin is refused (code 4 Forbidden) and opens no session."""
    eio, app = make_app(cors_allowed_origins=["https://good.example"])
    async with eio, Poller.open(app) as poller:
        response = await poller.http.get(poller.path, params=HANDSHAKE, headers={"Origin": "https://evil.example"})
        assert response.status_code == 400
        assert response.json() == {"code": 4, "message": "Forbidden"}
        assert "access-control-allow-origin" not in response.headers
        assert list(eio.sockets) == []


# -- CORS ---------------------------------------------------------------------------------------------------


async def test_options_preflight(autojump_clock: trio.testing.MockClock) -> None:
    """An OPTIONS preflight is answered 200 with the allowed methods and the requested headers."""
    eio, app = make_app(cors_allowed_origins="*")
    async with eio, Poller.open(app) as poller:
        response = await poller.http.options(
            poller.path,
            params=HANDSHAKE,
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "X-Token, Content-Type",
            },
        )
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "https://app.example"
        assert set(response.headers["access-control-allow-methods"].replace(" ", "").split(",")) == {
            "OPTIONS",
            "GET",
            "POST",
        }
        assert response.headers["access-control-allow-headers"] == "X-Token, Content-Type"
        assert response.headers["access-control-allow-credentials"] == "true"
        assert list(eio.sockets) == []


def _two_argument_check(origin: str, environ: dict[str, Any]) -> bool:
    return origin.endswith(".example") and environ["HTTP_HOST"] == "testserver"


@pytest.mark.parametrize(
    ("allowed", "headers", "accepted"),
    [
        (None, {"Origin": "http://testserver"}, True),
        (None, {"Origin": "https://testserver"}, False),
        (None, {"Origin": "http://elsewhere"}, False),
        (
            None,
            {"Origin": "https://public.example", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "public.example"},
            True,
        ),
        (None, {"Origin": "https://testserver", "X-Forwarded-Proto": "https"}, True),
        ("*", {"Origin": "https://anything.example"}, True),
        ("https://one.example", {"Origin": "https://one.example"}, True),
        ("https://one.example", {"Origin": "https://two.example"}, False),
        (["https://one.example", "https://two.example"], {"Origin": "https://two.example"}, True),
        (["https://one.example"], {"Origin": "https://two.example"}, False),
        (lambda origin: origin == "https://fn.example", {"Origin": "https://fn.example"}, True),
        (lambda origin: origin == "https://fn.example", {"Origin": "https://other.example"}, False),
        (_two_argument_check, {"Origin": "https://two-args.example"}, True),
        (_two_argument_check, {"Origin": "https://two-args.invalid"}, False),
    ],
)
async def test_cors_allowed_origins(
    autojump_clock: trio.testing.MockClock, allowed: Any, headers: dict[str, str], accepted: bool
) -> None:
    """An allowed Origin is echoed in Access-Control-Allow-Origin; a disallowed one is refused (code 4).

    ``None`` allows the server's own origin (also as seen through X-Forwarded-Proto/Host), ``'*'``
    any origin, a string or list those origins, a callable ``(origin)`` or ``(origin, environ)`` decides.
    """
    eio, app = make_app(cors_allowed_origins=allowed)
    async with eio, Poller.open(app) as poller:
        response = await poller.http.get(poller.path, params=HANDSHAKE, headers=headers)
        if accepted:
            assert response.status_code == 200
            assert response.headers["access-control-allow-origin"] == headers["Origin"]
            assert response.headers["access-control-allow-credentials"] == "true"
            sid = open_data(response.text)["sid"]
            post = await poller.http.post(poller.path, params={**HANDSHAKE, "sid": sid}, content=b"4x", headers=headers)
            assert post.headers["access-control-allow-origin"] == headers["Origin"]
        else:
            assert response.status_code == 400
            assert response.json()["code"] == 4
            assert "access-control-allow-origin" not in response.headers


async def test_no_origin_header_is_not_refused(autojump_clock: trio.testing.MockClock) -> None:
    """Non-browser clients send no Origin: they are served, without CORS origin headers."""
    eio, app = make_app(cors_allowed_origins=["https://one.example"])
    async with eio, Poller.open(app) as poller:
        await poller.handshake()
        assert poller.handshake_response is not None
        assert "access-control-allow-origin" not in poller.handshake_response.headers


async def test_empty_cors_list_disables_cors_handling(autojump_clock: trio.testing.MockClock) -> None:
    """``cors_allowed_origins=[]`` turns CORS off: no Origin is refused and no CORS header is added."""
    eio, app = make_app(cors_allowed_origins=[])
    async with eio, Poller.open(app) as poller:
        response = await poller.http.get(poller.path, params=HANDSHAKE, headers={"Origin": "https://any.example"})
        assert response.status_code == 200
        assert not [name for name in response.headers if name.startswith("access-control-")]


async def test_cors_credentials_false(autojump_clock: trio.testing.MockClock) -> None:
    """``cors_credentials=False`` leaves out Access-Control-Allow-Credentials."""
    eio, app = make_app(cors_allowed_origins="*", cors_credentials=False)
    async with eio, Poller.open(app) as poller:
        response = await poller.http.get(poller.path, params=HANDSHAKE, headers={"Origin": "https://a.example"})
        assert response.headers["access-control-allow-origin"] == "https://a.example"
        assert "access-control-allow-credentials" not in response.headers


# -- cookie -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cookie", "expected"),
    [
        ("io", "io={sid}; path=/; SameSite=Lax"),
        (
            {"name": "eio", "path": "/chat", "SameSite": "Strict", "Secure": True, "HttpOnly": True},
            "eio={sid}; path=/chat; SameSite=Strict; Secure; HttpOnly",
        ),
    ],
)
async def test_cookie_is_set_only_on_the_polling_handshake(
    autojump_clock: trio.testing.MockClock, cookie: Any, expected: str
) -> None:
    """``cookie=`` sets the sid cookie on the handshake response, and on no other response."""
    eio, app = make_app(cookie=cookie)
    async with eio, Poller.open(app) as poller:
        await poller.handshake()
        assert poller.handshake_response is not None
        assert poller.handshake_response.headers["set-cookie"] == expected.format(sid=poller.sid)
        await eio.send(poller.sid, "x")
        assert "set-cookie" not in (await poller.get_response()).headers
        assert "set-cookie" not in (await poller.post_response("4x")).headers


async def test_no_cookie_by_default(autojump_clock: trio.testing.MockClock) -> None:
    """Without ``cookie=`` no cookie is set."""
    eio, app = make_app()
    async with eio, Poller.open(app) as poller:
        await poller.handshake()
        assert poller.handshake_response is not None
        assert "set-cookie" not in poller.handshake_response.headers


# -- compression -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept_encoding", "coding"),
    [
        ("gzip", "gzip"),
        ("deflate", "deflate"),
        ("gzip, deflate", "gzip"),
        ("gzip;q=0.5, deflate;q=0.9", "deflate"),
        ("deflate;q=0.1, gzip", "gzip"),
        ("gzip;q=0, deflate;q=0", None),
        ("gzip;q=0, *", "deflate"),
        ("*", "gzip"),
        ("identity", None),
        ("br", None),
        ("", None),
    ],
)
async def test_compression_honours_accept_encoding_q_values(
    autojump_clock: trio.testing.MockClock, accept_encoding: str, coding: str | None
) -> None:
    """A response above compression_threshold is compressed with the coding the client prefers (q-values);
    a coding with q=0 is never used. Decompressed, it is the same payload."""
    eio, app = make_app()
    text = "é" * 1500
    async with eio, Poller.open(app) as poller:
        await poller.handshake()
        await eio.send(poller.sid, text)
        response, raw = await raw_body(poller.http, poller, {"Accept-Encoding": accept_encoding})
        assert response.headers.get("content-encoding") == coding
        assert int(response.headers["content-length"]) == len(raw)
        if coding == "gzip":
            raw = gzip.decompress(raw)
        elif coding == "deflate":
            raw = zlib.decompress(raw)
        assert decode_payload(raw.decode()) == [message(text)]


@pytest.mark.parametrize(("options", "size"), [({}, 1000), ({"http_compression": False}, 5000)])
async def test_no_compression_below_threshold_or_when_off(
    autojump_clock: trio.testing.MockClock, options: dict[str, Any], size: int
) -> None:
    """Small bodies (under compression_threshold) and ``http_compression=False`` are sent as is."""
    eio, app = make_app(**options)
    async with eio, Poller.open(app) as poller:
        await poller.handshake()
        await eio.send(poller.sid, "x" * size)
        response, raw = await raw_body(poller.http, poller, {"Accept-Encoding": "gzip, deflate"})
        assert "content-encoding" not in response.headers
        assert raw == b"4" + b"x" * size


async def test_compression_threshold_is_configurable(autojump_clock: trio.testing.MockClock) -> None:
    """``compression_threshold`` moves the size from which bodies are compressed."""
    eio, app = make_app(compression_threshold=10)
    async with eio, Poller.open(app) as poller:
        await poller.handshake()
        await eio.send(poller.sid, "x" * 20)
        response, raw = await raw_body(poller.http, poller, {"Accept-Encoding": "gzip"})
        assert response.headers["content-encoding"] == "gzip"
        assert gzip.decompress(raw) == b"4" + b"x" * 20
