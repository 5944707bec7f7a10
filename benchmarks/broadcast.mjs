// The reading clients of benchmarks/broadcast.py: CLIENTS Engine.IO websocket-only clients in
// one process (the `ws` package from tests/js), answering pings and checking the broadcast.
// Usage: node broadcast.mjs URL CLIENTS N SIZE TIMEOUT_S
// Prints {"event": "connected"} once every client has its OPEN packet, then waits for a line on
// stdin; then client 0 sends "go N SIZE", and every client expects messages "0:..." to "N-1:...",
// in order. Prints one result line: when each client had all N (ms after "go"), when the last
// client had its first message (one message to everyone), lost, reordered.
import { createRequire } from "node:module";
import { createInterface } from "node:readline";
const require = createRequire(new URL("../tests/js/package.json", import.meta.url));
const WebSocket = require("ws");

const [url, clientsArg, nArg, sizeArg, timeoutArg] = process.argv.slice(2);
const CLIENTS = Number(clientsArg);
const N = Number(nArg);
const target = url.replace(/^http/, "ws") + "/engine.io/?EIO=4&transport=websocket";
const clients = [];
let start = 0;
let complete = 0;

function report() {
  const done = clients.filter((c) => c.doneAt !== null).map((c) => c.doneAt - start).sort((a, b) => a - b);
  const at = (q) => (done.length ? done[Math.min(done.length - 1, Math.floor(q * done.length))] : null);
  const firsts = clients.filter((c) => c.firstAt !== null).map((c) => c.firstAt - start);
  const result = {
    clients: clients.length,
    complete: done.length,
    first_ms: done.length ? done[0] : null,
    p50_ms: at(0.5),
    last_ms: done.length === clients.length ? done[done.length - 1] : null,
    first_message_last_ms: firsts.length === clients.length ? Math.max(...firsts) : null,
    received: clients.reduce((sum, c) => sum + c.received, 0),
    lost: clients.reduce((sum, c) => sum + (N - c.received), 0),
    reordered: clients.reduce((sum, c) => sum + c.reordered, 0),
    closed_early: clients.filter((c) => c.closed && c.doneAt === null).length,
  };
  process.stdout.write(JSON.stringify(result) + "\n", () => {
    for (const c of clients) c.ws.terminate();
    process.exit(0);
  });
}

function connect(index) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(target, { perMessageDeflate: false }); // as load.mjs: compression is not measured
    const client = { ws, received: 0, next: 0, reordered: 0, firstAt: null, doneAt: null, closed: false };
    clients.push(client);
    ws.once("message", () => resolve()); // the OPEN packet
    ws.on("message", (data) => {
      const text = data.toString();
      if (text === "2") return void ws.send("3");
      if (text[0] !== "4") return;
      const seq = Number(text.slice(1, text.indexOf(":")));
      if (seq !== client.next) client.reordered++;
      client.next = seq + 1;
      if (client.received++ === 0) client.firstAt = performance.now();
      if (client.received === N) {
        client.doneAt = performance.now();
        if (++complete === CLIENTS) report();
      }
    });
    ws.on("close", () => { client.closed = true; });
    ws.on("error", (err) => reject(new Error(`client ${index}: ${err}`)));
  });
}

// Connect in batches, so that the server's accept queue is not what is measured.
for (let i = 0; i < CLIENTS; i += 100) {
  const batch = [];
  for (let j = i; j < Math.min(CLIENTS, i + 100); j++) batch.push(connect(j));
  await Promise.all(batch);
}
console.log(JSON.stringify({ event: "connected" }));
const lines = createInterface({ input: process.stdin });
lines.once("line", () => {
  start = performance.now();
  clients[0].ws.send(`4go ${N} ${sizeArg}`);
  setTimeout(report, Number(timeoutArg) * 1000);
});
