"""Per-session cost at scale: what thousands of open websocket sessions cost the server, idle and heartbeat.

Each server (``serve.py``'s echo servers) runs alone in its own process, pinned to CPU 0 where the
machine has two cores, a fresh one for every kind and N; one Node.js process (``scale.mjs``, the
``ws`` package from tests/js, no permessage-deflate), pinned to CPU 1, opens the sessions
CONCURRENCY at a time and answers every PING with a PONG. Two scenarios:

1. Idle memory (``--sessions``, default 1,000, 5,000 and 10,000), at the default ping interval
   (25 s): the server's RSS (from /proc) before (idle, after a warm-up of a few sessions opened
   and closed) and after N sessions are open and ``--settle`` seconds have passed; KiB per
   session = (after - before) / sessions opened; and the server's CPU % over an idle window
   (``--idle-window``, 10 s) with the N sessions open: the heartbeat at 25 s and whatever else an
   idle session costs.
2. Heartbeat at scale (``--heartbeat-sessions``, default 10,000), with a ping interval of
   ``--heartbeat-interval`` (1 s; ``BENCH_PING_INTERVAL`` of serve.py, applied to both Engine.IO
   servers alike): over ``--window`` seconds (10) once all are open and settled, the PINGs each
   client saw (total, min and median per client, against window / interval expected), the
   server's CPU time per PING (its PONG included), and the E/A ratio of that. D has no heartbeat
   and is not run there. python-engineio sleeps the interval after each PONG before its next PING,
   so its clients see fewer PINGs than expected, the more so the slower the round trip; compare
   CPU per PING, not PING counts, across servers.

Servers (``--kinds``):

  python-engineio-uvicorn  A: python-engineio 4.15 on uvicorn (asyncio), the reference
  raw-hypercorn-trio       D: a bare ASGI websocket on hypercorn's trio worker, no Engine.IO: the
                           ceiling of our stack (its sessions are open at the upgrade, never ping)
  trio-engineio            E: trio_engineio on hypercorn's trio worker, defaults

Every session is a socket in the server and one in the Node process: this script raises its soft
RLIMIT_NOFILE to the hard limit (the children inherit it) and says where N cannot fit (file
descriptors, local ports); sessions that fail or time out to open are counted, not hidden.
``--open-deadline`` bounds the opening as a whole (a server saturated while opening 10,000
sessions with 1 s pings may never finish): when it passes, the sessions still opening are given
up, the rest are not tried, and the window is measured on the sessions that opened; the row says
so. The JSON is rewritten after every row, so that a run cut short keeps what it measured.

Not a test: nothing is asserted.

Usage: python benchmarks/scale.py [--sessions 1000 5000 10000] [--heartbeat-sessions 10000]
                                  [--heartbeat-interval 1] [--window 10] [--idle-window 10]
                                  [--open-deadline SECONDS] [--scenarios idle heartbeat]
                                  [--kinds ...] [--json FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _process import cpu_seconds, free_port, pinned, rss_mb, wait_listening
from broadcast import lines_of, next_json

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
KINDS = ["python-engineio-uvicorn", "raw-hypercorn-trio", "trio-engineio"]
SHORT = {"python-engineio-uvicorn": "A", "raw-hypercorn-trio": "D", "trio-engineio": "E"}
MODES = {"raw-hypercorn-trio": "raw"}
NO_HEARTBEAT = {"raw-hypercorn-trio"}
FD_MARGIN = 100
"""File descriptors a process needs besides its sessions (interpreter, pipes, listening socket)."""


# -- limits of the machine --------------------------------------------------------------------------


def raise_fd_limit() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard limit (children inherit it); the limits after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def local_ports() -> int:
    """How many local ports the kernel hands out to connecting sockets (one per client session)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    except (OSError, ValueError):
        return 28232  # Linux's default range
    return int(high) - int(low) + 1


def limits() -> dict[str, Any]:
    soft, hard = raise_fd_limit()
    return {"fd_soft": soft, "fd_hard": hard, "local_ports": local_ports(), "cpus": os.cpu_count()}


def capacity_problems(sessions: int, machine: dict[str, Any]) -> list[str]:
    """Why this machine cannot hold ``sessions`` connections (empty when it can)."""
    problems = []
    soft = machine["fd_soft"]
    if soft != resource.RLIM_INFINITY and sessions + FD_MARGIN > soft:
        problems.append(
            f"{sessions} sessions need ~{sessions + FD_MARGIN} file descriptors per process; "
            f"RLIMIT_NOFILE is {soft} (hard {machine['fd_hard']}): raise it (ulimit -Hn, limits.conf)"
        )
    if sessions > machine["local_ports"]:
        problems.append(
            f"{sessions} sessions need as many local ports; ip_local_port_range has {machine['local_ports']}"
        )
    return problems


# -- the server and the clients ---------------------------------------------------------------------


@contextlib.contextmanager
def server(kind: str, env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """``serve.py KIND`` on a free port, pinned to CPU 0, with a listen backlog for the opening burst."""
    port = free_port()
    process = subprocess.Popen(
        pinned([sys.executable, str(HERE / "serve.py"), kind, str(port)], 0),
        cwd=ROOT,
        env={**os.environ, "BENCH_BACKLOG": "4096", **env},
    )
    try:
        wait_listening(port, time.monotonic() + 20)
        yield process, port
    finally:
        process.terminate()
        process.wait()


class Clients:
    """One ``scale.mjs`` process holding ``sessions`` sessions to the server on ``port``."""

    def __init__(self, kind: str, port: int, sessions: int, args: argparse.Namespace) -> None:
        command = ["node", str(HERE / "scale.mjs"), f"http://127.0.0.1:{port}", MODES.get(kind, "engineio")]
        command += [str(sessions), str(args.concurrency), str(args.open_timeout), str(args.open_deadline or 0)]
        self.process = subprocess.Popen(pinned(command, 1), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.lines = lines_of(self.process.stdout)
        # Worst case: every round of CONCURRENCY openings waits out the timeout (or scale.mjs gives
        # up at the open deadline).
        self.open_deadline = -(-sessions // args.concurrency) * args.open_timeout + 30
        if args.open_deadline:
            self.open_deadline = min(self.open_deadline, args.open_deadline + 30)

    def expect(self, event: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = next_json(self.lines, 1)
            if result is not None:
                if result.get("event") != event:
                    raise RuntimeError(f"expected {event!r} from scale.mjs, got {result}")
                return result
            if self.process.poll() is not None and self.lines.empty():
                raise RuntimeError(f"scale.mjs exited ({self.process.returncode}) before {event!r}")
        raise RuntimeError(f"no {event!r} from scale.mjs within {timeout:.0f} s")

    def opened(self) -> dict[str, Any]:
        return self.expect("opened", self.open_deadline)

    def command(self, name: str, event: str, timeout: float = 30) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(name + "\n")
        self.process.stdin.flush()
        return self.expect(event, timeout)

    def close(self) -> None:
        """Close every session from the client side, as clients leaving (close frames)."""
        with contextlib.suppress(RuntimeError, OSError):
            self.command("close", "closed", 10)
        self.kill()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.process.pid)


def server_alive(process: subprocess.Popen[bytes], kind: str) -> None:
    if process.poll() is not None:
        raise RuntimeError(f"the {kind} server exited ({process.returncode})")


# -- the scenarios ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """What one measured window saw: the clients' counters at its start and end, and CPU times."""

    marked: dict[str, Any]
    report: dict[str, Any]
    server_cpu_s: float
    client_cpu_s: float
    elapsed_s: float


def measure_window(process: subprocess.Popen[bytes], clients: Clients, seconds: float) -> Window:
    """Mark the clients' counters, let ``seconds`` pass, and read them and both CPU times again."""
    marked = clients.command("mark", "marked")
    cpu_start, client_start, start = cpu_seconds(process.pid), clients.cpu_seconds(), time.perf_counter()
    time.sleep(seconds)
    cpu_end, client_end, end = cpu_seconds(process.pid), clients.cpu_seconds(), time.perf_counter()
    report = clients.command("report", "report")
    return Window(marked, report, cpu_end - cpu_start, client_end - client_start, end - start)


def measure_idle(kind: str, sessions: int, args: argparse.Namespace) -> dict[str, Any]:
    """RSS before and after ``sessions`` idle sessions, and the server's CPU over an idle window."""
    with server(kind, {}) as (process, port):
        warmup = Clients(kind, port, args.warmup_sessions, args)
        try:
            warmed = warmup.opened()
            warmup.close()
        finally:
            warmup.kill()
        time.sleep(args.settle)
        server_alive(process, kind)
        rss_before = rss_mb(process.pid)
        clients = Clients(kind, port, sessions, args)
        try:
            opened = clients.opened()
            time.sleep(args.settle)
            server_alive(process, kind)
            rss_after = rss_mb(process.pid)
            window = measure_window(process, clients, args.idle_window)
            rss_end = rss_mb(process.pid)
        finally:
            clients.kill()
    count = opened["opened"]
    return {
        "kind": kind,
        "sessions": sessions,
        **{key: opened[key] for key in OPENING_KEYS},
        "warmup_opened": warmed["opened"],
        "rss_before_mb": rss_before,
        "rss_after_mb": rss_after,
        "rss_after_window_mb": rss_end,
        "kib_per_session": (rss_after - rss_before) * 1024 / count if count else None,
        "idle_window_s": window.elapsed_s,
        "idle_cpu_s": window.server_cpu_s,
        "idle_cpu_percent": 100 * window.server_cpu_s / window.elapsed_s,
        "client_cpu_percent": 100 * window.client_cpu_s / window.elapsed_s,
        "idle_pings": window.report["pings_total"],
        "closed_in_window": window.report["closed"],
    }


def measure_heartbeat(kind: str, sessions: int, args: argparse.Namespace) -> dict[str, Any]:
    """PINGs seen by each client over a window at a short ping interval, and the server's CPU per PING."""
    env = {"BENCH_PING_INTERVAL": f"{args.heartbeat_interval:g}", "BENCH_PING_TIMEOUT": f"{args.heartbeat_timeout:g}"}
    with server(kind, env) as (process, port):
        clients = Clients(kind, port, sessions, args)
        try:
            opened = clients.opened()
            time.sleep(args.settle)
            server_alive(process, kind)
            window = measure_window(process, clients, args.window)
            rss = rss_mb(process.pid)
        finally:
            clients.kill()
    cpu, report, marked = window.server_cpu_s, window.report, window.marked
    pings = report["pings_total"]
    return {
        "kind": kind,
        "sessions": sessions,
        **{key: opened[key] for key in OPENING_KEYS},
        "interval_s": args.heartbeat_interval,
        "window_s": window.elapsed_s,
        "expected_per_client": args.window / args.heartbeat_interval,
        "closed_before_window": marked["closed"],
        "closed_by_end": report["closed"],
        "pings_total": pings,
        "pings_min": report["pings_min"],
        "pings_median": report["pings_median"],
        "pings_max": report["pings_max"],
        "server_cpu_s": cpu,
        "server_cpu_percent": 100 * cpu / window.elapsed_s,
        "client_cpu_percent": 100 * window.client_cpu_s / window.elapsed_s,
        "cpu_s_per_ping": cpu / pings if pings else None,
        "rss_mb": rss,
    }


OPENING_KEYS = ("opened", "failed", "timed_out", "deadline_hit", "cut_at_deadline", "not_attempted", "errors", "open_s")
"""What scale.mjs says about the opening, kept in every row."""

Measure = Callable[[str, int, argparse.Namespace], dict[str, Any]]


def attempt(kind: str, sessions: int, measure: Measure, args: argparse.Namespace) -> dict[str, Any]:
    """One measurement; a failure (a process gone, nothing opened) is a row saying so, not the end of the run."""
    print(f"  {kind}, {sessions} sessions ...", file=sys.stderr, flush=True)
    try:
        return measure(kind, sessions, args)
    except RuntimeError as error:
        return {"kind": kind, "sessions": sessions, "error": str(error)}


# -- the report -------------------------------------------------------------------------------------


def number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def ratio(top: float | None, bottom: float | None) -> str:
    return f"{top / bottom:.2f}" if top is not None and bottom else "-"


def opened_cell(row: dict[str, Any]) -> str:
    cell = f"{row['opened']:,}/{row['sessions']:,}"
    if row["failed"] or row["timed_out"]:
        reasons = sorted(row["errors"].items(), key=lambda item: -item[1])
        cell += f" ({row['failed']} failed, {row['timed_out']} timed out; {', '.join(f'{k} x{n}' for k, n in reasons)})"
    if row["deadline_hit"]:
        cell += (
            f" (open deadline at {row['open_s']:.0f} s: {row['cut_at_deadline']} given up while opening, "
            f"{row['not_attempted']:,} not tried)"
        )
    return cell


def print_idle(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(
        f"\nidle sessions: RSS before (warm, idle) → after N websocket sessions, +{args.settle:g} s; "
        f"server CPU over {args.idle_window:g} s idle, default ping interval (25 s)\n"
    )
    header = ["N", "server", "opened", "open (s)", "RSS before → after (MB)", "KiB/session", "vs A", "vs D"]
    header += ["idle CPU %", "pings in window"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for sessions in args.sessions:
        group = {row["kind"]: row for row in rows if row["sessions"] == sessions}
        kib = {kind: row.get("kib_per_session") for kind, row in group.items()}
        for kind, row in group.items():
            name = f"{SHORT[kind]} {kind}"
            if "error" in row:
                print(f"| {sessions:,} | {name} | error: {row['error']} |" + " |" * (len(header) - 3))
                continue
            cells = [
                f"{sessions:,}",
                name,
                opened_cell(row),
                number(row["open_s"]),
                f"{row['rss_before_mb']:.1f} → {row['rss_after_mb']:.1f}",
                number(row["kib_per_session"]),
                ratio(row["kib_per_session"], kib.get("python-engineio-uvicorn")),
                ratio(row["kib_per_session"], kib.get("raw-hypercorn-trio")),
                number(row["idle_cpu_percent"]),
                f"{row['idle_pings']:,}",
            ]
            print("| " + " | ".join(cells) + " |")


def print_heartbeat(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    expected = args.window / args.heartbeat_interval
    print(
        f"\nheartbeat: {args.heartbeat_sessions:,} sessions, ping interval {args.heartbeat_interval:g} s, "
        f"PINGs counted over {args.window:g} s (expected {expected:g} per client)\n"
    )
    header = ["server", "opened", "closed by end", "PINGs total", "per client min / median", "server CPU %"]
    header += ["server CPU µs/PING", "client CPU %"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    per_ping: dict[str, float | None] = {}
    for row in rows:
        name = f"{SHORT[row['kind']]} {row['kind']}"
        if "error" in row:
            print(f"| {name} | error: {row['error']} |" + " |" * (len(header) - 2))
            continue
        per_ping[row["kind"]] = row["cpu_s_per_ping"]
        cells = [
            name,
            opened_cell(row),
            str(row["closed_by_end"]),
            f"{row['pings_total']:,}",
            f"{number(row['pings_min'], 0)} / {number(row['pings_median'], 0)}",
            number(row["server_cpu_percent"]),
            number(None if row["cpu_s_per_ping"] is None else row["cpu_s_per_ping"] * 1e6),
            number(row["client_cpu_percent"]),
        ]
        print("| " + " | ".join(cells) + " |")
    top, bottom = per_ping.get("trio-engineio"), per_ping.get("python-engineio-uvicorn")
    print(f"\nserver CPU per PING, E/A: {ratio(top, bottom)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, nargs="+", default=[1000, 5000, 10000], help="N of the idle scenario")
    parser.add_argument("--heartbeat-sessions", type=int, default=10000)
    parser.add_argument("--heartbeat-interval", type=float, default=1, help="ping interval (s) of the heartbeat")
    parser.add_argument("--heartbeat-timeout", type=float, default=20, help="ping timeout (s) of the heartbeat")
    parser.add_argument("--window", type=float, default=10, help="seconds the heartbeat PINGs are counted")
    parser.add_argument("--idle-window", type=float, default=10, help="seconds the idle CPU is measured")
    parser.add_argument("--settle", type=float, default=2, help="seconds to wait once all sessions are open")
    parser.add_argument("--warmup-sessions", type=int, default=20, help="opened and closed before RSS 'before'")
    parser.add_argument("--concurrency", type=int, default=200, help="sessions opening at once")
    parser.add_argument("--open-timeout", type=float, default=30, help="seconds each session has to open")
    parser.add_argument(
        "--open-deadline", type=float, help="seconds all the sessions of one row have to open (default: no bound)"
    )
    parser.add_argument("--scenarios", nargs="+", default=["idle", "heartbeat"], choices=["idle", "heartbeat"])
    parser.add_argument("--kinds", nargs="+", default=KINDS, choices=KINDS)
    parser.add_argument("--json", type=Path, help="write the raw results here")
    args = parser.parse_args()
    machine = limits()
    print(
        f"file descriptors: soft {machine['fd_soft']}, hard {machine['fd_hard']}; "
        f"local ports: {machine['local_ports']}; CPUs: {machine['cpus']}",
        file=sys.stderr,
    )
    wanted = [*(args.sessions if "idle" in args.scenarios else [])]
    wanted += [args.heartbeat_sessions] if "heartbeat" in args.scenarios else []
    problems = capacity_problems(max(wanted, default=0), machine)
    for problem in problems:
        print(f"WARNING: this machine cannot hold the sessions: {problem}", file=sys.stderr)
    results: dict[str, Any] = {"machine": machine, "capacity_problems": problems, "idle": [], "heartbeat": []}
    if "idle" in args.scenarios:
        for sessions in args.sessions:
            # Kinds interleaved within each N, so drift on the machine hits all alike.
            for kind in args.kinds:
                results["idle"].append(attempt(kind, sessions, measure_idle, args))
                write_json(results, args)
    if "heartbeat" in args.scenarios:
        for kind in args.kinds:
            if kind not in NO_HEARTBEAT:
                results["heartbeat"].append(attempt(kind, args.heartbeat_sessions, measure_heartbeat, args))
                write_json(results, args)
    write_json(results, args)  # also when no row was measured
    if problems:
        print("\n**This machine cannot hold the sessions asked for:** " + "; ".join(problems))
    if results["idle"]:
        print_idle(results["idle"], args)
    if results["heartbeat"]:
        print_heartbeat(results["heartbeat"], args)


def write_json(results: dict[str, Any], args: argparse.Namespace) -> None:
    if args.json:
        settings = {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()}
        args.json.write_text(json.dumps({"args": settings, **results}, indent=1))


if __name__ == "__main__":
    main()
