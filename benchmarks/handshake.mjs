// Websocket handshake load: CLIENTS concurrent loops, each opening a websocket (no
// permessage-deflate), waiting until the session is open, closing it (a normal close, code 1000)
// and waiting for the close to finish, then starting the next one; for SECONDS seconds after WARMUP.
// Prints {"event": "counting"}, then {"handshakes": N, "latencies_ms": [...], "open_ms": [...]}:
// the handshakes completed (closed) in the measured window, each one's whole cycle (connect to
// close finished) and its connect to open.
// Usage: node handshake.mjs URL MODE CLIENTS SECONDS WARMUP
//   MODE "engineio": Engine.IO v4 over websocket-only; a session is open at the server's OPEN
//                    packet (a text message starting with "0")
//   MODE "raw":      a bare websocket (the raw ASGI echo, which never speaks first), open at the
//                    upgrade (the 101 response): connect + upgrade + close, no message either way
import { createRequire } from "node:module";
import { measuring, runWindow } from "./_window.mjs";
const require = createRequire(new URL("../tests/js/package.json", import.meta.url));
const WebSocket = require("ws");

const [url, mode, clients, seconds, warmup] = process.argv.slice(2);
const base = url.replace(/^http/, "ws");
const target = mode === "engineio" ? base + "/engine.io/?EIO=4&transport=websocket" : base + "/";
let completed = 0;
const latencies = [];
const openLatencies = [];

function handshake() {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const ws = new WebSocket(target, { perMessageDeflate: false });
    let opened = 0;
    const open = () => {
      opened = performance.now();
      ws.close(1000);
    };
    ws.on("message", (data) => {
      if (opened) return;
      const text = data.toString();
      if (mode === "engineio" && text.startsWith("0")) open();
      else reject(new Error(`unexpected first message ${text.slice(0, 20)}`));
    });
    ws.on("open", () => { if (mode !== "engineio") open(); });
    ws.on("error", reject);
    ws.on("close", (code) => {
      if (!opened) reject(new Error(`closed before open (code ${code})`));
      else resolve({ cycle: performance.now() - started, open: opened - started });
    });
  });
}

async function client() {
  while (!measuring.stopped) {
    const { cycle, open } = await handshake();
    if (measuring.counting) {
      completed++;
      latencies.push(Math.round(cycle * 1000) / 1000);
      openLatencies.push(Math.round(open * 1000) / 1000);
    }
  }
}

runWindow({ clients, warmup, seconds, client, result: () => ({ handshakes: completed, latencies_ms: latencies, open_ms: openLatencies }) });
