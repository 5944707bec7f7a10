// CLI driver of the official `engine.io-client`, used by the trio_engineio
// interop tests against an echo server (text echoed as text, binary as binary).
//
// Usage: node client.mjs <url> <scenario> [json-options]
//
// Scenarios: echo, ordered, big, upgrade, wait-close, keepalive, request-binary.
// Stdout gets one JSON object per line ("open", "handshake", "upgrade",
// "message", "ping", "close", "error" events, then one "result"). Binary data is
// shown as {"binary": "<base64>"}. Exit code 0 means every assertion held.
//
// json-options: the harness keys below are consumed here; every other key is
// passed verbatim to `new Socket(url, opts)` (transports, upgrade, path, query,
// extraHeaders, withCredentials, transportOptions, rememberUpgrade, ...).

import { Socket } from "engine.io-client";

const HARNESS_DEFAULTS = {
  count: 1000, // ordered: number of messages
  size: 100_000, // big: message size (characters, or bytes with binary: true)
  binary: false, // big: send a binary message instead of text
  seconds: 3, // keepalive: how long to stay connected
  trigger: "please-disconnect", // wait-close: message that makes the server act
  timeoutMs: 10_000, // whole-run watchdog
  logMessages: null, // log each received message (default: off for ordered/big)
};

const [url, scenario, rawOptions = "{}"] = process.argv.slice(2);
if (!url || !scenario) {
  process.stderr.write("usage: node client.mjs <url> <scenario> [json-options]\n");
  process.exit(2);
}
const allOptions = JSON.parse(rawOptions);
const harness = { ...HARNESS_DEFAULTS };
const socketOptions = {};
for (const [key, value] of Object.entries(allOptions)) {
  if (key in HARNESS_DEFAULTS) harness[key] = value;
  else socketOptions[key] = value;
}
const logMessages = harness.logMessages ?? !["ordered", "big"].includes(scenario);

function emit(event) {
  process.stdout.write(JSON.stringify(event) + "\n");
}

let watchdog = null;
let finished = false;

function finish(code, message) {
  if (finished) return;
  finished = true;
  clearTimeout(watchdog);
  if (code !== 0) {
    emit({ event: "error", source: "harness", message });
    process.stderr.write(`client.mjs ${scenario}: ${message}\n`);
    // Failing: no need to close anything gracefully.
    process.stdout.write("", () => process.exit(code));
    return;
  }
  // Exit naturally so in-flight requests (e.g. the polling "close" packet sent
  // by socket.close()) reach the server, as they would in a real program; the
  // unref'd timer only forces the exit if something keeps the loop alive.
  process.exitCode = code;
  setTimeout(() => process.exit(code), 2000).unref();
}

function describeData(data) {
  return typeof data === "string" ? data : { binary: Buffer.from(data).toString("base64") };
}

// Close descriptions can be Errors or ws CloseEvents with circular references:
// keep only the fields that help a test or a human reading a failure.
function describe(value, depth = 0) {
  if (value === null || value === undefined) return null;
  if (typeof value !== "object") return value;
  if (depth > 3) return String(value);
  const out = {};
  if (value instanceof Error) out.message = value.message;
  for (const key of ["type", "description", "context", "code", "reason", "wasClean"]) {
    if (key in value && value[key] !== undefined) out[key] = describe(value[key], depth + 1);
  }
  return out;
}

function sameData(a, b) {
  if (typeof a === "string" || typeof b === "string") return a === b;
  return Buffer.from(a).equals(Buffer.from(b));
}

// Wraps a Socket: logs its events and turns messages and close into promises.
class Connection {
  constructor(socket) {
    this.socket = socket;
    this.inbox = [];
    this.waiters = [];
    this.pings = 0;
    this.transports = [];
    this.upgraded = false;
    this.closeInfo = null;
    this.opened = new Promise((resolve, reject) => {
      socket.on("open", resolve);
      socket.on("close", (reason) => reject(new Error(`closed before open: ${reason}`)));
    });
    this.closed = new Promise((resolve) => {
      socket.on("close", (reason, description) => {
        this.closeInfo = { reason, description: describe(description) };
        emit({ event: "close", ...this.closeInfo });
        resolve(this.closeInfo);
        for (const waiter of this.waiters.splice(0)) {
          waiter.reject(new Error(`connection closed (${reason}) while waiting for a message`));
        }
      });
    });
    this.upgradedPromise = new Promise((resolve) => socket.on("upgrade", resolve));

    socket.on("open", () => {
      this.transports.push(socket.transport.name);
      emit({ event: "open", transport: socket.transport.name, sid: socket.id });
    });
    socket.on("handshake", (data) => emit({ event: "handshake", ...data }));
    socket.on("upgrade", (transport) => {
      this.upgraded = true;
      this.transports.push(transport.name);
      emit({ event: "upgrade", transport: transport.name });
    });
    socket.on("upgradeError", (err) => emit({ event: "upgradeError", message: err.message }));
    socket.on("error", (err) => emit({ event: "error", source: "socket", message: String(err?.message ?? err) }));
    socket.on("ping", () => {
      this.pings += 1;
      emit({ event: "ping" });
    });
    socket.on("message", (data) => {
      if (logMessages) emit({ event: "message", data: describeData(data) });
      const waiter = this.waiters.shift();
      if (waiter) waiter.resolve(data);
      else this.inbox.push(data);
    });
  }

  nextMessage() {
    if (this.inbox.length > 0) return Promise.resolve(this.inbox.shift());
    if (this.closeInfo) return Promise.reject(new Error(`connection closed (${this.closeInfo.reason})`));
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  // Sends each message, then checks the echoes arrive identical and in order.
  async echoAll(messages) {
    for (const message of messages) this.socket.send(message);
    for (const [index, sent] of messages.entries()) {
      const received = await this.nextMessage();
      if (!sameData(sent, received)) {
        throw new Error(
          `echo #${index} differs: sent ${JSON.stringify(describeData(sent)).slice(0, 200)}, ` +
            `got ${JSON.stringify(describeData(received)).slice(0, 200)}`,
        );
      }
    }
  }

  // Client-initiated close; the "close" event (reason "forced close") is logged.
  async close() {
    this.socket.close();
    return this.closed;
  }

  get transport() {
    return this.socket.transport.name;
  }
}

const SAMPLE_BINARY = Uint8Array.from([0, 1, 2, 127, 128, 254, 255]);

const scenarios = {
  async echo(conn) {
    const messages = ["hello", SAMPLE_BINARY, JSON.stringify({ text: "héllo ☃", list: [1, 2, 3] })];
    await conn.echoAll(messages);
    emit({ event: "result", scenario, ok: true, count: messages.length, transport: conn.transport });
    await conn.close();
  },

  async ordered(conn) {
    const messages = Array.from({ length: harness.count }, (_, i) => `message-${i}`);
    await conn.echoAll(messages);
    emit({
      event: "result",
      scenario,
      ok: true,
      count: messages.length,
      transport: conn.transport,
      transports: conn.transports,
      upgraded: conn.upgraded,
    });
    await conn.close();
  },

  async big(conn) {
    const pattern = "0123456789abcdefghijklmnopqrstuvwxyz";
    const message = harness.binary
      ? Uint8Array.from({ length: harness.size }, (_, i) => i % 256)
      : pattern.repeat(Math.ceil(harness.size / pattern.length)).slice(0, harness.size);
    await conn.echoAll([message]);
    emit({ event: "result", scenario, ok: true, size: harness.size, binary: harness.binary, transport: conn.transport });
    await conn.close();
  },

  async upgrade(conn) {
    await conn.upgradedPromise;
    if (conn.transport !== "websocket") throw new Error(`transport is ${conn.transport} after upgrade`);
    await conn.echoAll(["after-upgrade", SAMPLE_BINARY]);
    emit({ event: "result", scenario, ok: true, upgraded: true, transport: conn.transport, transports: conn.transports });
    await conn.close();
  },

  async "wait-close"(conn) {
    conn.socket.send(harness.trigger);
    const { reason, description } = await conn.closed;
    emit({ event: "result", scenario, ok: true, reason, description, transport: conn.transport });
  },

  async keepalive(conn) {
    await new Promise((resolve) => setTimeout(resolve, harness.seconds * 1000));
    if (conn.closeInfo) throw new Error(`connection closed during keepalive: ${conn.closeInfo.reason}`);
    emit({ event: "result", scenario, ok: true, pings: conn.pings, seconds: harness.seconds, closed: false, transport: conn.transport });
    await conn.close();
  },

  // Asks the server for its 0..255 binary message (server.mjs "send-binary").
  async "request-binary"(conn) {
    conn.socket.send("send-binary");
    const data = await conn.nextMessage();
    const expected = Uint8Array.from({ length: 256 }, (_, i) => i);
    if (typeof data === "string" || !sameData(data, expected)) {
      throw new Error(`unexpected reply: ${JSON.stringify(describeData(data)).slice(0, 200)}`);
    }
    emit({ event: "result", scenario, ok: true, length: data.length, transport: conn.transport });
    await conn.close();
  },
};

async function main() {
  const run = scenarios[scenario];
  if (!run) throw new Error(`unknown scenario ${JSON.stringify(scenario)}; known: ${Object.keys(scenarios).join(", ")}`);
  const conn = new Connection(new Socket(url, socketOptions));
  await conn.opened;
  await run(conn);
}

watchdog = setTimeout(() => finish(1, `timed out after ${harness.timeoutMs} ms`), harness.timeoutMs);
main().then(
  () => finish(0),
  (err) => finish(1, err?.message ?? String(err)),
);
