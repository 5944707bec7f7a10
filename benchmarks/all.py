"""Every scenario of the per-session cost issue (#12) in one run, against A and D, and one table of its targets.

Each scenario is one of the existing scripts, run as a subprocess with ``--json`` into a results
directory; this script reads the JSON back and prints one table: one row per target of the
issue, with the target, what was measured and whether it is met. Nothing is measured here.

Scenarios (``--only``), in the order they run:

  websocket   run.py --matrix: websocket echo, A, D, E and E stock, 12 configs
  polling     run.py --polling: long-polling echo at c=10 and c=100, A, D and E
  handshakes  run.py --handshakes: websocket connect, OPEN, close, A, D and E
  memory      scale.py --scenarios idle: 1,000, 5,000 and 10,000 idle sessions, A, D and E
              (RSS per session, and the idle CPU at the default 25 s pings)
  heartbeat   scale.py --scenarios heartbeat: 10,000 sessions at 1 s pings, A and E
  fanout      broadcast.py --fanout: one message to each of 1,000 sessions in a loop, A, D, E
              (``await send``) and E with ``send_nowait``

A = python-engineio on uvicorn, D = a raw ASGI app on hypercorn's trio worker (the ceiling of our
stack), E = trio_engineio on hypercorn's trio worker, E stock = E with the hypercorn fast path off.

Each scenario has a time limit, and the run a time budget (``--budget``, 35 minutes; 6 with
``--quick``). A scenario that fails, or is stopped at its limit (its whole process group: the
script, its servers and its Node clients), is reported with the reason, its targets as not
met; what it measured before that is kept (the scripts rewrite their JSON as they go) and read.
Opening 10,000 sessions with 1 s pings can saturate the server's core: the heartbeat gives the
opening 180 s (``scale.py --open-deadline``) and reports how many opened.

Results go to ``benchmarks/results/YYYY-MM-DD-HHMM/`` (``--out``): per scenario its JSON and
its output (``SCENARIO.json``, ``SCENARIO.log``), and ``summary.json`` and ``summary.md`` (the
table, the commands, how each scenario ended).

``--quick`` is a smoke run of a minute or two: 1 s windows, two websocket configs, 1,000
sessions only, 20 fan-out rounds. Its figures are too short to judge a target by.

Usage: python benchmarks/all.py [--quick] [--only SCENARIO ...] [--out DIR] [--budget MINUTES]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
A, D, E, E_STOCK = "python-engineio-uvicorn", "raw-hypercorn-trio", "trio-engineio", "trio-engineio-stock"
FANOUT_E, FANOUT_E_NOWAIT = "trio-engineio-send", "trio-engineio-nowait"
QUICK_CONFIGS = ["1x1x20", "10x16x20"]
"""The websocket configs of ``--quick``: one message in flight, and pipelined."""
MATRIX_CONFIGS = 12
HEARTBEAT_OPEN_DEADLINE_S = 180
"""How long the heartbeat's 10,000 sessions have to open (python-engineio took 84 s on the 2-core
machine; trio_engineio did not finish in 10 minutes before)."""
STOP_GRACE_S = 5
"""How long a scenario stopped at its limit has to exit after SIGTERM, before SIGKILL."""
LEAST_WORTH_STARTING_S = 20
"""A scenario is not started with less than this left of the run's budget."""


# -- the scenarios ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """One script run: its arguments (``--json`` is added) and its time limit, for a full or quick run."""

    name: str
    script: str
    arguments: list[str]
    time_limit_s: float


def scenarios(quick: bool) -> list[Scenario]:
    short_window = ["--seconds", "1", "--warmup", "0.5"] if quick else []
    sessions = ["1000"] if quick else ["1000", "5000", "10000"]
    return [
        Scenario(
            "websocket",
            "run.py",
            ["--configs", *QUICK_CONFIGS, *short_window] if quick else ["--matrix"],
            90 if quick else 9 * 60,
        ),
        Scenario("polling", "run.py", ["--polling", "--kinds", A, D, E, *short_window], 60 if quick else 2 * 60),
        Scenario("handshakes", "run.py", ["--handshakes", *short_window], 30 if quick else 90),
        Scenario(
            "memory",
            "scale.py",
            ["--scenarios", "idle", "--sessions", *sessions, "--open-deadline", "120"]
            + (["--idle-window", "3", "--settle", "1"] if quick else []),
            90 if quick else 9 * 60,
        ),
        Scenario(
            "heartbeat",
            "scale.py",
            ["--scenarios", "heartbeat", "--heartbeat-sessions", sessions[-1]]
            + ["--open-deadline", str(60 if quick else HEARTBEAT_OPEN_DEADLINE_S)]
            + (["--window", "3", "--settle", "1"] if quick else []),
            90 if quick else 8 * 60,
        ),
        Scenario("fanout", "broadcast.py", ["--fanout", *(["-n", "20"] if quick else [])], 90 if quick else 4 * 60),
    ]


SCENARIO_NAMES = [scenario.name for scenario in scenarios(quick=False)]


@dataclass
class Outcome:
    """How one scenario's run ended, and what it wrote."""

    name: str
    command: str
    status: str = "not run"
    """"ok", "failed", "stopped at its time limit", "interrupted" or "not run"."""
    reason: str = ""
    duration_s: float = 0.0
    data: Any = None
    """Its JSON, read back (partial where it was stopped); None where there is none."""


def run_scenario(scenario: Scenario, out: Path, time_limit_s: float) -> Outcome:
    """Run one script in its own process group, so that stopping it stops its servers and clients too.
    Ctrl-C stops it the same way (its status says so), and the caller runs no further scenario."""
    json_path, log_path = out / f"{scenario.name}.json", out / f"{scenario.name}.log"
    command = [sys.executable, str(HERE / scenario.script), *scenario.arguments, "--json", str(json_path)]
    outcome = Outcome(scenario.name, shlex.join(["python", f"benchmarks/{scenario.script}", *command[2:]]))
    print(f"\n== {scenario.name}: {outcome.command} (limit {time_limit_s:.0f} s)", file=sys.stderr, flush=True)
    start = time.monotonic()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )
        try:
            returncode = process.wait(timeout=time_limit_s)
            outcome.status = "ok" if returncode == 0 else "failed"
            if returncode:
                outcome.reason = f"exit code {returncode}: {last_line(log_path)}"
        except subprocess.TimeoutExpired:
            outcome.status = "stopped at its time limit"
            outcome.reason = f"still running after {time_limit_s:.0f} s; stopped, with its servers and clients"
        except KeyboardInterrupt:
            outcome.status = "interrupted"
            outcome.reason = "interrupted (Ctrl-C)"
        finally:
            stop_group(process)
            outcome.duration_s = time.monotonic() - start
            outcome.data = read_json(json_path)
            if outcome.status != "ok" and outcome.data is not None:
                outcome.reason += " (what it measured before is read)"
            detail = f": {outcome.reason}" if outcome.reason else ""
            print(f"   {outcome.status} in {outcome.duration_s:.0f} s{detail}", file=sys.stderr, flush=True)
    return outcome


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """Stop whatever is left of the script's process group: SIGTERM, then SIGKILL after a grace period.
    Also after a clean exit, so that no server or Node process outlives its scenario."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_GRACE_S)
        time.sleep(0.2)  # the servers the script started exit on SIGTERM too; give them a moment
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def last_line(path: Path) -> str:
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no output"


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


# -- the targets ----------------------------------------------------------------------------------------


class NotMeasured(Exception):
    """What a target needs is not in the results (a server that failed, a row missing)."""


Evaluation = tuple[str, bool | None]
"""What was measured, and whether the target is met (None: reported, no threshold)."""


@dataclass(frozen=True)
class Target:
    """One row of the table: a target of the issue, read from one scenario's results."""

    source: str
    text: str
    evaluate: Callable[[Any], Evaluation]


@dataclass
class Verdict:
    source: str
    target: str
    measured: str
    met: bool | None
    notes: list[str] = field(default_factory=list)


def ratio_text(top: float, bottom: float) -> str:
    return f"{top / bottom:.2f}"


def config_name(row: dict[str, Any]) -> str:
    size = "1 KB" if row["size"] == 1024 else f"{row['size']} B"
    return f"c={row['clients']}, {row['inflight']} in flight, {size}"


def websocket_worst(kind: str, expected_configs: int) -> Callable[[Any], Evaluation]:
    def evaluate(rows: list[dict[str, Any]]) -> Evaluation:
        ratios = [(row["results"][kind]["rate"] / row["results"][D]["rate"], config_name(row)) for row in rows]
        if not ratios:
            raise NotMeasured("no config measured")
        lowest, where = min(ratios)
        meeting = sum(value >= 0.95 for value, _ in ratios)
        measured = f"min {lowest:.2f} at {where}; {meeting} of {len(ratios)} configs >= 0.95"
        if len(ratios) < expected_configs:
            measured += f" (only {len(ratios)} of {expected_configs} configs measured)"
        return measured, len(ratios) == expected_configs and meeting == len(ratios)

    return evaluate


def polling_results(rows: list[dict[str, Any]], clients: int) -> dict[str, dict[str, float]]:
    for row in rows:
        if row["clients"] == clients:
            results: dict[str, dict[str, float]] = row["results"]
            return results
    raise NotMeasured(f"no row at c={clients}")


def polling_rate(clients: int) -> Callable[[Any], Evaluation]:
    def evaluate(rows: list[dict[str, Any]]) -> Evaluation:
        results = polling_results(rows, clients)
        e, d = results[E]["rate"], results[D]["rate"]
        reference = f", A {results[A]['rate']:,.0f}" if A in results else ""
        return f"{ratio_text(e, d)} (E {e:,.0f} msg/s, D {d:,.0f}{reference})", e / d >= 0.95

    return evaluate


def polling_p99(rows: list[dict[str, Any]]) -> Evaluation:
    results = polling_results(rows, 100)
    e, d = results[E]["p99_ms"], results[D]["p99_ms"]
    reference = f", A {results[A]['p99_ms']:,.1f} ms" if A in results else ""
    return f"E {e:,.1f} ms, D {d:,.1f} ms{reference}", e <= d


def handshakes(data: dict[str, Any]) -> Evaluation:
    results = data["results"]
    e, d = results[E]["rate"], results[D]["rate"]
    reference = f", A {results[A]['rate']:,.0f}" if A in results else ""
    return f"{ratio_text(e, d)} (E {e:,.0f} hs/s, D {d:,.0f}{reference})", e / d >= 0.9


def scale_row(rows: list[dict[str, Any]], kind: str, sessions: int | None = None) -> dict[str, Any]:
    """The row of ``kind`` (at ``sessions``); NotMeasured where it is missing or says why it failed."""
    for row in rows:
        if row["kind"] == kind and sessions in (None, row["sessions"]):
            if "error" in row:
                raise NotMeasured(f"{kind}: {row['error']}")
            return row
    raise NotMeasured(f"no {kind} row" + (f" at {sessions:,} sessions" if sessions else ""))


def not_all_opened(row: dict[str, Any], name: str) -> str:
    return "" if row["opened"] == row["sessions"] else f"; {name} opened only {row['opened']:,}/{row['sessions']:,}"


def memory(sessions: int) -> Callable[[Any], Evaluation]:
    def evaluate(data: dict[str, Any]) -> Evaluation:
        e, d = (scale_row(data["idle"], kind, sessions) for kind in (E, D))
        e_kib, d_kib = e["kib_per_session"], d["kib_per_session"]
        measured = f"E {e_kib:.1f} KiB, D {d_kib:.1f} (D {e_kib - d_kib:+.1f})"
        try:
            a_kib = scale_row(data["idle"], A, sessions)["kib_per_session"]
            measured += f"; A {a_kib:.1f} (E/A {ratio_text(e_kib, a_kib)})"
        except NotMeasured as missing:
            measured += f"; {missing}"
        partial = not_all_opened(e, "E") + not_all_opened(d, "D")
        return measured + partial, e_kib <= d_kib + 5 and not partial

    return evaluate


def idle_cpu(sessions: int) -> Callable[[Any], Evaluation]:
    def evaluate(data: dict[str, Any]) -> Evaluation:
        e = scale_row(data["idle"], E, sessions)
        others = []
        for name, kind in (("A", A), ("D", D)):
            try:
                others.append(f"{name} {scale_row(data['idle'], kind, sessions)['idle_cpu_percent']:.1f} %")
            except NotMeasured as missing:
                others.append(str(missing))
        measured = f"E {e['idle_cpu_percent']:.1f} % ({', '.join(others)})" + not_all_opened(e, "E")
        return measured, e["idle_cpu_percent"] < 2 and e["opened"] == e["sessions"]

    return evaluate


def opening(row: dict[str, Any]) -> str:
    text = f"{row['opened']:,}/{row['sessions']:,} in {row['open_s']:.0f} s"
    if row.get("deadline_hit"):
        text += f" (open deadline: {row['cut_at_deadline']} given up, {row['not_attempted']:,} not tried)"
    if row["failed"] or row["timed_out"]:
        text += f" ({row['failed']} failed, {row['timed_out']} timed out)"
    return text


def heartbeat_opened(data: dict[str, Any]) -> Evaluation:
    e = scale_row(data["heartbeat"], E)
    measured = f"E {opening(e)}"
    try:
        measured += f"; A {opening(scale_row(data['heartbeat'], A))}"
    except NotMeasured as missing:
        measured += f"; {missing}"
    return measured, e["opened"] == e["sessions"]


def heartbeat_on_time(data: dict[str, Any]) -> Evaluation:
    e = scale_row(data["heartbeat"], E)
    expected = e["expected_per_client"]
    if e["pings_min"] is None:
        raise NotMeasured("E: no session open in the window")
    measured = (
        f"E: PINGs per session in {e['window_s']:.0f} s min {e['pings_min']} / median {e['pings_median']} "
        f"of {expected:g}; {e['closed_by_end']} closed"
    )
    # One PING less than the window holds is on time: the window's edges cut the first and last.
    return measured, e["pings_min"] >= expected - 1 and e["closed_by_end"] == 0


def heartbeat_cpu(data: dict[str, Any]) -> Evaluation:
    e, a = scale_row(data["heartbeat"], E), scale_row(data["heartbeat"], A)
    e_cpu, a_cpu = e["cpu_s_per_ping"], a["cpu_s_per_ping"]
    if e_cpu is None or a_cpu is None:
        raise NotMeasured("no PING in the window")
    measured = f"{ratio_text(e_cpu, a_cpu)}x (E {e_cpu * 1e6:,.0f} µs/PING, A {a_cpu * 1e6:,.0f})"
    return measured, e_cpu <= 0.3 * a_cpu


def fanout_rows(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    rows = {row["kind"]: row for row in data["rows"]}
    for kind in (A, D, FANOUT_E):
        if kind not in rows:
            raise NotMeasured(f"no {kind} row")
        if "error" in rows[kind]:
            raise NotMeasured(f"{kind}: {rows[kind]['error']}")
        if rows[kind]["rate"] is None:
            row = rows[kind]
            raise NotMeasured(f"{kind}: {row['complete']}/{row['clients']} clients had every message")
    return rows


def fanout_rate(data: dict[str, Any]) -> Evaluation:
    rows = fanout_rows(data)
    e, a, d = (rows[kind]["rate"] for kind in (FANOUT_E, A, D))
    measured = f"E {e:,.0f} msg/s: {ratio_text(e, a)}x A ({a:,.0f}), {ratio_text(e, d)}x D ({d:,.0f})"
    nowait = rows.get(FANOUT_E_NOWAIT, {}).get("rate")
    if nowait:
        measured += f"; send_nowait {ratio_text(nowait, a)}x A, {ratio_text(nowait, d)}x D"
    return measured, None


def fanout_time(data: dict[str, Any]) -> Evaluation:
    rows = fanout_rows(data)
    last = ", ".join(
        f"{name} {rows[kind]['last_ms'] / 1000:.2f} s" for name, kind in (("E", FANOUT_E), ("A", A), ("D", D))
    )
    first = ", ".join(
        f"{name} {rows[kind]['first_message_last_ms']:,.0f} ms" for name, kind in (("E", FANOUT_E), ("A", A), ("D", D))
    )
    rounds = data["settings"]["n"]
    return f"last of {rounds} messages: {last}; one message to all: {first}", None


def fanout_intact(data: dict[str, Any]) -> Evaluation:
    problems = []
    for row in data["rows"]:
        if "error" in row:
            problems.append(f"{row['kind']}: {row['error']}")
        elif row["lost"] or row["reordered"] or row["complete"] != row["clients"]:
            problems.append(
                f"{row['kind']}: {row['lost']} lost, {row['reordered']} reordered, "
                f"{row['complete']}/{row['clients']} complete"
            )
    if problems:
        return "; ".join(problems), False
    return f"0 lost, 0 reordered, every client had every message ({len(data['rows'])} servers)", True


def targets(quick: bool) -> list[Target]:
    sessions = [1000] if quick else [1000, 5000, 10000]
    configs = len(QUICK_CONFIGS) if quick else MATRIX_CONFIGS
    heartbeat_n = f"{sessions[-1]:,}"
    return [
        Target(
            "websocket",
            "websocket echo, fast path on: E/D msg/s >= 0.95 in every config",
            websocket_worst(E, configs),
        ),
        Target(
            "websocket",
            "websocket echo, fast path off: E stock/D msg/s >= 0.95 in every config",
            websocket_worst(E_STOCK, configs),
        ),
        Target("polling", "polling, c=10: E/D msg/s >= 0.95", polling_rate(10)),
        Target("polling", "polling, c=100: E/D msg/s >= 0.95", polling_rate(100)),
        Target("polling", "polling, c=100: p99 E <= D", polling_p99),
        Target("handshakes", "handshakes: E/D hs/s >= 0.9", handshakes),
        *(
            Target("memory", f"memory, {n:,} idle sessions: E KiB/session <= D + 5 (A shown)", memory(n))
            for n in sessions
        ),
        Target("heartbeat", f"heartbeat, {heartbeat_n} sessions at 1 s: all opened", heartbeat_opened),
        Target("heartbeat", f"heartbeat, {heartbeat_n} sessions at 1 s: all pinged on time", heartbeat_on_time),
        Target("heartbeat", "heartbeat: E server CPU per PING <= 0.3x A's", heartbeat_cpu),
        Target("memory", f"idle CPU, {heartbeat_n} sessions, 25 s pings: E < 2 % of a core", idle_cpu(sessions[-1])),
        Target("fanout", "fan-out msg/s: E (await send) vs A and D (no threshold)", fanout_rate),
        Target("fanout", "fan-out: time until the last client has it (no threshold)", fanout_time),
        Target("fanout", "fan-out: nothing lost or reordered", fanout_intact),
    ]


def judge(target: Target, outcome: Outcome) -> Verdict:
    """One target against its scenario's results; a scenario that did not finish makes it not met."""
    notes = [] if outcome.status == "ok" else [f"{outcome.name} {outcome.status}: {outcome.reason}"]
    if outcome.data is None:
        why = outcome.reason or outcome.status
        return Verdict(target.source, target.text, f"not measured: {why}", False, notes)
    try:
        measured, met = target.evaluate(outcome.data)
    except NotMeasured as missing:
        return Verdict(target.source, target.text, f"not measured: {missing}", False, notes)
    except (LookupError, TypeError, ValueError, ZeroDivisionError) as error:
        measured, met = f"not measured: results unreadable ({type(error).__name__}: {error})", False
    if outcome.status != "ok" and met:
        met = False  # a scenario that did not finish has not shown the target met
        measured += f" ({outcome.name} {outcome.status})"
    return Verdict(target.source, target.text, measured, met, notes)


# -- the report -------------------------------------------------------------------------------------------


def met_cell(met: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "n/a"}[met]


def table(verdicts: list[Verdict]) -> str:
    lines = ["| target | measured | met? |", "|---|---|---|"]
    lines += [f"| {v.target} | {v.measured} | {met_cell(v.met)} |" for v in verdicts]
    return "\n".join(lines)


def scenario_lines(outcomes: list[Outcome]) -> list[str]:
    lines = []
    for outcome in outcomes:
        files = f"`{outcome.name}.json`, `{outcome.name}.log`" if outcome.status != "not run" else "no files"
        status = outcome.status + (f": {outcome.reason}" if outcome.reason else "")
        lines.append(f"- **{outcome.name}** ({outcome.duration_s:.0f} s): {status}; {files}; `{outcome.command}`")
    return lines


def git_revision() -> str:
    # rev-parse reads the repository without touching the index or the working tree.
    result = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return result.stdout.strip() or "unknown"


def write_summary(
    out: Path, args: argparse.Namespace, started: datetime.datetime, outcomes: list[Outcome], verdicts: list[Verdict]
) -> None:
    finished = datetime.datetime.now()
    heading = f"# Benchmarks of {started:%Y-%m-%d %H:%M}"
    if args.quick:
        heading += " (quick: a smoke run, too short to judge by)"
    about = (
        f"git {git_revision()} (HEAD; uncommitted changes, if any, are not recorded), "
        f"{os.cpu_count()} CPUs, {(finished - started).total_seconds() / 60:.1f} minutes. "
        "A = python-engineio on uvicorn, D = raw ASGI on hypercorn's trio worker, E = trio_engineio "
        "on hypercorn's trio worker (E stock: the fast path off). Server on CPU 0, load on CPU 1."
    )
    notes = sorted({note for verdict in verdicts for note in verdict.notes})
    markdown = [heading, "", about, "", table(verdicts), "", "## Scenarios", "", *scenario_lines(outcomes)]
    if notes:
        markdown += ["", "## Why some targets were not measured", "", *(f"- {note}" for note in notes)]
    (out / "summary.md").write_text("\n".join(markdown) + "\n")
    summary = {
        "started": started.isoformat(timespec="seconds"),
        "finished": finished.isoformat(timespec="seconds"),
        "quick": args.quick,
        "git": git_revision(),
        "cpus": os.cpu_count(),
        "scenarios": [
            {key: value for key, value in vars(outcome).items() if key != "data"} | {"json": f"{outcome.name}.json"}
            for outcome in outcomes
        ],
        "targets": [vars(verdict) for verdict in verdicts],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))


def results_directory(started: datetime.datetime) -> Path:
    """``results/YYYY-MM-DD-HHMM``, with a suffix where a run of the same minute has it already."""
    base = HERE / "results" / f"{started:%Y-%m-%d-%H%M}"
    candidate, suffix = base, 2
    while candidate.exists():
        candidate, suffix = base.with_name(f"{base.name}-{suffix}"), suffix + 1
    return candidate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run of a minute or two")
    parser.add_argument("--only", nargs="+", choices=SCENARIO_NAMES, metavar="SCENARIO", help=", ".join(SCENARIO_NAMES))
    parser.add_argument("--out", type=Path, help="results directory (default: benchmarks/results/YYYY-MM-DD-HHMM)")
    parser.add_argument("--budget", type=float, help="minutes the whole run may take (default 35; 6 with --quick)")
    args = parser.parse_args()
    started = datetime.datetime.now()
    out = args.out or results_directory(started)
    out.mkdir(parents=True, exist_ok=True)
    budget_s = 60 * (args.budget or (6 if args.quick else 35))
    budget_end = time.monotonic() + budget_s
    chosen = [scenario for scenario in scenarios(args.quick) if not args.only or scenario.name in args.only]
    outcomes: list[Outcome] = []
    interrupted = False
    for scenario in chosen:
        left = budget_end - time.monotonic()
        if interrupted or left < LEAST_WORTH_STARTING_S:
            outcome = Outcome(
                scenario.name, shlex.join(["python", f"benchmarks/{scenario.script}", *scenario.arguments])
            )
            outcome.reason = (
                "the run was interrupted" if interrupted else f"the run's budget ({budget_s / 60:g} min) was spent"
            )
            outcomes.append(outcome)
            continue
        outcomes.append(run_scenario(scenario, out, min(scenario.time_limit_s, left)))
        interrupted = outcomes[-1].status == "interrupted"
    by_name = {outcome.name: outcome for outcome in outcomes}
    verdicts = [judge(target, by_name[target.source]) for target in targets(args.quick) if target.source in by_name]
    write_summary(out, args, started, outcomes, verdicts)
    print("\n" + table(verdicts))
    print(f"\nresults: {out} (summary.md, summary.json, one JSON and one log per scenario)")
    if interrupted:
        raise SystemExit(130)


if __name__ == "__main__":
    main()
