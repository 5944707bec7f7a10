"""Socket.IO on both stacks: acknowledged echo latency, and a broadcast to 1,000 clients.

(Named ``sio.py``: a ``benchmarks/socketio.py`` would shadow python-socketio for the scripts here.)

One server process (pinned to CPU 0 where the machine has two cores) holds CLIENTS Socket.IO
websocket clients, all in one Node.js process (``sio.mjs``, socket.io-client v4 from
tests/js, pinned to CPU 1). Client 0 first makes ECHOES sequential acknowledged ``echo`` calls
(round-trip latency, p50/p99), then asks the server to broadcast N ``b`` events of SIZE bytes to
everyone; reported: the time from that request until the last client has all N, in order, and
the server's RSS. Not a test: nothing is asserted.

Servers (``--kinds``):

  trio-socketio            trio_engineio.socketio.AsyncServer under hypercorn's trio worker
                           (broadcasts never wait on a client; see docs/socketio.rst)
  python-socketio-uvicorn  python-socketio's AsyncServer on python-engineio, uvicorn

Usage: python benchmarks/sio.py [--clients 1000] [--echoes 1000] [-n 100] [--size 100]
                                     [--kinds ...] [--timeout 60] [--json PATH]
       python benchmarks/sio.py serve KIND PORT  (internal)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _process import free_port, pinned, rss_mb, wait_listening
from broadcast import lines_of, next_json

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
KINDS = ["trio-socketio", "python-socketio-uvicorn"]


def add_handlers(sio: Any) -> None:
    """The benchmark's two events, the same on both servers."""

    async def echo(sid: str, data: Any) -> Any:
        return data

    async def go(sid: str, request: dict[str, int]) -> None:
        pad = "x" * request["size"]
        for i in range(request["n"]):
            await sio.emit("b", {"i": i, "p": pad})

    sio.on("echo", echo)
    sio.on("go", go)


def serve(kind: str, port: int) -> None:
    if kind == "python-socketio-uvicorn":
        import socketio
        import uvicorn

        sio = socketio.AsyncServer(async_mode="asgi")
        add_handlers(sio)
        uvicorn.run(socketio.ASGIApp(sio), host="127.0.0.1", port=port, log_level="error", backlog=2048)
        return
    import trio
    from hypercorn.config import Config
    from hypercorn.trio import serve as hypercorn_serve

    from trio_engineio import socketio as trio_socketio

    trio_sio = trio_socketio.AsyncServer()
    add_handlers(trio_sio)
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.backlog = 2048
    config.accesslog = None
    config.errorlog = None
    app: Any = trio_socketio.ASGIApp(trio_sio)
    trio.run(hypercorn_serve, app, config)


def measure(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    server = subprocess.Popen(pinned([sys.executable, __file__, "serve", kind, str(port)], 0), cwd=ROOT)
    node: subprocess.Popen[str] | None = None
    try:
        wait_listening(port, time.monotonic() + 20)
        command = ["node", str(HERE / "sio.mjs"), f"http://127.0.0.1:{port}"]
        command += [str(value) for value in (args.clients, args.echoes, args.n, args.size, args.timeout)]
        node = subprocess.Popen(pinned(command, 1), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert node.stdin is not None
        node_lines = lines_of(node.stdout)
        if next_json(node_lines, 120) != {"event": "connected"}:
            raise RuntimeError("the Node clients did not connect")
        rss_connected = rss_mb(server.pid)
        node.stdin.write("go\n")
        node.stdin.flush()
        peak = rss_connected
        result: dict[str, Any] | None = None
        deadline = time.monotonic() + args.timeout + 30
        while result is None and time.monotonic() < deadline:
            peak = max(peak, rss_mb(server.pid))
            result = next_json(node_lines, 0.1)
        if result is None:
            raise RuntimeError("no result from the Node clients")
        return {"kind": kind, **result, "rss_connected_mb": rss_connected, "rss_peak_mb": max(peak, rss_mb(server.pid))}
    finally:
        if node is not None:
            node.kill()
            node.wait()
        server.terminate()
        server.wait()


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def main() -> None:
    if sys.argv[1:2] == ["serve"]:
        serve(sys.argv[2], int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--echoes", type=int, default=1000, help="sequential acknowledged echo calls")
    parser.add_argument("-n", type=int, default=100, help="events broadcast")
    parser.add_argument("--size", type=int, default=100, help="bytes of padding per event")
    parser.add_argument("--timeout", type=float, default=60, help="seconds to wait for the clients")
    parser.add_argument("--kinds", nargs="+", default=KINDS, choices=KINDS)
    parser.add_argument("--json", type=Path, help="write the raw results here")
    args = parser.parse_args()
    rows = [measure(kind, args) for kind in args.kinds]
    print(
        f"\nSocket.IO: {args.echoes} acknowledged echoes, then {args.n} x {args.size} B broadcast "
        f"to {args.clients} websocket clients\n"
    )
    print(
        "| server | echo p50 (ms) | echo p99 (ms) | all complete | last client (ms) | p50 client (ms) "
        "| lost | reordered | RSS connected → peak (MB) |"
    )
    print("|" + "---|" * 9)
    for row in rows:
        cells = [
            row["kind"],
            ms(row["echo_p50_ms"]),
            ms(row["echo_p99_ms"]),
            f"{row['complete']}/{row['clients']}",
            ms(row["last_ms"]),
            ms(row["p50_ms"]),
            str(row["lost"]),
            str(row["reordered"]),
            f"{row['rss_connected_mb']:.0f} → {row['rss_peak_mb']:.0f}",
        ]
        print("| " + " | ".join(cells) + " |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
