// The clients of benchmarks/scale.py: SESSIONS websocket sessions in one process (the `ws`
// package from tests/js, no permessage-deflate), that do nothing but stay open.
// Usage: node scale.mjs URL MODE SESSIONS CONCURRENCY OPEN_TIMEOUT_S [OPEN_DEADLINE_S]
//   MODE "engineio": Engine.IO v4 over websocket-only; a session is open at its OPEN packet, and
//                    answers every PING "2" with a PONG "3" (counting the PINGs)
//   MODE "raw":      a bare websocket (the raw ASGI server), open at the upgrade; it never sends
// Opens the sessions CONCURRENCY at a time (a new one as soon as one is open or has failed), each
// given OPEN_TIMEOUT_S seconds; then prints {"event": "opened", ...}. With OPEN_DEADLINE_S (0: none),
// opening stops that many seconds after it began: the sessions still opening are given up
// ("cut_at_deadline"), those never tried are counted ("not_attempted"), and the rest goes on with
// the sessions that did open (a saturated server is reported, not waited for). Then, one command a line on
// stdin: "mark" zeroes the PING counters ({"event": "marked"}); "report" prints the PINGs each
// session saw since ({"event": "report", ...}); "close" closes every session (close frames, as a
// client leaving) and exits once they are closed ({"event": "closed"}).
import { createRequire } from "node:module";
import { createInterface } from "node:readline";
const require = createRequire(new URL("../tests/js/package.json", import.meta.url));
const WebSocket = require("ws");

const [url, mode, sessionsArg, concurrencyArg, timeoutArg, deadlineArg] = process.argv.slice(2);
const SESSIONS = Number(sessionsArg);
const CONCURRENCY = Number(concurrencyArg);
const TIMEOUT_MS = Number(timeoutArg) * 1000;
const DEADLINE_MS = Number(deadlineArg || 0) * 1000;
const base = url.replace(/^http/, "ws");
const target = mode === "engineio" ? base + "/engine.io/?EIO=4&transport=websocket" : base + "/";
const clients = []; // the sessions that opened
const errors = {}; // why the others did not: message -> count
let timedOut = 0;
let failed = 0;
let cutAtDeadline = 0;
let deadlineHit = false;
const opening = new Set(); // the settle functions of the sessions still opening

function emit(event) {
  process.stdout.write(JSON.stringify(event) + "\n");
}

function open() {
  return new Promise((resolve) => {
    const ws = new WebSocket(target, { perMessageDeflate: false }); // the timer below is the timeout
    const client = { ws, opened: false, pings: 0, closed: false };
    let settled = false;
    const settle = (reason) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opening.delete(settle);
      if (reason === null) {
        client.opened = true;
        clients.push(client);
      } else {
        if (reason === "timeout") timedOut++;
        else if (reason === "open deadline") cutAtDeadline++;
        else failed++;
        errors[reason] = (errors[reason] || 0) + 1;
        ws.terminate();
      }
      resolve();
    };
    const timer = setTimeout(() => settle("timeout"), TIMEOUT_MS);
    opening.add(settle);
    ws.on("message", (data) => {
      const text = data.toString();
      if (!client.opened) {
        if (mode === "engineio") settle(text.startsWith("0{") ? null : `unexpected first packet ${text.slice(0, 20)}`);
        return;
      }
      if (text === "2") {
        client.pings++;
        ws.send("3");
      }
    });
    ws.on("open", () => { if (mode !== "engineio") settle(null); });
    ws.on("error", (err) => settle(String(err.code || err.message || err)));
    ws.on("close", () => {
      client.closed = true;
      settle("closed before open");
    });
  });
}

const started = performance.now();
let next = 0;
async function opener() {
  while (next < SESSIONS && !deadlineHit) {
    next++;
    await open();
  }
}
const deadline = DEADLINE_MS > 0 ? setTimeout(() => {
  deadlineHit = true;
  for (const settle of [...opening]) settle("open deadline");
}, DEADLINE_MS) : null;
await Promise.all(Array.from({ length: Math.min(CONCURRENCY, SESSIONS) }, opener));
clearTimeout(deadline);
emit({
  event: "opened",
  requested: SESSIONS,
  opened: clients.length,
  failed,
  timed_out: timedOut,
  deadline_hit: deadlineHit,
  cut_at_deadline: cutAtDeadline,
  not_attempted: SESSIONS - next,
  errors,
  open_s: (performance.now() - started) / 1000,
});

const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  const command = line.trim();
  if (command === "mark") {
    for (const c of clients) c.pings = 0;
    emit({ event: "marked", closed: clients.filter((c) => c.closed).length });
  } else if (command === "report") {
    const pings = clients.map((c) => c.pings).sort((a, b) => a - b);
    emit({
      event: "report",
      sessions: clients.length,
      closed: clients.filter((c) => c.closed).length,
      pings_total: pings.reduce((sum, n) => sum + n, 0),
      pings_min: pings.length ? pings[0] : null,
      pings_median: pings.length ? pings[Math.floor(pings.length / 2)] : null,
      pings_max: pings.length ? pings[pings.length - 1] : null,
    });
  } else if (command === "close") {
    let open = clients.filter((c) => !c.closed).length;
    const finish = () => { emit({ event: "closed", unclosed: open }); process.exit(0); };
    if (open === 0) finish();
    for (const c of clients) {
      if (c.closed) continue;
      c.ws.on("close", () => { if (--open === 0) finish(); });
      c.ws.close(1000);
    }
    setTimeout(finish, 5000); // whatever has not closed by then is cut off at exit
  }
});
lines.on("close", () => process.exit(0)); // the driver is gone
