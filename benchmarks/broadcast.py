"""Broadcast to 1,000 websocket clients: with a few that never read (is the broadcast held up?), or,
with ``--fanout``, all reading (how fast does one message per session reach everyone?).

One server process (pinned to CPU 0 where the machine has two cores) holds CLIENTS websocket
sessions: CLIENTS - STALLED reading clients in one Node.js process (``broadcast.mjs``, the ``ws``
package from tests/js, pinned to CPU 1), and STALLED raw sockets from this process that
complete the handshake, shrink their receive buffer, and never read again. A reading client then
asks the server to broadcast N numbered messages of SIZE bytes to every session, one round
(one message to all) at a time. Reported: the time from that request until the last reading
client has every message, in order (measured by the Node process), what the broadcast skipped,
and the server's RSS (from /proc). Not a test: nothing is asserted.

Servers (``--kinds``):

  trio-engineio-nowait     trio_engineio under hypercorn's trio worker: ``send_nowait`` to each
                           sid, skipping the sid on ``QueueFull``; a checkpoint after each round
  python-engineio-uvicorn  A: python-engineio on uvicorn: ``await send`` to each sid (its queue is
                           unbounded, so it never waits); ``asyncio.sleep(0)`` after each round
  trio-engineio-send       E: trio_engineio with ``await send``: with stalled clients, the loop waits
                           on the first of them until its session ends (the problem ``send_nowait``
                           solves)
  raw-hypercorn-trio       D: a bare ASGI websocket app on hypercorn's trio worker, no Engine.IO (the
                           ceiling of our stack): it sends an OPEN packet on connect, never pings,
                           and broadcasts with ``await send`` of the same "4..." frames to every
                           connection (so a stalled client holds its loop for good: no heartbeat
                           ever ends that session)

Fan-out (``--fanout``): the issue's "the app sends one message to each of 1,000 connected
websocket sessions in a loop". No stalled clients; by default the four kinds above (A, D, E and
the ``send_nowait`` variant), N rounds of one message to every session. Reported per kind:
messages/s (messages to all clients / time until the last client has the last one), the time
until the last client has the last message and until it has the first (one message to all),
lost and reordered, and the msg/s ratios to A and to D.

Usage: python benchmarks/broadcast.py [--clients 1000] [--stalled 10] [-n 300] [--size 1000]
                                      [--buffer 64] [--kinds ...] [--timeout 60] [--json FILE]
       python benchmarks/broadcast.py --fanout [--clients 1000] [-n 100] [--size 100]
                                      [--buffer 1024] [--kinds ...] [--json FILE]
       python benchmarks/broadcast.py serve KIND PORT BUFFER PING_INTERVAL PING_TIMEOUT  (internal)

``--buffer`` is the trio servers' ``outbound_buffer_size``. With the default 1024 packets a stalled
client would absorb more than a short run sends (plus what the kernel's socket buffers take),
and no ``QueueFull`` would ever happen; 64 makes the stalled clients fill up within the run. The
fan-out keeps the default 1024: with every client reading, a smaller buffer would only make
``send_nowait`` skip readers whose writer is a few rounds behind.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from _process import free_port, pinned, rss_mb, wait_listening
from serve import answer_lifespan

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RAW = "raw-hypercorn-trio"
KINDS = ["trio-engineio-nowait", "python-engineio-uvicorn", "trio-engineio-send", RAW]
STALLED_KINDS = KINDS[:2]
"""The default kinds of the stalled-client scenario."""
FANOUT_KINDS = ["python-engineio-uvicorn", RAW, "trio-engineio-send", "trio-engineio-nowait"]
"""The default kinds of ``--fanout``: A and D first, as every scenario's reference and ceiling."""
SHORT = {
    "python-engineio-uvicorn": "A",
    RAW: "D",
    "trio-engineio-send": "E",
    "trio-engineio-nowait": "E nowait",
}
WAITS_ON_STALLED = {"trio-engineio-send", RAW}
"""Kinds whose broadcast loop waits on a client that does not read."""
STALLED_RCVBUF = 4096
"""The receive buffer the stalled clients ask for (the kernel doubles it), so they fill up fast."""


# -- the servers (run in a subprocess) ------------------------------------------------------------


def report(event: dict[str, Any]) -> None:
    print(json.dumps(event), flush=True)


def trio_app(kind: str, buffer: int, ping_interval: float, ping_timeout: float) -> Any:
    import trio

    import trio_engineio

    eio = trio_engineio.AsyncServer(outbound_buffer_size=buffer, ping_interval=ping_interval, ping_timeout=ping_timeout)
    stalled: set[str] = set()

    async def broadcast(n: int, size: int) -> None:
        pad = "x" * size
        sids = list(eio.sockets)
        skipped = {"stalled": 0, "reading": 0}
        start = time.perf_counter()
        for i in range(n):
            text = f"{i}:{pad}"
            if kind == "trio-engineio-nowait":
                for sid in sids:
                    try:
                        eio.send_nowait(sid, text)
                    except trio_engineio.QueueFull:
                        skipped["stalled" if sid in stalled else "reading"] += 1
                await trio.lowlevel.checkpoint()
            else:
                for sid in sids:
                    await eio.send(sid, text)
        report({"event": "broadcast_done", "loop_s": time.perf_counter() - start, "skipped": skipped})

    @eio.on("message")
    async def message(sid: str, data: Any) -> None:
        if data == "stalled":
            stalled.add(sid)
        elif isinstance(data, str) and data.startswith("go "):
            _, n, size = data.split()
            eio.start_background_task(broadcast, int(n), int(size))

    return trio_engineio.ASGIApp(eio)


def python_engineio_app(ping_interval: float, ping_timeout: float) -> Any:
    import asyncio

    import engineio

    eio = engineio.AsyncServer(async_mode="asgi", ping_interval=ping_interval, ping_timeout=ping_timeout)

    async def broadcast(n: int, size: int) -> None:
        pad = "x" * size
        sids = list(eio.sockets)
        start = time.perf_counter()
        for i in range(n):
            text = f"{i}:{pad}"
            for sid in sids:
                await eio.send(sid, text)
            await asyncio.sleep(0)
        report({"event": "broadcast_done", "loop_s": time.perf_counter() - start, "skipped": None})

    @eio.on("message")  # type: ignore[untyped-decorator]
    async def message(sid: str, data: Any) -> None:
        if isinstance(data, str) and data.startswith("go "):
            _, n, size = data.split()
            eio.start_background_task(broadcast, int(n), int(size))

    return engineio.ASGIApp(eio)


def raw_app() -> Any:
    """The least a broadcasting server can do over ASGI on hypercorn's trio worker: the ceiling.

    Enough of Engine.IO for ``broadcast.mjs`` and the stalled clients: an OPEN packet on connect,
    and a "4go N SIZE" message starts the broadcast, one ``await send`` per connection per round
    of the same "4..." frames as the Engine.IO servers send. No heartbeat, no queues, no parsing.
    """
    sids = itertools.count(1)
    sends: dict[int, Any] = {}
    open_packet = '0{"sid":"%d","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'

    async def broadcast(n: int, size: int) -> None:
        pad = "x" * size
        recipients = list(sends.values())
        start = time.perf_counter()
        for i in range(n):
            message = {"type": "websocket.send", "text": f"4{i}:{pad}"}
            for send in recipients:
                await send(message)
        report({"event": "broadcast_done", "loop_s": time.perf_counter() - start, "skipped": None})

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        if scope["type"] != "websocket":
            return
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        sid = next(sids)
        await send({"type": "websocket.send", "text": open_packet % sid})
        sends[sid] = send
        try:
            while True:
                message = await receive()
                if message["type"] != "websocket.receive":
                    return
                text = message.get("text") or ""
                if text.startswith("4go "):
                    _, n, size = text.split()
                    # In the requesting connection's own task: it has nothing else to do, and
                    # the ceiling should not pay for a task the Engine.IO servers start.
                    await broadcast(int(n), int(size))
        finally:
            del sends[sid]

    return app


def serve(kind: str, port: int, buffer: int, ping_interval: float, ping_timeout: float) -> None:
    if kind == "python-engineio-uvicorn":
        import uvicorn

        app = python_engineio_app(ping_interval, ping_timeout)
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="error", backlog=2048)
        return
    import trio
    from hypercorn.config import Config
    from hypercorn.trio import serve as hypercorn_serve

    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.backlog = 2048
    config.accesslog = None
    config.errorlog = None
    app = raw_app() if kind == RAW else trio_app(kind, buffer, ping_interval, ping_timeout)
    trio.run(hypercorn_serve, app, config)


# -- the driver -------------------------------------------------------------------------------------


def _read_exactly(sock: socket.socket, buffered: bytes, size: int) -> tuple[bytes, bytes]:
    while len(buffered) < size:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        buffered += chunk
    return buffered[:size], buffered[size:]


def open_stalled_client(port: int) -> socket.socket:
    """A raw websocket Engine.IO client: handshake, OPEN packet, one message saying it is the
    stalled kind, then it never reads again (with a small receive buffer, so it fills up soon)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, STALLED_RCVBUF)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            "GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    buffered = b""
    while b"\r\n\r\n" not in buffered:
        buffered += sock.recv(4096)
    head, _, buffered = buffered.partition(b"\r\n\r\n")
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        raise ConnectionError(f"websocket refused: {head[:100]!r}")
    header, buffered = _read_exactly(sock, buffered, 2)
    length = header[1] & 0x7F
    if length == 126:
        extended, buffered = _read_exactly(sock, buffered, 2)
        length = int.from_bytes(extended, "big")
    frame, buffered = _read_exactly(sock, buffered, length)
    if not frame.startswith(b"0{"):
        raise ConnectionError(f"no OPEN packet: {frame[:100]!r}")
    payload = b"4stalled"
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)
    return sock


def lines_of(stream: Any) -> queue.Queue[str]:
    """Lines read from ``stream`` in a thread (so the driver can wait with a deadline)."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def next_json(lines: queue.Queue[str], timeout: float) -> dict[str, Any] | None:
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            return None
        if line.startswith("{"):
            result: dict[str, Any] = json.loads(line)
            return result
    return None


def measure(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    command = [sys.executable, __file__, "serve", kind, str(port), str(args.buffer)]
    command += [str(args.ping_interval), str(args.ping_timeout)]
    server = subprocess.Popen(pinned(command, 0), cwd=ROOT, stdout=subprocess.PIPE, text=True)
    stalled: list[socket.socket] = []
    node: subprocess.Popen[str] | None = None
    try:
        wait_listening(port, time.monotonic() + 20)
        server_lines = lines_of(server.stdout)
        stalled = [open_stalled_client(port) for _ in range(args.stalled)]
        readers = args.clients - args.stalled
        node = subprocess.Popen(
            pinned(
                ["node", str(HERE / "broadcast.mjs"), f"http://127.0.0.1:{port}"]
                + [str(value) for value in (readers, args.n, args.size, args.timeout)],
                1,
            ),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert node.stdin is not None
        node_lines = lines_of(node.stdout)
        if next_json(node_lines, 60) != {"event": "connected"}:
            raise RuntimeError("the Node clients did not connect")
        rss_connected = rss_mb(server.pid)
        node.stdin.write("go\n")
        node.stdin.flush()
        peak = rss_connected
        result: dict[str, Any] | None = None
        deadline = time.monotonic() + args.timeout + 5
        while result is None and time.monotonic() < deadline:
            peak = max(peak, rss_mb(server.pid))
            result = next_json(node_lines, 0.1)
        if result is None:
            raise RuntimeError("no result from the Node clients")
        peak = max(peak, rss_mb(server.pid))
        done = next_json(server_lines, args.timeout if kind in WAITS_ON_STALLED and args.stalled else 1)
        last_s = result["last_ms"] / 1000 if result["last_ms"] else None
        return {
            "kind": kind,
            **result,
            "messages": args.n * readers,
            # Only when every client has every message: otherwise there is no "last one" to time.
            "rate": result["received"] / last_s if last_s else None,
            "loop_s": done["loop_s"] if done else None,
            "skipped": done["skipped"] if done else None,
            "rss_connected_mb": rss_connected,
            "rss_peak_mb": peak,
        }
    finally:
        if node is not None:
            node.kill()
            node.wait()
        for sock in stalled:
            sock.close()
        server.terminate()
        server.wait()


def seconds(ms: float | None) -> str:
    return "-" if ms is None else f"{ms / 1000:.2f}"


def two_places(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def attempt(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    """One kind's run; a failure (a server or the clients not coming up) is a row saying so, so that
    the other kinds of the run are still measured."""
    print(f"  {kind} ...", file=sys.stderr, flush=True)
    try:
        return measure(kind, args)
    except (RuntimeError, OSError) as error:
        return {"kind": kind, "error": f"{type(error).__name__}: {error}"}


def print_stalled(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(
        f"\nbroadcast of {args.n} x {args.size} B to {args.clients} websocket clients, {args.stalled} never reading; "
        f"outbound_buffer_size={args.buffer}, ping {args.ping_interval:g}+{args.ping_timeout:g} s\n"
    )
    header = "| server | all readers complete | last reader (s) | p50 reader (s) | loop (s) | skipped stalled "
    header += "| skipped readers | lost | reordered | RSS connected → peak (MB) |"
    print(header)
    print("|" + "---|" * 10)
    for row in rows:
        if "error" in row:
            print(f"| {row['kind']} | error: {row['error']} |" + " |" * 8)
            continue
        skipped = row["skipped"] or {}
        cells = [
            row["kind"],
            f"{row['complete']}/{row['clients']}",
            seconds(row["last_ms"]),
            seconds(row["p50_ms"]),
            "-" if row["loop_s"] is None else f"{row['loop_s']:.2f}",
            str(skipped.get("stalled", "-")),
            str(skipped.get("reading", "-")),
            str(row["lost"]),
            str(row["reordered"]),
            f"{row['rss_connected_mb']:.0f} → {row['rss_peak_mb']:.0f}",
        ]
        print("| " + " | ".join(cells) + " |")


def fanout_ratios(rows: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Per kind, its msg/s over A's and over D's (None where either did not complete)."""
    rate = {row["kind"]: row.get("rate") for row in rows}
    return {
        kind: {
            f"vs_{short}": top / bottom if top and (bottom := rate.get(reference)) else None
            for short, reference in (("A", "python-engineio-uvicorn"), ("D", RAW))
        }
        for kind, top in rate.items()
    }


def print_fanout(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(
        f"\nfan-out: {args.n} rounds of one {args.size} B message to each of {args.clients} websocket sessions; "
        f"outbound_buffer_size={args.buffer}\n"
    )
    header = ["server", "all complete", "msg/s", "vs A", "vs D", "last client has the last (s)"]
    header += ["last client has the first (ms)", "loop (s)", "lost", "reordered", "RSS connected → peak (MB)"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    ratios = fanout_ratios(rows)
    for row in rows:
        name = f"{SHORT[row['kind']]} {row['kind']}"
        if "error" in row:
            print(f"| {name} | error: {row['error']} |" + " |" * (len(header) - 2))
            continue
        first = row["first_message_last_ms"]
        cells = [
            name,
            f"{row['complete']}/{row['clients']}",
            "-" if row["rate"] is None else f"{row['rate']:,.0f}",
            two_places(ratios[row["kind"]]["vs_A"]),
            two_places(ratios[row["kind"]]["vs_D"]),
            seconds(row["last_ms"]),
            "-" if first is None else f"{first:,.0f}",
            "-" if row["loop_s"] is None else f"{row['loop_s']:.2f}",
            str(row["lost"]),
            str(row["reordered"]),
            f"{row['rss_connected_mb']:.0f} → {row['rss_peak_mb']:.0f}",
        ]
        print("| " + " | ".join(cells) + " |")


def main() -> None:
    if sys.argv[1:2] == ["serve"]:
        kind, port, buffer, interval, timeout = sys.argv[2:7]
        serve(kind, int(port), int(buffer), float(interval), float(timeout))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fanout", action="store_true", help="no stalled clients: the fan-out scenario")
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--stalled", type=int, help="clients that never read (default 10; 0 with --fanout)")
    parser.add_argument("-n", type=int, help="messages broadcast (default 300; 100 with --fanout)")
    parser.add_argument("--size", type=int, help="bytes of padding per message (default 1000; 100 with --fanout)")
    parser.add_argument(
        "--buffer", type=int, help="outbound_buffer_size of the trio servers (default 64; 1024 with --fanout)"
    )
    parser.add_argument("--ping-interval", type=float, default=25)
    parser.add_argument("--ping-timeout", type=float, default=20)
    parser.add_argument("--timeout", type=float, default=60, help="seconds to wait for the readers")
    parser.add_argument(
        "--kinds",
        nargs="+",
        choices=KINDS,
        help=f"default: {' '.join(STALLED_KINDS)}; with --fanout: {' '.join(FANOUT_KINDS)}",
    )
    parser.add_argument("--json", type=Path, help="write the raw results here")
    args = parser.parse_args()
    if args.fanout and args.stalled:
        parser.error("--fanout has no stalled clients")
    defaults = {"stalled": 0, "n": 100, "size": 100, "buffer": 1024} if args.fanout else {}
    defaults = {"stalled": 10, "n": 300, "size": 1000, "buffer": 64, **defaults}
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.kinds = args.kinds or (FANOUT_KINDS if args.fanout else STALLED_KINDS)
    rows = []
    for kind in args.kinds:
        rows.append(attempt(kind, args))
        if args.json:  # after every kind, so that a run cut short keeps what it measured
            write_json(args.json, rows, args)
    if args.fanout:
        print_fanout(rows, args)
    else:
        print_stalled(rows, args)


def write_json(path: Path, rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    settings = {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()}
    output: dict[str, Any] = {"mode": "fanout" if args.fanout else "stalled", "settings": settings, "rows": rows}
    if args.fanout:
        output["ratios"] = fanout_ratios(rows)
    path.write_text(json.dumps(output, indent=1))


if __name__ == "__main__":
    main()
