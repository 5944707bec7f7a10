"""Websocket echo benchmark: trio_engineio against python-engineio on uvicorn and the raw stack.

Each server runs alone in its own process, pinned to CPU 0 where the machine has
two cores; a Node.js load generator (the `ws` package from tests/js), pinned to
CPU 1, keeps CLIENTS x INFLIGHT messages of SIZE bytes in flight. Reported per
server: messages echoed per second, and the server process's CPU time (user +
system, from /proc) per message. Ratios compare rows of this one run: msg/s
against python-engineio on uvicorn (higher is better) and against the raw ASGI
echo on hypercorn's trio worker (the ceiling of our stack). Never asserted in tests.

``--handshakes`` measures sessions instead of messages (``handshake.mjs``): CLIENTS loops, each
opening a websocket, waiting for the session to open, closing it (code 1000) and waiting for the
close to finish, again and again. For Engine.IO servers a session is open at the server's OPEN
packet; the raw ASGI echo never speaks first, so for D it is open at the upgrade (the 101
response): connect + upgrade + close, no message either way, a strict ceiling (an echo would add
a client frame that an Engine.IO handshake does not have). Reported per server: handshakes per
second, server CPU per handshake, p50/p99 of the whole cycle (connect to close finished), and
the ratios to D (E/D is the target: >= 0.9), A and E before.

``--configs 10x16x20 100x1x1024 ...`` runs those configs (CLIENTS x IN-FLIGHT x SIZE) as a matrix
run does, a subset for a short run (``all.py --quick``). The matrix's JSON is rewritten after
every config, so that a run cut short keeps the configs it measured.

Usage: python benchmarks/run.py [--seconds 3] [--matrix | --configs CxWxS ... | --clients 10 --inflight 16 --size 20]
                                [--polling | --handshakes | --knobs] [--steps]
                                [--kinds ...] [--baseline REV] [--json results.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _process import cpu_seconds, free_port, pinned, wait_listening

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ALL_KINDS = ["python-engineio-uvicorn", "raw-hypercorn-trio", "trio-engineio", "trio-engineio-stock"]
EXTRA_KINDS = ["trio-engineio-inline"]
# The websocket fast path does not apply to polling, so "stock" would repeat trio-engineio.
POLLING_KINDS = ["python-engineio-uvicorn", "raw-hypercorn-trio", "trio-engineio", "trio-engineio-inline"]
HANDSHAKE_KINDS = ["python-engineio-uvicorn", "raw-hypercorn-trio", "trio-engineio"]
"""The default kinds of ``--handshakes``; ``--kinds`` may name any other."""
BASELINE = "trio-engineio-baseline"
"""trio-engineio as it was at ``--baseline REV`` (that revision's package, same serve.py and load)."""
MODES = {"raw-hypercorn-trio": "raw"}
MATRIX = list(itertools.product((1, 10, 100), (1, 16), (20, 1024)))
SHORT = {
    "python-engineio-uvicorn": "A",
    "raw-hypercorn-trio": "D",
    "trio-engineio": "E",
    "trio-engineio-stock": "E stock",
    "trio-engineio-inline": "E inline",
    BASELINE: "E before",
}


def measure(
    kind: str,
    clients: int,
    inflight: int,
    size: int,
    args: argparse.Namespace,
    *,
    env: dict[str, str] | None = None,
    deflate: bool = False,
    polling: bool = False,
    handshakes: bool = False,
) -> dict[str, float]:
    if kind == BASELINE:
        # The baseline revision's package first on the path, ahead of the installed one.
        env = {**(env or {}), "PYTHONPATH": args.baseline_dir}
        kind = "trio-engineio"
    port = free_port()
    steps_file = Path(tempfile.gettempdir(), f"bench-steps-{port}")
    if args.steps:
        env = {**(env or {}), "BENCH_STEPS_FILE": str(steps_file)}
    server = subprocess.Popen(
        pinned([sys.executable, str(HERE / "serve.py"), kind, str(port)], 0),
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )
    scheme = "https" if env and "BENCH_CERTFILE" in env else "http"
    try:
        wait_listening(port, time.monotonic() + 20)
        if polling:
            command = ["node", str(HERE / "poll.mjs"), f"http://127.0.0.1:{port}", str(clients)]
            command += [str(args.seconds), str(args.warmup), str(size)]
        elif handshakes:
            command = ["node", str(HERE / "handshake.mjs"), f"http://127.0.0.1:{port}", MODES.get(kind, "engineio")]
            command += [str(clients), str(args.seconds), str(args.warmup)]
        else:
            command = ["node", str(HERE / "load.mjs"), f"{scheme}://127.0.0.1:{port}", MODES.get(kind, "engineio")]
            command += [str(clients), str(inflight), str(args.seconds), str(args.warmup), str(size)]
            command += ["1" if deflate else "0"]
        load = subprocess.Popen(
            pinned(command, 1),
            stdout=subprocess.PIPE,
            text=True,
        )
        assert load.stdout is not None
        json.loads(load.stdout.readline())  # {"event": "counting"}
        cpu_start = cpu_seconds(server.pid)
        steps_start = read_steps(steps_file) if args.steps else (0, 0)
        result = json.loads(load.stdout.readline())
        cpu_end = cpu_seconds(server.pid)
        steps_end = read_steps(steps_file) if args.steps else (0, 0)
        load.wait()
        unit = "handshake" if handshakes else "message"
        messages = int(result[unit + "s"])
        row = {
            unit + "s": messages,
            "rate": messages / args.seconds,
            f"cpu_us_per_{unit}": (cpu_end - cpu_start) * 1e6 / max(messages, 1),
        }
        if args.steps:
            row[f"steps_per_{unit}"] = (steps_end[0] - steps_start[0]) / max(messages, 1)
            row[f"spawns_per_{unit}"] = (steps_end[1] - steps_start[1]) / max(messages, 1)
        for key, prefix in (("latencies_ms", ""), ("open_ms", "open_")):
            latencies = sorted(result.get(key, []))
            if latencies:
                row[f"{prefix}p50_ms"] = latencies[len(latencies) // 2]
                row[f"{prefix}p99_ms"] = latencies[min(len(latencies) - 1, len(latencies) * 99 // 100)]
        return row
    finally:
        server.terminate()
        server.wait()
        steps_file.unlink(missing_ok=True)


def matrix_config(text: str) -> tuple[int, int, int]:
    """``CLIENTSxIN-FLIGHTxSIZE`` (``10x16x20``): one config of the matrix, from the command line."""
    try:
        clients, inflight, size = (int(part) for part in text.split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not CLIENTSxIN-FLIGHTxSIZE, e.g. 10x16x20") from None
    return clients, inflight, size


def read_steps(path: Path) -> tuple[int, int]:
    """Task steps and spawns so far, as the server last wrote them (every 50 ms); zeros for a
    server that does not run on Trio."""
    if not path.exists():
        return 0, 0
    steps, spawns = path.read_text().split()
    return int(steps), int(spawns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--warmup", type=float, default=1)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--inflight", type=int, default=16)
    parser.add_argument("--size", type=int, default=20)
    parser.add_argument("--matrix", action="store_true", help="every config: c=1/10/100 x 1/16 in flight x 20 B/1 KB")
    parser.add_argument(
        "--configs", nargs="+", type=matrix_config, metavar="CxWxS", help="these configs of the matrix, e.g. 10x16x20"
    )
    parser.add_argument(
        "--kinds", nargs="+", choices=ALL_KINDS + EXTRA_KINDS, help="default: A, D, E, E stock (A, D, E: --handshakes)"
    )
    parser.add_argument("--json", type=Path, help="write the raw results here")
    parser.add_argument("--knobs", action="store_true", help="deployer knobs, on trio-engineio at the chosen config")
    parser.add_argument("--steps", action="store_true", help="also count Trio task steps and spawns per message")
    parser.add_argument("--polling", action="store_true", help="long-polling echo at c=10 and c=100 (one in flight)")
    parser.add_argument(
        "--handshakes", action="store_true", help="websocket connect + open + close, CLIENTS loops (default 10)"
    )
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also run trio-engineio as it was at this git revision (before/after a change, in one run)",
    )
    args = parser.parse_args()
    if args.kinds is None:
        args.kinds = HANDSHAKE_KINDS if args.handshakes else ALL_KINDS
    with tempfile.TemporaryDirectory() as baseline_dir:
        if args.baseline:
            export_baseline(args.baseline, Path(baseline_dir))
            args.kinds = [*args.kinds, BASELINE]
        args.baseline_dir = baseline_dir
        run(args)


def export_baseline(revision: str, directory: Path) -> None:
    """Extract ``trio_engineio/`` as it was at ``revision`` into ``directory``."""
    archive = subprocess.run(
        ["git", "archive", revision, "trio_engineio"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(directory)], input=archive, check=True)


def run(args: argparse.Namespace) -> None:
    if args.knobs:
        run_knobs(args)
        return
    if args.polling:
        run_polling(args)
        return
    if args.handshakes:
        run_handshakes(args)
        return
    configs = args.configs or (MATRIX if args.matrix else [(args.clients, args.inflight, args.size)])
    rows = []
    for clients, inflight, size in configs:
        # Kinds interleaved within each config, so drift on the machine hits all alike.
        results = {kind: measure(kind, clients, inflight, size, args) for kind in args.kinds}
        rows.append({"clients": clients, "inflight": inflight, "size": size, "results": results})
        print_config(clients, inflight, size, results, args.seconds)
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1))
    print_summary(rows, args.kinds)


def run_polling(args: argparse.Namespace) -> None:
    """Long-polling echo: every message is a POST and a GET. Kinds interleaved per config."""
    kinds = [kind for kind in args.kinds if kind in POLLING_KINDS or kind == BASELINE]
    rows = []
    for clients in (10, 100):
        results = {kind: measure(kind, clients, 1, args.size, args, polling=True) for kind in kinds}
        rows.append({"clients": clients, "size": args.size, "results": results})
        ceiling = results.get("raw-hypercorn-trio")
        print(f"\nlong-polling echo, c={clients}, one in flight each, {args.size} B, {args.seconds} s", flush=True)
        print(
            f"{'server':26} {'msg/s':>8} {'CPU us/msg':>11} {'p50 ms':>8} {'p99 ms':>8} {'msg/s vs D':>11}"
            f" {'steps/msg':>10} {'spawns/msg':>11}"
        )
        for kind, row in results.items():
            vs_d = f"{row['rate'] / ceiling['rate']:.2f}" if ceiling and ceiling["rate"] else "-"
            print(
                f"{kind:26} {row['rate']:8.0f} {row['cpu_us_per_message']:11.1f} "
                f"{row.get('p50_ms', 0):8.1f} {row.get('p99_ms', 0):8.1f} {vs_d:>11}"
                f" {row.get('steps_per_message', 0):10.1f} {row.get('spawns_per_message', 0):11.2f}",
                flush=True,
            )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


def run_handshakes(args: argparse.Namespace) -> None:
    """Websocket handshakes: CLIENTS loops of connect, open, close. Kinds one after the other."""
    results = {kind: measure(kind, args.clients, 0, 0, args, handshakes=True) for kind in args.kinds}
    ceiling = results.get("raw-hypercorn-trio")
    print(f"\nwebsocket handshakes (connect, open, close), c={args.clients}, {args.seconds} s", flush=True)
    header = f"{'server':26} {'hs/s':>8} {'CPU us/hs':>10} {'p50 ms':>8} {'p99 ms':>8} {'open p50':>9}"
    header += f" {'hs/s vs D':>10}"
    print(header + (f" {'steps/hs':>9} {'spawns/hs':>10}" if args.steps else ""))
    for kind, row in results.items():
        vs_d = f"{row['rate'] / ceiling['rate']:.2f}" if ceiling and ceiling["rate"] else "-"
        line = (
            f"{kind:26} {row['rate']:8.0f} {row['cpu_us_per_handshake']:10.1f} {row.get('p50_ms', 0):8.2f}"
            f" {row.get('p99_ms', 0):8.2f} {row.get('open_p50_ms', 0):9.2f} {vs_d:>10}"
        )
        if args.steps:
            line += f" {row.get('steps_per_handshake', 0):9.1f} {row.get('spawns_per_handshake', 0):10.2f}"
        print(line, flush=True)
    rate = {kind: row["rate"] for kind, row in results.items()}
    ratios = {
        name: rate[top] / rate[bottom]
        for name, top, bottom in (
            ("E/D", "trio-engineio", "raw-hypercorn-trio"),
            ("E/A", "trio-engineio", "python-engineio-uvicorn"),
            ("E/E before", "trio-engineio", BASELINE),
        )
        if top in rate and bottom in rate and rate[bottom]
    }
    if ratios:
        print("handshakes/s " + ", ".join(f"{name} {value:.2f}" for name, value in ratios.items()), flush=True)
    if args.json:
        output = {"clients": args.clients, "seconds": args.seconds, "results": results, "ratios": ratios}
        args.json.write_text(json.dumps(output, indent=1))


def run_knobs(args: argparse.Namespace) -> None:
    """Server CPU per message under each deployer knob, against the defaults, in one run."""
    with tempfile.TemporaryDirectory() as directory:
        certfile, keyfile = Path(directory, "cert.pem"), Path(directory, "key.pem")
        openssl = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        subprocess.run(
            [*openssl, "-keyout", str(keyfile), "-out", str(certfile), "-days", "1", "-subj", "/CN=127.0.0.1"],
            check=True,
            capture_output=True,
        )
        variants: list[tuple[str, dict[str, str], bool]] = [
            ("defaults", {}, False),
            ("max_app_queue_size = 1", {"BENCH_MAX_APP_QUEUE_SIZE": "1"}, False),
            ("max_app_queue_size = 100", {"BENCH_MAX_APP_QUEUE_SIZE": "100"}, False),
            ("TLS in hypercorn", {"BENCH_CERTFILE": str(certfile), "BENCH_KEYFILE": str(keyfile)}, False),
            ("permessage-deflate", {}, True),
        ]
        rows = {
            name: measure("trio-engineio", args.clients, args.inflight, args.size, args, env=env, deflate=deflate)
            for name, env, deflate in variants
        }
    base = rows["defaults"]["cpu_us_per_message"]
    print(f"\ndeployer knobs, trio-engineio, c={args.clients} x {args.inflight} in flight, {args.size} B")
    print(f"{'variant':26} {'msg/s':>8} {'CPU us/msg':>11} {'CPU vs defaults':>16}")
    for name, row in rows.items():
        cpu = row["cpu_us_per_message"]
        print(f"{name:26} {row['rate']:8.0f} {cpu:11.1f} {cpu / base:15.2f}x", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


def print_config(clients: int, inflight: int, size: int, results: dict[str, dict[str, float]], seconds: float) -> None:
    reference = results.get("python-engineio-uvicorn")
    ceiling = results.get("raw-hypercorn-trio")
    print(f"\nwebsocket echo, c={clients} x {inflight} in flight, {size} B, {seconds} s", flush=True)
    print(f"{'server':26} {'msg/s':>8} {'CPU us/msg':>11} {'msg/s vs A':>11} {'msg/s vs D':>11}")
    for kind, row in results.items():
        vs_a = f"{row['rate'] / reference['rate']:.2f}" if reference and reference["rate"] else "-"
        vs_d = f"{row['rate'] / ceiling['rate']:.2f}" if ceiling and ceiling["rate"] else "-"
        print(f"{kind:26} {row['rate']:8.0f} {row['cpu_us_per_message']:11.1f} {vs_a:>11} {vs_d:>11}", flush=True)


def print_summary(rows: list[dict[str, object]], kinds: list[str]) -> None:
    """One line per config: msg/s of each kind, and E's ratios (markdown, for benchmarks/README.md)."""
    header = ["config", *(f"{SHORT[kind]} msg/s" for kind in kinds), "E/A", "E stock/A", "E/D", "E/E before"]
    print("\n| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        results: dict[str, dict[str, float]] = row["results"]  # type: ignore[assignment]
        rate = {kind: results[kind]["rate"] for kind in kinds}

        def ratio(top: str, bottom: str, rate: dict[str, float] = rate) -> str:
            if top in rate and bottom in rate and rate[bottom]:
                return f"{rate[top] / rate[bottom]:.2f}"
            return "-"

        size = "1 KB" if row["size"] == 1024 else f"{row['size']} B"
        cells = [f"c={row['clients']}, {row['inflight']} in flight, {size}", *(f"{rate[kind]:,.0f}" for kind in kinds)]
        cells += [
            ratio("trio-engineio", "python-engineio-uvicorn"),
            ratio("trio-engineio-stock", "python-engineio-uvicorn"),
            ratio("trio-engineio", "raw-hypercorn-trio"),
            ratio("trio-engineio", BASELINE),
        ]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
