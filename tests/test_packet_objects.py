"""python-engineio's packet objects: ``trio_engineio.packet`` / ``trio_engineio.payload``, and ``send_packet``.

python-socketio builds ``engineio.packet.Packet`` objects and hands them to
``send_packet`` (to encode a broadcast once). Those objects, ours mirroring them and
:class:`trio_engineio.protocol.Packet` are all sent; anything else is refused at the
call with a ``TypeError``, and the session carries on with nothing lost. The server
tests run in memory on virtual time, over polling and over websocket.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import engineio.packet
import engineio.payload
import pytest
import trio
import trio.testing
from server_helpers import Poller, make_app, ws_handshake

import trio_engineio.packet
import trio_engineio.payload
from trio_engineio import ASGIApp, LocalProtocolError
from trio_engineio.protocol import Packet, PacketType
from trio_engineio.testing import open_websocket

# -- the modules mirror python-engineio's ------------------------------------------------------------

SAMPLES: list[tuple[int, Any]] = [
    (engineio.packet.MESSAGE, "hello"),
    (engineio.packet.MESSAGE, "café ✓"),
    (engineio.packet.MESSAGE, b"\x00\x01\xff"),
    (engineio.packet.MESSAGE, bytearray(b"\x02")),
    (engineio.packet.MESSAGE, {"a": [1, "b"]}),
    (engineio.packet.MESSAGE, [1, 2]),
    (engineio.packet.PING, "probe"),
    (engineio.packet.PONG, None),
    (engineio.packet.NOOP, None),
    (engineio.packet.CLOSE, None),
    (engineio.packet.UPGRADE, None),
]


def test_the_constants_are_python_engineios() -> None:
    """Code that reads ``packet.MESSAGE`` or ``packet.packet_names`` gets python-engineio's values."""
    for name in engineio.packet.packet_names:
        assert getattr(trio_engineio.packet, name) == getattr(engineio.packet, name)
    assert trio_engineio.packet.packet_names == engineio.packet.packet_names
    assert trio_engineio.packet.binary_types == engineio.packet.binary_types


@pytest.mark.parametrize(("packet_type", "data"), SAMPLES)
@pytest.mark.parametrize("b64", [False, True])
def test_packets_encode_as_python_engineio_encodes_them(packet_type: int, data: Any, b64: bool) -> None:
    """The same frame or payload text as python-engineio, and python-engineio decodes it back."""
    ours = trio_engineio.packet.Packet(packet_type, data)
    reference = engineio.packet.Packet(packet_type, data)
    encoded = ours.encode(b64=b64)
    assert ours.binary == reference.binary
    if isinstance(data, dict | list):  # the same JSON, written without \\u escapes
        assert isinstance(encoded, str)
        assert encoded[0] == "4"
        assert json.loads(encoded[1:]) == data
    else:
        assert encoded == reference.encode(b64=b64)
    decoded = engineio.packet.Packet(encoded_packet=encoded)
    assert decoded.packet_type == packet_type
    assert decoded.data == (data if data is not None else "")


@pytest.mark.parametrize(("packet_type", "data"), SAMPLES)
def test_packets_decode_what_python_engineio_encodes(packet_type: int, data: Any) -> None:
    """``Packet(encoded_packet=...)`` reads both forms python-engineio writes."""
    for b64 in (False, True):
        encoded = engineio.packet.Packet(packet_type, data).encode(b64=b64)
        ours = trio_engineio.packet.Packet(encoded_packet=encoded)
        assert ours.packet_type == packet_type
        assert ours.data == (bytes(data) if isinstance(data, bytearray) else data if data is not None else "")
        assert ours.binary == isinstance(data, bytes | bytearray)


def test_packets_refuse_what_python_engineio_refuses_and_what_it_would_garble() -> None:
    """Binary control packets and bad encodings are ValueErrors, as there; data of another type a TypeError."""
    with pytest.raises(ValueError, match="MESSAGE"):
        trio_engineio.packet.Packet(trio_engineio.packet.PING, b"x")
    for bad in ("", "9nine", "bnot base64!"):
        with pytest.raises(ValueError, match="invalid packet"):
            trio_engineio.packet.Packet(encoded_packet=bad)
    assert trio_engineio.packet.Packet(encoded_packet=b"").data == b""  # an empty binary message is one
    with pytest.raises(ValueError, match=r"not an Engine\.IO packet type"):
        trio_engineio.packet.Packet(9, "x").encode()
    with pytest.raises(TypeError, match="int"):  # python-engineio would send str(5)
        trio_engineio.packet.Packet(trio_engineio.packet.MESSAGE, 5).encode()


def test_payloads_encode_and_decode_as_python_engineios() -> None:
    """``Payload`` joins and splits python-engineio's bodies, JSONP and its 16-packet limit included."""
    samples = [(t, d) for t, d in SAMPLES if not isinstance(d, dict | list)]
    ours = trio_engineio.payload.Payload([trio_engineio.packet.Packet(t, d) for t, d in samples])
    reference = engineio.payload.Payload([engineio.packet.Packet(t, d) for t, d in samples])
    assert ours.encode() == reference.encode()
    decoded = trio_engineio.payload.Payload(encoded_payload=reference.encode())
    assert [(p.packet_type, p.data) for p in decoded.packets] == [
        (t, bytes(d) if isinstance(d, bytearray) else "" if d is None else d) for t, d in samples
    ]
    jsonp = trio_engineio.payload.Payload([trio_engineio.packet.Packet(4, 'say "hi"')]).encode(jsonp_index=3)
    assert jsonp == engineio.payload.Payload([engineio.packet.Packet(4, 'say "hi"')]).encode(jsonp_index=3)
    assert [p.data for p in trio_engineio.payload.Payload(encoded_payload="d=4a%1E4b").packets] == ["a", "b"]
    assert trio_engineio.payload.Payload(encoded_payload="").packets == []
    with pytest.raises(ValueError, match="Too many packets"):
        trio_engineio.payload.Payload(encoded_payload="\x1e".join(["3"] * 17))
    # A python-engineio packet in our payload encodes too (it only needs encode(b64=True)).
    assert trio_engineio.payload.Payload([engineio.packet.Packet(4, "x")]).encode() == "4x"


# -- send_packet over both transports ---------------------------------------------------------------

Receive = Callable[[], Awaitable[list[Packet]]]


@asynccontextmanager
async def _client(transport: str, app: ASGIApp) -> AsyncIterator[tuple[str, Receive]]:
    """A connected raw client of ``app``: its sid, and a call returning the next packets it receives."""
    if transport == "polling":
        async with Poller.open(app) as poller:
            await poller.handshake()
            yield poller.sid, poller.get
    else:
        async with open_websocket(app) as ws:
            sid = (await ws_handshake(ws))["sid"]

            async def receive() -> list[Packet]:
                frame = await ws.receive()
                if isinstance(frame, bytes):
                    return [Packet(PacketType.MESSAGE, frame)]
                return [Packet(PacketType(int(frame[0])), frame[1:])]

            yield sid, receive


async def _receive_all(receive: Receive, count: int) -> list[Packet]:
    received: list[Packet] = []
    while len(received) < count:
        received += await receive()
    return received


TRANSPORTS = pytest.mark.parametrize("transport", ["polling", "websocket"])


@TRANSPORTS
async def test_send_packet_takes_every_kind_of_packet(autojump_clock: trio.testing.MockClock, transport: str) -> None:
    """Our protocol Packet, ``trio_engineio.packet.Packet`` and python-engineio's own all reach the client."""
    eio, app = make_app()
    async with eio, _client(transport, app) as (sid, receive):
        await eio.send_packet(sid, Packet(PacketType.MESSAGE, "protocol"))
        await eio.send_packet(sid, trio_engineio.packet.Packet(trio_engineio.packet.MESSAGE, "ours"))
        await eio.send_packet(sid, engineio.packet.Packet(engineio.packet.MESSAGE, "python-engineio"))
        await eio.send_packet(sid, engineio.packet.Packet(engineio.packet.MESSAGE, b"\x00\xff"))
        await eio.send_packet(sid, engineio.packet.Packet(engineio.packet.MESSAGE, {"n": 1}))
        await eio.send_packet(sid, engineio.packet.Packet(engineio.packet.NOOP))
        assert await _receive_all(receive, 6) == [
            Packet(PacketType.MESSAGE, "protocol"),
            Packet(PacketType.MESSAGE, "ours"),
            Packet(PacketType.MESSAGE, "python-engineio"),
            Packet(PacketType.MESSAGE, b"\x00\xff"),
            Packet(PacketType.MESSAGE, '{"n":1}'),
            Packet(PacketType.NOOP),
        ]


class _NotAPacket:
    type = PacketType.MESSAGE  # looks a little like our Packet, yet is not one
    payload = "x"


@TRANSPORTS
@pytest.mark.parametrize(
    ("bad", "error", "match"),
    [
        (_NotAPacket(), TypeError, "cannot send a .*_NotAPacket"),
        ("4hello", TypeError, "cannot send a builtins.str"),
        (engineio.packet.Packet(engineio.packet.MESSAGE, 5), TypeError, "data of type int"),
        (engineio.packet.Packet(9, "x"), LocalProtocolError, "not an Engine.IO packet type"),
        (engineio.packet.Packet(engineio.packet.MESSAGE, "\ud800"), LocalProtocolError, "lone surrogate"),
    ],
    ids=["not-a-packet", "a-string", "int-data", "unknown-type", "lone-surrogate"],
)
async def test_send_packet_refuses_what_it_cannot_send_and_loses_nothing(
    autojump_clock: trio.testing.MockClock, transport: str, bad: object, error: type[Exception], match: str
) -> None:
    """Refused at the call, before anything is queued: what was sent before and after arrives, in order.

    It used to raise AttributeError over websocket and, over polling, to queue the packet, so that
    the next GET answered 500 and the packets with it were lost.
    """
    eio, app = make_app()
    async with eio, _client(transport, app) as (sid, receive):
        await eio.send(sid, "before")
        with pytest.raises(error, match=match):
            await eio.send_packet(sid, bad)  # type: ignore[arg-type]
        await eio.send(sid, "after")
        assert await _receive_all(receive, 2) == [
            Packet(PacketType.MESSAGE, "before"),
            Packet(PacketType.MESSAGE, "after"),
        ]
        assert sid in eio.sockets


async def test_dict_data_is_encoded_with_the_servers_json_module(autojump_clock: trio.testing.MockClock) -> None:
    """As ``send`` does: the server's ``json=``, not a process-wide setting."""

    class Shouting:
        @staticmethod
        def dumps(data: Any) -> str:
            return json.dumps(data).upper()

        loads = staticmethod(json.loads)

    eio, app = make_app(json=Shouting)
    async with eio, _client("websocket", app) as (sid, receive):
        await eio.send_packet(sid, trio_engineio.packet.Packet(trio_engineio.packet.MESSAGE, {"a": "b"}))
        assert await receive() == [Packet(PacketType.MESSAGE, '{"A": "B"}')]
