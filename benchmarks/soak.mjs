// The clients of benchmarks/soak.py: CLIENTS official `engine.io-client` sockets in one process
// (tests/js), each sending one sequence-numbered message a second to an echo server for SECONDS.
// Usage: node soak.mjs URL CLIENTS SECONDS RAMP_S
// Client i: i % 10 < 5 polling only, < 9 websocket only, 9 polling that upgrades to websocket.
// Each message is "SEQ:SENT_AT" (ms, performance.now()); the echo gives the round-trip latency.
// Prints {"event": "tick", ...} every 10 s, then stops sending, waits 5 s for the last echoes,
// closes every socket and prints one result line.
import { createRequire } from "node:module";
const require = createRequire(new URL("../tests/js/package.json", import.meta.url));
const { Socket } = require("engine.io-client");

const [url, clientsArg, secondsArg, rampArg] = process.argv.slice(2);
const CLIENTS = Number(clientsArg);
const SECONDS = Number(secondsArg);
const RAMP_MS = Number(rampArg) * 1000;
const KINDS = ["polling", "polling", "polling", "polling", "polling", "websocket", "websocket", "websocket", "websocket", "upgrade"];
const OPTIONS = {
  polling: { transports: ["polling"], upgrade: false },
  websocket: { transports: ["websocket"] },
  upgrade: { transports: ["polling", "websocket"], upgrade: true },
};
const clients = [];
const latencies = [];
const latenciesByKind = { polling: [], websocket: [], upgrade: [] };
const steady = []; // messages sent once every client is connected (RAMP_S + 5 s after the start)
let sending = true;
let sent = 0;
let received = 0;

function emit(event) {
  process.stdout.write(JSON.stringify(event) + "\n");
}

function open(index) {
  const kind = KINDS[index % KINDS.length];
  const socket = new Socket(url, OPTIONS[kind]);
  const client = { kind, socket, sent: 0, expected: 0, received: 0, reordered: 0, opened: false, closedEarly: false, upgraded: false, timer: null };
  clients.push(client);
  socket.on("open", () => {
    client.opened = true;
    const tick = () => {
      if (!sending) return;
      socket.send(`${client.sent}:${performance.now()}`);
      client.sent++;
      sent++;
    };
    // A random phase, so that the 1,000 clients do not send in lockstep.
    setTimeout(() => { tick(); client.timer = setInterval(tick, 1000); }, Math.random() * 1000);
  });
  socket.on("upgrade", () => { client.upgraded = true; });
  socket.on("message", (data) => {
    const colon = data.indexOf(":");
    const seq = Number(data.slice(0, colon));
    const sentAt = Number(data.slice(colon + 1));
    const latency = performance.now() - sentAt;
    latencies.push(latency);
    if (sentAt - started > RAMP_MS + 5000) steady.push(latency);
    latenciesByKind[kind].push(latency);
    if (seq !== client.expected) client.reordered++;
    client.expected = Math.max(client.expected, seq + 1);
    client.received++;
    received++;
  });
  socket.on("close", (reason) => {
    if (sending) {
      client.closedEarly = true;
      emit({ event: "closed-early", index, kind, reason: String(reason) });
    }
    clearInterval(client.timer);
  });
}

for (let i = 0; i < CLIENTS; i++) setTimeout(() => open(i), (i * RAMP_MS) / CLIENTS);

const started = performance.now();
const ticker = setInterval(() => {
  emit({
    event: "tick",
    t: Math.round((performance.now() - started) / 1000),
    open: clients.filter((c) => c.opened && !c.closedEarly).length,
    sent,
    received,
  });
}, 10_000);

setTimeout(() => {
  sending = false;
  for (const c of clients) clearInterval(c.timer);
  setTimeout(() => {
    clearInterval(ticker);
    const at = (sorted, q) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : null);
    latencies.sort((a, b) => a - b);
    steady.sort((a, b) => a - b);
    const byKind = {};
    for (const c of clients) {
      const k = (byKind[c.kind] ??= { clients: 0, sent: 0, received: 0 });
      k.clients++;
      k.sent += c.sent;
      k.received += c.received;
    }
    for (const [kind, values] of Object.entries(latenciesByKind)) {
      values.sort((a, b) => a - b);
      if (byKind[kind]) Object.assign(byKind[kind], { p50_ms: at(values, 0.5), p99_ms: at(values, 0.99) });
    }
    const result = {
      event: "result",
      clients: clients.length,
      opened: clients.filter((c) => c.opened).length,
      upgraded: clients.filter((c) => c.upgraded).length,
      closed_early: clients.filter((c) => c.closedEarly).length,
      sent,
      received,
      lost: clients.reduce((sum, c) => sum + (c.sent - c.received), 0),
      reordered: clients.reduce((sum, c) => sum + c.reordered, 0),
      p50_ms: at(latencies, 0.5),
      p99_ms: at(latencies, 0.99),
      steady_p50_ms: at(steady, 0.5),
      steady_p99_ms: at(steady, 0.99),
      max_ms: latencies.length ? latencies[latencies.length - 1] : null,
      by_kind: byKind,
    };
    for (const c of clients) c.socket.close();
    // Let the polling sockets' CLOSE packets and the websockets' close frames go out.
    setTimeout(() => { emit(result); process.exit(0); }, 2000);
  }, 5000);
}, SECONDS * 1000);
