// Official `engine.io` echo server used by the trio_engineio interop tests.
//
// Usage: node server.mjs [json-options]
//
// json-options are passed to engine.io's `attach()` (pingInterval, pingTimeout,
// maxHttpBufferSize, transports, allowUpgrades, cors, path, ...), except the
// harness-only key `logMessages` (default true: log every received message).
//
// Stdout gets one JSON object per line; the first one is always
// {"event":"listening","port":N}. Every message is echoed back unchanged (text
// as text, binary as binary), except these control messages:
//   "please-disconnect" -> the server closes that socket
//   "stop-pinging"      -> the server stops sending pings to that socket
//   "send-binary"       -> the server sends one binary message of bytes 0..255
//
// The process exits on SIGTERM, SIGINT, or when its stdin is closed.

import http from "node:http";
import { attach } from "engine.io";

const options = JSON.parse(process.argv[2] ?? "{}");
const { logMessages = true, ...engineOptions } = options;

function emit(event) {
  process.stdout.write(JSON.stringify(event) + "\n");
}

function describeData(data) {
  return typeof data === "string" ? data : { binary: Buffer.from(data).toString("base64") };
}

// engine.io (protocol v4, checked against 6.6.x) schedules each ping with a
// one-shot timer kept in the private field `socket.pingIntervalTimer`, and the
// pong handler re-arms that same timer with `pingIntervalTimer?.refresh()`.
// There is no public API to pause the heartbeat, so we clear the timer, null
// the field (making the pong handler's refresh a no-op) and stub
// `schedulePing` in case anything calls it again. A ping that is already in
// flight is still answered normally; after that the client sees silence and
// its own watchdog (pingInterval + pingTimeout) closes with "ping timeout".
function stopPinging(socket) {
  if (!("pingIntervalTimer" in socket) || typeof socket.schedulePing !== "function") {
    throw new Error("engine.io internals changed: cannot stop pinging; update server.mjs");
  }
  clearTimeout(socket.pingIntervalTimer);
  socket.pingIntervalTimer = null;
  socket.schedulePing = () => {};
}

const httpServer = http.createServer((req, res) => {
  // engine.io handles its own path; anything else is a 404.
  res.writeHead(404).end();
});
const engine = attach(httpServer, engineOptions);

engine.on("connection", (socket) => {
  const sid = socket.id;
  emit({ event: "connection", sid, transport: socket.transport.name, protocol: socket.protocol });

  socket.on("upgrade", (transport) => {
    emit({ event: "upgrade", sid, transport: transport.name });
  });

  socket.on("message", (data) => {
    if (logMessages) {
      emit({ event: "message", sid, data: describeData(data) });
    }
    if (data === "please-disconnect") {
      socket.close();
    } else if (data === "stop-pinging") {
      stopPinging(socket);
      emit({ event: "stopped-pinging", sid });
    } else if (data === "send-binary") {
      socket.send(Buffer.from(Array.from({ length: 256 }, (_, i) => i)));
    } else {
      socket.send(data);
    }
  });

  socket.on("close", (reason, description) => {
    emit({ event: "close", sid, reason, description: description?.message ?? null });
  });
});

engine.on("connection_error", (err) => {
  emit({ event: "connection_error", code: err.code, message: err.message });
});

let shuttingDown = false;
function shutdown() {
  if (shuttingDown) return;
  shuttingDown = true;
  engine.close(); // closes every client socket
  httpServer.closeAllConnections(); // drop idle keep-alive HTTP connections
  httpServer.close(() => process.exit(0));
  // Never hang the test run if something keeps the server open.
  setTimeout(() => process.exit(0), 1000).unref();
}

process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
// Closing stdin is the portable "please stop" signal from the Python harness.
process.stdin.on("end", shutdown);
process.stdin.on("error", shutdown);
process.stdin.resume();

httpServer.listen(0, "127.0.0.1", () => {
  emit({ event: "listening", port: httpServer.address().port });
});
