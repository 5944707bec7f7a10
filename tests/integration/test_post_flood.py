"""A flood of tiny packets in one POST must not stall the other sessions (CVE-2020-36048's class).

A handshake is free, so anyone can open a polling session and POST a body of
``max_http_buffer_size`` made of one-byte packets (``3\\x1e3\\x1e...``: half a
million PONGs). Decoding and handling them with no checkpoint in between froze
the event loop for seconds. Now the payload decoder refuses more than
``max_packets_per_post`` packets before decoding any (400, the session closes),
an unsolicited PONG closes its session, and the POST loop checkpoints every few
packets.

The bystander test measures wall-clock round trips: that is allowed here only
because it compares two distributions taken in the same run, on the same
machine, with generous bounds (a multiple of the unloaded p99 plus a floor).
"""

from __future__ import annotations

import json
import statistics
import time
from typing import TYPE_CHECKING

import httpx
import trio

if TYPE_CHECKING:
    import trio_websocket
    from conftest import OpenRawWebSocket, ServeEcho

POLLING = {"EIO": "4", "transport": "polling"}
BAD_REQUEST = {"code": 3, "message": "Bad request"}

MAX_BODY = 1_000_000
PONG_FLOOD = "\x1e".join(["3"] * (MAX_BODY // 2)).encode()  # 999,999 bytes: 500,000 PONGs
NOOP_FLOOD = "\x1e".join(["6"] * (MAX_BODY // 2)).encode()
ATTACK_SECONDS = 3.0
UNLOADED_ROUND_TRIPS = 300
WARM_UP_ROUND_TRIPS = 20
SLOWDOWN = 20
"""How many times the unloaded p99 the bystander's p99 under attack may reach..."""
FLOOR = 0.05
"""...plus this many seconds, to absorb a loaded machine's noise (GC, the scheduler)."""
QUICK_REFUSAL = 1.0
"""The most seconds one flood POST may take to be answered (it took 3 s and more before the fix)."""


def p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[98]


async def round_trip(ws: trio_websocket.WebSocketConnection, text: str) -> float:
    start = time.perf_counter()
    await ws.send_message("4" + text)
    assert await ws.get_message() == "4" + text
    return time.perf_counter() - start


async def attack(url: str, body: bytes, until: float, refusals: list[tuple[str, int, str, float]]) -> None:
    """Loop handshake + flood POST until ``until`` (trio time); record each answer and its duration."""
    async with httpx.AsyncClient(timeout=30) as client:
        while trio.current_time() < until:
            response = await client.get(url, params=POLLING)
            assert response.status_code == 200, response.text
            sid = json.loads(response.text[1:])["sid"]
            start = time.perf_counter()
            response = await client.post(
                url, params={**POLLING, "sid": sid}, content=body, headers={"content-type": "text/plain"}
            )
            elapsed = time.perf_counter() - start
            refusals.append((sid, response.status_code, response.text, elapsed))


async def test_post_floods_do_not_stall_a_bystander(
    serve_echo: ServeEcho, open_raw_websocket: OpenRawWebSocket
) -> None:
    """Two attackers loop handshake + 1 MB PONG / NOOP flood for 3 s; a websocket bystander's echo
    p99 stays within 20x its unloaded p99 + 50 ms, and every flood is answered 400 quickly.

    Before the fix: p99 1.8 s under attack, each flood POST 3.3 s; after: about 10 ms and 50 ms.
    """
    async with serve_echo(max_http_buffer_size=MAX_BODY) as echo, open_raw_websocket(echo.engineio_url) as ws:
        sid = json.loads(str(await ws.get_message())[1:])["sid"]
        for i in range(WARM_UP_ROUND_TRIPS):
            await round_trip(ws, f"warm-up {i}")
        unloaded = [await round_trip(ws, f"quiet {i}") for i in range(UNLOADED_ROUND_TRIPS)]

        refusals: list[tuple[str, int, str, float]] = []
        under_attack: list[float] = []
        until = trio.current_time() + ATTACK_SECONDS
        async with trio.open_nursery() as nursery:
            nursery.start_soon(attack, echo.engineio_url, PONG_FLOOD, until, refusals)
            nursery.start_soon(attack, echo.engineio_url, NOOP_FLOOD, until, refusals)
            i = 0
            while trio.current_time() < until:
                under_attack.append(await round_trip(ws, f"attacked {i}"))
                i += 1

        budget = SLOWDOWN * p99(unloaded) + FLOOR
        report = (
            f"unloaded p99 {p99(unloaded) * 1000:.2f} ms, under attack p99 {p99(under_attack) * 1000:.2f} ms "
            f"(max {max(under_attack) * 1000:.2f} ms, {len(under_attack)} round trips), budget {budget * 1000:.2f} ms; "
            f"{len(refusals)} flood POSTs, slowest answered in {max(r[3] for r in refusals) * 1000:.1f} ms"
        )
        print(report)
        assert len(under_attack) >= 10, report
        assert p99(under_attack) <= budget, report
        assert len(refusals) >= 4, report
        answers = [(status, json.loads(text) if status == 400 else text) for _, status, text, _ in refusals]
        assert answers == [(400, BAD_REQUEST)] * len(refusals), report
        assert max(elapsed for *_, elapsed in refusals) < QUICK_REFUSAL, report
        for attacker_sid, *_ in refusals:
            assert await echo.wait_disconnect(attacker_sid) == "transport error"
        assert echo.messages[sid] == [f"warm-up {i}" for i in range(WARM_UP_ROUND_TRIPS)] + [
            f"quiet {i}" for i in range(UNLOADED_ROUND_TRIPS)
        ] + [f"attacked {i}" for i in range(len(under_attack))]
