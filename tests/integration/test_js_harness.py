"""Self-tests of the Node.js interop harness: official JS client <-> official JS server.

If these fail, interop failures against trio_engineio mean nothing, so they
pin down what the official implementations do (close reasons included).
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
import trio
from nodejs import events_named, open_js_server, result_event, run_js_client

pytestmark = pytest.mark.trio

POLLING_ONLY = {"transports": ["polling"]}
WEBSOCKET_ONLY = {"transports": ["websocket"]}
BOTH = {"transports": ["polling", "websocket"]}
# Small heartbeat so the ping-related tests take well under a second.
FAST_PINGS = {"pingInterval": 200, "pingTimeout": 100}


async def test_echo_over_polling_only() -> None:
    async with open_js_server() as server:
        events = await run_js_client(server.url, "echo", POLLING_ONLY)
        (opened,) = events_named(events, "open")
        assert opened["transport"] == "polling"
        assert events_named(events, "upgrade") == []
        assert result_event(events) == {
            "event": "result",
            "scenario": "echo",
            "ok": True,
            "count": 3,
            "transport": "polling",
        }
        assert [e["data"] for e in events_named(events, "message")] == [
            "hello",
            {"binary": base64.b64encode(bytes([0, 1, 2, 127, 128, 254, 255])).decode()},
            '{"text":"héllo ☃","list":[1,2,3]}',
        ]
        assert events[-1] == {"event": "close", "reason": "forced close", "description": None}
        # The client's "close" packet reached the server before node exited.
        closed = await server.wait_for("close", sid=opened["sid"])
        assert closed["reason"] == "transport close"
    assert server.process.returncode == 0  # clean shutdown when stdin closed


async def test_echo_over_websocket_only() -> None:
    async with open_js_server() as server:
        events = await run_js_client(server.url, "echo", WEBSOCKET_ONLY)
        (handshake,) = events_named(events, "handshake")
        assert handshake["upgrades"] == []
        assert events_named(events, "open")[0]["transport"] == "websocket"
        assert result_event(events)["transport"] == "websocket"


async def test_upgrade_from_polling_to_websocket() -> None:
    async with open_js_server() as server:
        events = await run_js_client(server.url, "upgrade")
        (opened,) = events_named(events, "open")
        assert opened["transport"] == "polling"
        assert events_named(events, "upgrade") == [{"event": "upgrade", "transport": "websocket"}]
        result = result_event(events)
        assert result["transport"] == "websocket"
        assert result["transports"] == ["polling", "websocket"]
        upgraded = await server.wait_for("upgrade", sid=opened["sid"])
        assert upgraded["transport"] == "websocket"


@pytest.mark.parametrize("transports", [POLLING_ONLY, WEBSOCKET_ONLY, BOTH], ids=["polling", "websocket", "both"])
async def test_ordered_1000_messages(transports: dict[str, Any]) -> None:
    async with open_js_server() as server:
        events = await run_js_client(server.url, "ordered", {**transports, "count": 1000})
        result = result_event(events)
        assert result["count"] == 1000
        assert set(result["transports"]) <= set(transports["transports"])
        # The server saw them in order too.
        sid = events_named(events, "open")[0]["sid"]
        await server.wait_for("message", sid=sid, data="message-999")
        received = [e["data"] for e in server.events_named("message") if e["sid"] == sid]
        assert received == [f"message-{i}" for i in range(1000)]


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
async def test_big_message(binary: bool) -> None:
    async with open_js_server({"maxHttpBufferSize": 2_000_000}) as server:
        options = {**POLLING_ONLY, "size": 500_000, "binary": binary}
        events = await run_js_client(server.url, "big", options)
        assert result_event(events)["size"] == 500_000


async def test_server_sends_binary_0_to_255() -> None:
    async with open_js_server() as server:
        events = await run_js_client(server.url, "request-binary", POLLING_ONLY)
        assert result_event(events)["length"] == 256
        (message,) = events_named(events, "message")
        assert base64.b64decode(message["data"]["binary"]) == bytes(range(256))


@pytest.mark.parametrize("transports", [POLLING_ONLY, WEBSOCKET_ONLY], ids=["polling", "websocket"])
async def test_stop_pinging_makes_client_time_out(transports: dict[str, Any]) -> None:
    async with open_js_server(FAST_PINGS) as server:
        events = await run_js_client(server.url, "wait-close", {**transports, "trigger": "stop-pinging"})
        assert result_event(events)["reason"] == "ping timeout"
        sid = events_named(events, "open")[0]["sid"]
        await server.wait_for("stopped-pinging", sid=sid)


@pytest.mark.parametrize(
    ("transports", "description"),
    [
        (POLLING_ONLY, {"description": "transport closed by the server"}),
        (
            WEBSOCKET_ONLY,
            {
                "description": "websocket connection closed",
                "context": {"type": "close", "code": 1005, "reason": "", "wasClean": True},
            },
        ),
    ],
    ids=["polling", "websocket"],
)
async def test_server_side_disconnect(transports: dict[str, Any], description: dict[str, Any]) -> None:
    async with open_js_server() as server:
        events = await run_js_client(server.url, "wait-close", transports)
        result = result_event(events)
        assert result["reason"] == "transport close"
        assert result["description"] == description
        sid = events_named(events, "open")[0]["sid"]
        closed = await server.wait_for("close", sid=sid)
        assert closed["reason"] == "forced close"


async def test_keepalive_sees_pings() -> None:
    async with open_js_server(FAST_PINGS) as server:
        events = await run_js_client(server.url, "keepalive", {"seconds": 1})
        result = result_event(events)
        assert result["closed"] is False
        assert result["pings"] >= 3  # one every 200 ms for 1 s
        assert len(events_named(events, "ping")) == result["pings"]


async def test_failed_scenario_raises_with_output() -> None:
    async with open_js_server() as server:
        with pytest.raises(AssertionError, match="unknown scenario"):
            await run_js_client(server.url, "no-such-scenario")


async def test_server_process_is_reaped_when_cancelled() -> None:
    with trio.CancelScope() as scope:
        async with open_js_server(FAST_PINGS) as server, trio.open_nursery() as nursery:
            # A connected client is still running when the block is cancelled.
            nursery.start_soon(run_js_client, server.url, "keepalive", {"seconds": 5})
            await server.wait_for("connection")
            scope.cancel()
    assert scope.cancelled_caught
    assert server.process.returncode is not None
