"""Soak: 1,000 sessions of the official JS client for many minutes; anything lost, reordered, leaked?

An echo server (trio_engineio under hypercorn's trio worker, pinned to CPU 0 where the machine
has two cores) and CLIENTS ``engine.io-client`` sockets in one Node.js process (``soak.mjs``,
pinned to CPU 1): half polling only, 40 % websocket only, 10 % polling that upgrades to
websocket. Each sends one sequence-numbered message a second; the echo gives the round-trip
latency. Reported: messages lost (sent, never echoed) and reordered, latency p50/p99/max, the
server's RSS over time (``/proc``), and, after the clients have left, its RSS, open sessions
and live Trio tasks (from a ``/stats`` endpoint of the server). Not a test: nothing is asserted.

Usage: python benchmarks/soak.py [--minutes 10] [--clients 1000] [--ramp 10] [--json FILE]
       python benchmarks/soak.py serve PORT   (internal: the echo server)
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import os
import queue
import subprocess
import sys
import threading
import time
import tracemalloc
import urllib.request
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from _process import cpu_seconds, free_port, pinned, rss_mb, wait_listening
from serve import answer_lifespan

HERE = Path(__file__).resolve().parent
TRACING = bool(os.environ.get("SOAK_TRACEMALLOC"))  # --tracemalloc: the server traces allocations
ROOT = HERE.parent


# -- the server (run in a subprocess) ---------------------------------------------------------------


def count_tasks() -> int:
    """Live Trio tasks in this run, found from the root task through every nursery."""
    import trio

    root = trio.lowlevel.current_root_task()
    assert root is not None
    count = 0
    pending = [root]
    while pending:
        task = pending.pop()
        count += 1
        for nursery in task.child_nurseries:
            pending.extend(nursery.child_tasks)
    return count


def trim_heap() -> None:
    """glibc's malloc_trim(0): return free heap pages to the OS (nothing elsewhere)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def echo_app() -> Any:
    import trio_engineio

    snapshots: list[tracemalloc.Snapshot] = []
    if os.environ.get("SOAK_TRACEMALLOC"):
        tracemalloc.start(8)

    eio = trio_engineio.AsyncServer()

    @eio.on("message")
    async def message(sid: str, data: Any) -> None:
        await eio.send(sid, data)

    async def stats(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        stats: dict[str, Any] = {"sessions": len(eio.sockets), "tasks": count_tasks()}
        if b"snapshot" in scope.get("query_string", b"") and tracemalloc.is_tracing():
            # --tracemalloc: each call reports what grew since the previous one.
            snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
            if snapshots:
                grown = snapshot.compare_to(snapshots[-1], "traceback")[:8]
                stats["grown"] = [str(stat) for stat in grown]
                stats["grown_where"] = [stat.traceback.format()[-6:] for stat in grown]
            snapshots[:] = [snapshot]
        if b"trim" in scope.get("query_string", b""):
            # After the clients left: what is still alive (gc-tracked objects), and what RSS is
            # once freed memory is handed back to the OS, which tells a leak (objects, memory
            # stay) from allocators that keep freed pages (RSS drops with malloc_trim).
            gc.collect()
            stats["objects"] = len(gc.get_objects())
            trim_heap()
            stats["rss_after_trim_mb"] = round(rss_mb(os.getpid()), 1)
        else:
            stats["objects"] = len(gc.get_objects())
        body = json.dumps(stats).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    return trio_engineio.ASGIApp(eio, other_asgi_app=stats)


def serve(port: int) -> None:
    import trio
    from hypercorn.config import Config
    from hypercorn.trio import serve as hypercorn_serve

    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.backlog = 2048
    config.accesslog = None
    config.errorlog = None
    trio.run(hypercorn_serve, echo_app(), config)


# -- the driver -------------------------------------------------------------------------------------


def server_stats(port: int, trim: bool = False, snapshot: bool = False) -> dict[str, Any]:
    query = "?trim=1" if trim else "?snapshot=1" if snapshot else ""
    # A tracemalloc snapshot of a busy server takes tens of seconds.
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats{query}", timeout=120 if snapshot else 10) as response:
        stats: dict[str, int] = json.loads(response.read())
        return stats


def sample(pid: int, port: int, t: float, node: int | None = None) -> dict[str, Any]:
    return {
        "t": round(t, 1),
        "rss_mb": round(rss_mb(pid), 1),
        **server_stats(port, snapshot=TRACING),
        "server_cpu_s": cpu_seconds(pid),
        "node_cpu_s": cpu_seconds(node) if node is not None else 0.0,
    }


def main() -> None:
    if sys.argv[1:2] == ["serve"]:
        serve(int(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--ramp", type=float, default=10, help="seconds over which the clients connect")
    parser.add_argument("--samples", type=int, default=12, help="RSS samples over the run")
    parser.add_argument("--json", type=Path, help="write the raw results here")
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="trace the server's allocations (slower): each sample reports what grew since the first",
    )
    args = parser.parse_args()
    if args.tracemalloc:
        os.environ["SOAK_TRACEMALLOC"] = "1"  # inherited by the server process
        global TRACING
        TRACING = True
    seconds = args.minutes * 60
    port = free_port()
    server = subprocess.Popen(pinned([sys.executable, __file__, "serve", str(port)], 0), cwd=ROOT)
    node: subprocess.Popen[str] | None = None
    try:
        wait_listening(port, time.monotonic() + 20)
        timeline = [sample(server.pid, port, 0)]
        start = time.monotonic()
        node = subprocess.Popen(
            pinned(
                [
                    "node",
                    str(HERE / "soak.mjs"),
                    f"http://127.0.0.1:{port}",
                    *map(str, (args.clients, seconds, args.ramp)),
                ],
                1,
            ),
            stdout=subprocess.PIPE,
            text=True,
        )
        events: queue.Queue[dict[str, Any]] = queue.Queue()

        stdout = node.stdout
        assert stdout is not None

        def pump() -> None:
            for line in stdout:
                if line.startswith("{"):
                    events.put(json.loads(line))

        threading.Thread(target=pump, daemon=True).start()
        every = seconds / args.samples
        next_sample = every
        result: dict[str, Any] | None = None
        while result is None:
            try:
                event = events.get(timeout=max(0.0, min(1.0, start + next_sample - time.monotonic())))
            except queue.Empty:
                event = None
            if event is not None:
                if event["event"] == "result":
                    result = event
                else:
                    print(json.dumps(event), flush=True)
            now = time.monotonic() - start
            if now >= next_sample and now < seconds:
                timeline.append(sample(server.pid, port, now, node.pid))
                print(json.dumps({"event": "server", **timeline[-1]}), flush=True)
                next_sample += every
            if node.poll() is not None and events.empty() and result is None:
                raise RuntimeError("the Node clients ended without a result")
        time.sleep(3)  # the clients have closed: let the server finish their sessions
        after = sample(server.pid, port, time.monotonic() - start, node.pid)
        after.update(server_stats(port, trim=True))
    finally:
        if node is not None:
            node.kill()
            node.wait()
        server.terminate()
        server.wait()
    report(args, result, timeline, after)


def report(
    args: argparse.Namespace, result: dict[str, Any], timeline: list[dict[str, Any]], after: dict[str, Any]
) -> None:
    print(f"\nsoak: {args.clients} engine.io-client sessions, 1 msg/s each, {args.minutes:g} min\n")
    print(
        f"opened {result['opened']}/{result['clients']}, upgraded {result['upgraded']}, "
        f"closed early {result['closed_early']}"
    )
    print(f"sent {result['sent']}, echoed {result['received']}, lost {result['lost']}, reordered {result['reordered']}")
    for kind, row in result["by_kind"].items():
        print(f"  {kind:9} {row['clients']:4} clients, sent {row['sent']}, echoed {row['received']}")
    print(f"round trip: p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, max {result['max_ms']:.1f} ms")
    print(
        f"  once all connected (sent after {args.ramp:g} + 5 s): "
        f"p50 {result['steady_p50_ms']:.1f} ms, p99 {result['steady_p99_ms']:.1f} ms"
    )
    for kind, row in result["by_kind"].items():
        print(f"  {kind:9} p50 {row['p50_ms']:.1f} ms, p99 {row['p99_ms']:.1f} ms")
    print("\n| t (s) | RSS (MB) | sessions | Trio tasks | server CPU % | Node CPU % |\n|---|---|---|---|---|---|")
    previous = timeline[0]
    for row in [*timeline, after]:
        elapsed = row["t"] - previous["t"]
        server_cpu = f"{100 * (row['server_cpu_s'] - previous['server_cpu_s']) / elapsed:.0f}" if elapsed else "-"
        node_cpu = (
            f"{100 * (row['node_cpu_s'] - previous['node_cpu_s']) / elapsed:.0f}"
            if elapsed and previous["node_cpu_s"]
            else "-"
        )
        print(f"| {row['t']:g} | {row['rss_mb']} | {row['sessions']} | {row['tasks']} | {server_cpu} | {node_cpu} |")
        previous = row
    print("(the last row: after the clients left)")
    print(
        f"after the clients left: {after['objects']:,} gc-tracked objects (idle server before: "
        f"{timeline[0]['objects']:,}); RSS {after['rss_mb']} MB, {after['rss_after_trim_mb']} MB after malloc_trim "
        f"(idle server before: {timeline[0]['rss_mb']} MB)"
    )
    if args.json:
        args.json.write_text(json.dumps({"result": result, "timeline": timeline, "after": after}, indent=1))


if __name__ == "__main__":
    main()
