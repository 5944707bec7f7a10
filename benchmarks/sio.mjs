// The clients of benchmarks/sio.py: CLIENTS socket.io-client v4 websocket clients in one
// process (socket.io-client from tests/js).
// Usage: node sio.mjs URL CLIENTS ECHOES N SIZE TIMEOUT_S
// Prints {"event": "connected"} once every client is connected, then waits for a line on stdin;
// then client 0 makes ECHOES sequential acknowledged "echo" calls (round-trip latency), and asks
// the server to broadcast N "b" events of SIZE bytes; every client expects 0..N-1 in order.
// Prints one result line: echo p50/p99 (ms), when each client had all N (ms after the request).
import { createRequire } from "node:module";
import { createInterface } from "node:readline";
const require = createRequire(new URL("../tests/js/package.json", import.meta.url));
const { io } = require("socket.io-client");

const [url, clientsArg, echoesArg, nArg, sizeArg, timeoutArg] = process.argv.slice(2);
const CLIENTS = Number(clientsArg);
const ECHOES = Number(echoesArg);
const N = Number(nArg);
const clients = [];
let start = 0;
let complete = 0;
let echo = null;

function quantile(sorted, q) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : null;
}

function report() {
  const done = clients.filter((c) => c.doneAt !== null).map((c) => c.doneAt - start).sort((a, b) => a - b);
  console.log(
    JSON.stringify({
      clients: clients.length,
      complete: done.length,
      echo_p50_ms: echo && quantile(echo, 0.5),
      echo_p99_ms: echo && quantile(echo, 0.99),
      p50_ms: quantile(done, 0.5),
      last_ms: done.length === clients.length ? done[done.length - 1] : null,
      lost: clients.reduce((sum, c) => sum + (N - c.received), 0),
      reordered: clients.reduce((sum, c) => sum + c.reordered, 0),
    }),
  );
  process.exit(0);
}

await Promise.all(
  Array.from({ length: CLIENTS }, () => {
    const client = { received: 0, reordered: 0, doneAt: null };
    client.socket = io(url, { transports: ["websocket"], reconnection: false, forceNew: true });
    client.socket.on("b", (event) => {
      if (event.i !== client.received) client.reordered += 1;
      client.received += 1;
      if (client.received === N) {
        client.doneAt = performance.now();
        complete += 1;
        if (complete === CLIENTS) report();
      }
    });
    clients.push(client);
    return new Promise((resolve, reject) => {
      client.socket.once("connect", resolve);
      client.socket.once("connect_error", reject);
    });
  }),
);
console.log(JSON.stringify({ event: "connected" }));
createInterface({ input: process.stdin }).once("line", async () => {
  const first = clients[0].socket;
  const times = [];
  for (let i = 0; i < ECHOES; i++) {
    const sent = performance.now();
    await first.emitWithAck("echo", `ping ${i}`);
    times.push(performance.now() - sent);
  }
  echo = times.sort((a, b) => a - b);
  setTimeout(report, Number(timeoutArg) * 1000);
  start = performance.now();
  first.emit("go", { n: N, size: Number(sizeArg) });
});
