// Websocket echo load: CLIENTS connections, each keeping INFLIGHT messages in flight,
// for SECONDS seconds. Prints {"messages": N} (echoes received after the warm-up).
// Usage: node load.mjs URL MODE CLIENTS INFLIGHT SECONDS WARMUP [SIZE] [DEFLATE]
//   URL https://... connects with TLS (any certificate); DEFLATE "1" offers permessage-deflate
//   MODE "engineio": Engine.IO v4 over websocket-only (answers pings, sends "4" + payload)
//   MODE "raw": plain text echo
import { createRequire } from "node:module";
const require = createRequire(new URL("../tests/js/package.json", import.meta.url));
const WebSocket = require("ws");

const [url, mode, clients, inflight, seconds, warmup, size, deflate] = process.argv.slice(2);
const payload = "x".repeat(Number(size || 20));
let counting = false;
let received = 0;
const sockets = [];

function start(ws) {
  const frame = mode === "engineio" ? "4" + payload : payload;
  for (let i = 0; i < Number(inflight); i++) ws.send(frame);
  ws.on("message", (data, isBinary) => {
    const text = data.toString();
    if (mode === "engineio" && text === "2") { ws.send("3"); return; }
    if (counting) received++;
    ws.send(frame);
  });
}

for (let i = 0; i < Number(clients); i++) {
  const base = url.replace(/^http/, "ws");
  const target = mode === "engineio" ? base + "/engine.io/?EIO=4&transport=websocket" : base + "/";
  const ws = new WebSocket(target, { perMessageDeflate: deflate === "1", rejectUnauthorized: false });
  sockets.push(ws);
  ws.once("message", (data) => {
    if (mode === "engineio") start(ws); // the first message is the OPEN packet
  });
  ws.on("open", () => { if (mode !== "engineio") start(ws); });
  ws.on("error", (err) => { console.error(String(err)); process.exit(1); });
}

setTimeout(() => {
  counting = true;
  console.log(JSON.stringify({ event: "counting" }));
  setTimeout(() => {
    counting = false;
    console.log(JSON.stringify({ messages: received }));
    for (const ws of sockets) ws.terminate();
    process.exit(0);
  }, Number(seconds) * 1000);
}, Number(warmup) * 1000);
