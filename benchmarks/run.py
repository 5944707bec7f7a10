"""Websocket echo benchmark: server CPU per message, side by side with python-engineio.

Each server runs alone in its own process; a Node.js load generator (the `ws`
package from tests/js) keeps CLIENTS x INFLIGHT 20-byte messages in flight.
The figure is the server process's CPU time (user + system, from /proc) divided
by the messages echoed while counting, so the load generator's own speed does
not enter it. Results are reported as ratios, never asserted in tests.

Usage: python benchmarks/run.py [--seconds 5] [--clients 10] [--inflight 16] [--kinds ...]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ALL_KINDS = ["raw-hypercorn-trio", "python-engineio-uvicorn", "trio-engineio", "trio-engineio-inline"]
MODES = {"raw-hypercorn-trio": "raw"}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def wait_listening(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server on port {port} did not start")


def measure(kind: str, args: argparse.Namespace) -> dict[str, float]:
    port = free_port()
    server = subprocess.Popen([sys.executable, str(HERE / "serve.py"), kind, str(port)], cwd=ROOT)
    try:
        wait_listening(port, time.monotonic() + 20)
        load = subprocess.Popen(
            [
                "node",
                str(HERE / "load.mjs"),
                f"http://127.0.0.1:{port}",
                MODES.get(kind, "engineio"),
                str(args.clients),
                str(args.inflight),
                str(args.seconds),
                str(args.warmup),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert load.stdout is not None
        json.loads(load.stdout.readline())  # {"event": "counting"}
        cpu_start = cpu_seconds(server.pid)
        result = json.loads(load.stdout.readline())
        cpu_end = cpu_seconds(server.pid)
        load.wait()
        messages = int(result["messages"])
        return {
            "messages": messages,
            "rate": messages / args.seconds,
            "cpu_us_per_message": (cpu_end - cpu_start) * 1e6 / max(messages, 1),
        }
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--warmup", type=float, default=1)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--inflight", type=int, default=16)
    parser.add_argument("--kinds", nargs="+", default=ALL_KINDS, choices=ALL_KINDS)
    args = parser.parse_args()
    results = {kind: measure(kind, args) for kind in args.kinds}
    reference = results.get("python-engineio-uvicorn")
    floor = results.get("raw-hypercorn-trio")
    print(f"\nwebsocket echo, {args.clients} clients x {args.inflight} in flight, 20-byte messages, {args.seconds} s")
    print(f"{'server':28} {'msg/s':>9} {'CPU us/msg':>11} {'vs python-engineio':>19} {'over raw':>9}")
    for kind, row in results.items():
        ratio = f"{row['cpu_us_per_message'] / reference['cpu_us_per_message']:.2f}x" if reference else "-"
        over = f"{row['cpu_us_per_message'] - floor['cpu_us_per_message']:+.1f}" if floor else "-"
        print(f"{kind:28} {row['rate']:9.0f} {row['cpu_us_per_message']:11.1f} {ratio:>19} {over:>9}")


if __name__ == "__main__":
    main()
