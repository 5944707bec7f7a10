"""The official JS ``engine.io-client`` (6.6.8, under node) against our server under hypercorn.

Each test serves an echo :class:`~conftest.EchoServer` with hypercorn's trio
worker on 127.0.0.1 port 0 and runs one ``tests/js/client.mjs`` scenario
against it: real HTTP long-polling and real websockets, real time. Both ends
are checked: what the JS client printed, and what our handlers saw. The
``serve_echo`` fixture also checks, after every test, that no session is left,
each connect had exactly one disconnect and no error escaped the app.

"MUST" below quotes the Engine.IO v4 protocol
(https://github.com/socketio/socket.io/blob/main/docs/engine.io-protocol/v4-current.md).
"""

from __future__ import annotations

import base64
import json
import shutil
from typing import TYPE_CHECKING, Any

import pytest
import trio
from nodejs import CLIENT_SCRIPT, JS_DIR, JsEvent, events_named, result_event, run_js_client

if TYPE_CHECKING:
    from conftest import EchoServer, ServeEcho

pytestmark = pytest.mark.usefixtures("node_modules", "hypercorn_fast_path")

POLLING_ONLY: dict[str, Any] = {"transports": ["polling"]}
WEBSOCKET_ONLY: dict[str, Any] = {"transports": ["websocket"]}
DEFAULT: dict[str, Any] = {}  # polling first, then the upgrade to websocket
TRANSPORTS = pytest.mark.parametrize(
    "transports", [POLLING_ONLY, WEBSOCKET_ONLY, DEFAULT], ids=["polling", "websocket", "upgrade"]
)
SAMPLE_BINARY = bytes([0, 1, 2, 127, 128, 254, 255])  # what client.mjs sends in "echo"
EVIL_ORIGIN = {"Origin": "http://evil.example"}


def sid_of(events: list[JsEvent]) -> str:
    (opened,) = events_named(events, "open")
    sid: str = opened["sid"]
    return sid


async def run_refused_js_client(url: str, options: dict[str, Any]) -> list[JsEvent]:
    """Run the ``echo`` scenario where it must fail before ``open``; return its events.

    (``run_js_client`` raises on a failed scenario; here failing is the point.)
    """
    node = shutil.which("node")
    assert node is not None
    command = [node, str(CLIENT_SCRIPT), url, "echo", json.dumps({**options, "timeoutMs": 5000})]
    with trio.fail_after(15):
        completed = await trio.run_process(command, cwd=JS_DIR, capture_stdout=True, capture_stderr=True, check=False)
    stdout = completed.stdout.decode(errors="replace")
    assert completed.returncode == 1, stdout + completed.stderr.decode(errors="replace")
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


# -- transports ------------------------------------------------------------------


async def test_echo_over_polling_only(echo_server: EchoServer) -> None:
    """HTTP long-polling alone carries text, binary and JSON text both ways.

    Polling payloads MUST base64-encode binary packets with a ``b`` prefix; the
    JS client decodes ours back into the same bytes. The handshake offers the
    websocket upgrade, which a polling-only client ignores.
    """
    events = await run_js_client(echo_server.url, "echo", POLLING_ONLY)
    (handshake,) = events_named(events, "handshake")
    assert handshake["upgrades"] == ["websocket"]
    assert events_named(events, "open")[0]["transport"] == "polling"
    assert events_named(events, "upgrade") == []
    assert result_event(events)["transport"] == "polling"
    assert [event["data"] for event in events_named(events, "message")] == [
        "hello",
        {"binary": base64.b64encode(SAMPLE_BINARY).decode()},
        '{"text":"héllo ☃","list":[1,2,3]}',
    ]
    sid = sid_of(events)
    # What our message handler got: binary as bytes, JSON text decoded (python-engineio does that).
    assert await echo_server.wait_messages(sid, 3) == ["hello", SAMPLE_BINARY, {"text": "héllo ☃", "list": [1, 2, 3]}]


async def test_echo_over_websocket_only(echo_server: EchoServer) -> None:
    """A websocket-only session (no polling at all) carries text and binary frames both ways.

    The handshake MUST be an OPEN packet with sid, upgrades, pingInterval,
    pingTimeout and maxPayload; a websocket session has nothing to upgrade to.
    """
    events = await run_js_client(echo_server.url, "echo", WEBSOCKET_ONLY)
    (handshake,) = events_named(events, "handshake")
    assert handshake == {
        "event": "handshake",
        "sid": handshake["sid"],
        "upgrades": [],
        "pingInterval": 25000,
        "pingTimeout": 20000,
        "maxPayload": 1_000_000,
    }
    assert events_named(events, "open")[0]["transport"] == "websocket"
    assert result_event(events)["transport"] == "websocket"
    assert [event["data"] for event in events_named(events, "message")][:2] == [
        "hello",
        {"binary": base64.b64encode(SAMPLE_BINARY).decode()},
    ]
    assert (await echo_server.wait_messages(sid_of(events), 3))[:2] == ["hello", SAMPLE_BINARY]


async def test_upgrade_from_polling_to_websocket(echo_server: EchoServer) -> None:
    """The client's probe succeeds and it upgrades; messages then flow over the websocket.

    On ``2probe`` the server MUST answer ``3probe`` (and NOOP any pending GET),
    then take the client's UPGRADE packet as the switch to the websocket.
    """
    events = await run_js_client(echo_server.url, "upgrade")
    assert events_named(events, "open")[0]["transport"] == "polling"
    assert events_named(events, "upgradeError") == []
    assert events_named(events, "upgrade") == [{"event": "upgrade", "transport": "websocket"}]
    result = result_event(events)
    assert result["upgraded"] is True
    assert result["transport"] == "websocket"
    assert result["transports"] == ["polling", "websocket"]
    messages = [event["data"] for event in events_named(events, "message")]
    assert messages == ["after-upgrade", {"binary": base64.b64encode(SAMPLE_BINARY).decode()}]
    assert await echo_server.wait_messages(sid_of(events), 2) == ["after-upgrade", SAMPLE_BINARY]


@TRANSPORTS
async def test_1000_messages_arrive_in_order(echo_server: EchoServer, transports: dict[str, Any]) -> None:
    """1,000 messages sent back to back arrive in order at the server and back at the client.

    To keep packets in order a polling client MUST NOT have more than one GET
    or POST active: the JS client batches into payloads, our server must
    split and join them without losing or reordering one; with the upgrade,
    the switch of transport happens somewhere in the middle of the stream.
    """
    events = await run_js_client(echo_server.url, "ordered", {**transports, "count": 1000})
    result = result_event(events)
    assert result["count"] == 1000  # client.mjs checked the 1,000 echoes, in order
    if transports is DEFAULT:
        assert result["transports"][0] == "polling"
    else:
        assert result["transports"] == transports["transports"]
    received = await echo_server.wait_messages(sid_of(events), 1000)
    assert received == [f"message-{i}" for i in range(1000)]


@pytest.mark.parametrize(
    ("transports", "size", "binary"),
    [
        (POLLING_ONLY, 99_000, False),
        # Polling carries binary as base64 (4/3 the size): 74,000 bytes is a 98,669-byte body.
        (POLLING_ONLY, 74_000, True),
        (WEBSOCKET_ONLY, 99_000, False),
        (WEBSOCKET_ONLY, 99_000, True),
    ],
    ids=["polling-text", "polling-binary", "websocket-text", "websocket-binary"],
)
async def test_message_near_max_http_buffer_size(
    serve_echo: ServeEcho, transports: dict[str, Any], size: int, binary: bool
) -> None:
    """A message just under ``max_http_buffer_size`` is accepted and echoed whole.

    The limit (advertised as ``maxPayload``) bounds a POST body or a websocket
    message; one that fits must pass in both directions, on both transports.
    """
    async with serve_echo(max_http_buffer_size=100_000) as echo:
        events = await run_js_client(echo.url, "big", {**transports, "size": size, "binary": binary})
        assert events_named(events, "handshake")[0]["maxPayload"] == 100_000
        assert result_event(events)["size"] == size
        (received,) = await echo.wait_messages(sid_of(events), 1)
        assert isinstance(received, bytes if binary else str)
        assert len(received) == size
        assert await echo.wait_disconnect(sid_of(events)) in ("client disconnect", "transport close")


# -- closing ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("transports", "description"),
    [
        (POLLING_ONLY, {"description": "transport closed by the server"}),
        (WEBSOCKET_ONLY, {"description": "websocket connection closed"}),
    ],
    ids=["polling", "websocket"],
)
async def test_server_disconnect(
    echo_server: EchoServer, transports: dict[str, Any], description: dict[str, Any]
) -> None:
    """``eio.disconnect(sid)`` closes the client's session; the handler gets ``'server disconnect'``.

    On polling the CLOSE packet reaches the client in a GET response (the JS
    client then reports "transport closed by the server"); on a websocket the
    socket is closed after the CLOSE packet, cleanly (code 1000).
    """
    events = await run_js_client(echo_server.url, "wait-close", transports)
    result = result_event(events)
    assert result["reason"] == "transport close"
    assert {key: value for key, value in result["description"].items() if key != "context"} == description
    if transports is WEBSOCKET_ONLY:
        assert result["description"]["context"]["code"] == 1000
    assert await echo_server.wait_disconnect(sid_of(events)) == "server disconnect"


@pytest.mark.parametrize(
    ("transports", "reason"),
    [(POLLING_ONLY, "client disconnect"), (WEBSOCKET_ONLY, "transport close")],
    ids=["polling", "websocket"],
)
async def test_client_close(echo_server: EchoServer, transports: dict[str, Any], reason: str) -> None:
    """``socket.close()`` in the JS client ends the session; the reason depends on the transport.

    Over polling the client POSTs a CLOSE packet: ``'client disconnect'``.
    Over a websocket it just closes the socket without a CLOSE packet (that
    is engine.io-client's ``doClose``), which the server can only see as
    ``'transport close'``.
    """
    events = await run_js_client(echo_server.url, "echo", transports)
    assert events[-1] == {"event": "close", "reason": "forced close", "description": None}
    assert await echo_server.wait_disconnect(sid_of(events)) == reason


@pytest.mark.parametrize("transports", [POLLING_ONLY, WEBSOCKET_ONLY], ids=["polling", "websocket"])
async def test_pings_keep_the_session_alive(serve_echo: ServeEcho, transports: dict[str, Any]) -> None:
    """The server pings every ``ping_interval``; the client's pongs keep the session open.

    At the advertised ``pingInterval`` the server sends a PING and the client
    has ``pingTimeout`` to answer; a client that sees no PING within
    ``pingInterval + pingTimeout`` gives up. Here both are 200 ms: over about
    1 s the client sees several pings and neither side times out.
    """
    async with serve_echo(ping_interval=0.2, ping_timeout=0.2) as echo:
        events = await run_js_client(echo.url, "keepalive", {**transports, "seconds": 1.0})
        (handshake,) = events_named(events, "handshake")
        assert (handshake["pingInterval"], handshake["pingTimeout"]) == (200, 200)
        result = result_event(events)
        assert result["closed"] is False
        assert result["pings"] >= 3  # about 5 in 1 s; the bound leaves room for a slow machine
        assert await echo.wait_disconnect(sid_of(events)) != "ping timeout"


@pytest.mark.parametrize("transports", [POLLING_ONLY, WEBSOCKET_ONLY], ids=["polling", "websocket"])
async def test_disallowed_origin_is_refused(echo_server: EchoServer, transports: dict[str, Any]) -> None:
    """With ``cors_allowed_origins=None`` (same origin only) a foreign ``Origin`` is refused.

    The handshake is answered 400 (a websocket is refused before it is
    accepted), so the client reports a transport error and never opens, and
    no session is created: the connect handler never runs.
    """
    events = await run_refused_js_client(echo_server.url, {**transports, "extraHeaders": EVIL_ORIGIN})
    assert events_named(events, "open") == []
    assert events_named(events, "handshake") == []
    (closed,) = events_named(events, "close")
    assert closed["reason"] == "transport error"
    if transports is POLLING_ONLY:
        assert closed["description"]["description"] == 400  # the handshake's HTTP status
    assert echo_server.connects == []


@pytest.mark.parametrize(
    ("transports", "description"),
    [
        (POLLING_ONLY, {"description": "transport closed by the server"}),
        (WEBSOCKET_ONLY, {"description": "websocket connection closed"}),
    ],
    ids=["polling", "websocket"],
)
async def test_server_shutdown_closes_connected_js_clients(
    serve_echo: ServeEcho, transports: dict[str, Any], description: dict[str, Any]
) -> None:
    """Shutting hypercorn down (leaving ``serve_hypercorn``) closes a connected JS client at once.

    The client is waiting on an open session (a long poll, or a websocket);
    it gets its CLOSE (polling) or a clean websocket close and reports
    "transport close"; our handler sees ``'server disconnect'``.
    """
    outcome: list[list[JsEvent]] = []
    async with trio.open_nursery() as nursery, serve_echo() as echo:

        async def js_client() -> None:
            # "wait-close" sends "hello" (just echoed) and waits for the session to close.
            outcome.append(await run_js_client(echo.url, "wait-close", {**transports, "trigger": "hello"}))

        nursery.start_soon(js_client)
        await echo.wait_for(lambda: ["hello"] in echo.messages.values(), "the JS client's first message")
    events = outcome[0]
    result = result_event(events)
    assert result["reason"] == "transport close"
    assert {key: value for key, value in result["description"].items() if key != "context"} == description
    assert echo.disconnects == {sid_of(events): "server disconnect"}
