// The node socket.io-client v4 against tests/sio/sio_app.py: prints its checks as one JSON line.
//
//   node sio_client.mjs URL TRANSPORTS_JSON       (TRANSPORTS_JSON: null for polling then upgrade)
//
// The scenario and the names of its checks are those of tests/sio/sio_client_asyncio.py.
import { io } from "socket.io-client";

const [url, transportsJson] = process.argv.slice(2);
const transports = transportsJson ? JSON.parse(transportsJson) : null;
const options = { reconnection: false, forceNew: true, ...(transports ? { transports } : {}) };

const watchdog = setTimeout(() => {
  console.error("sio_client.mjs: timed out");
  process.exit(2);
}, 20000);

function attachment(i, which) {
  return Buffer.from(Array.from({ length: 64 + which }, (_, k) => (i + which * 7 + k) % 256));
}

function recorder(auth) {
  const socket = io(url, { ...options, auth });
  const rec = { socket, events: [], waiters: [], disconnectReason: null };
  const changed = () => {
    for (const wake of rec.waiters.splice(0)) wake();
  };
  socket.onAny((event, ...args) => {
    rec.events.push([event, args.length === 1 ? args[0] : args]);
    changed();
  });
  socket.on("question", (data, ack) => ack(`answer:${data}`));
  socket.on("ignore_me", () => {}); // never acknowledged
  socket.on("disconnect", (reason) => {
    rec.disconnectReason = reason;
    changed();
  });
  rec.named = (event) => rec.events.filter(([name]) => name === event).map(([, data]) => data);
  rec.waitFor = async (predicate) => {
    while (!predicate()) await new Promise((resolve) => rec.waiters.push(resolve));
  };
  return rec;
}

function connected(socket) {
  return new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
  });
}

async function main() {
  const checks = {};

  const refused = io(url, { ...options, auth: { token: "wrong" } });
  try {
    await connected(refused);
    checks.auth_refused = "connected";
  } catch (err) {
    checks.auth_refused = err.message;
  }
  refused.close();

  const a = recorder({ token: "secret", user: "alice" });
  await connected(a.socket);
  const b = recorder({ token: "secret", user: "bob" });
  await connected(b.socket);
  await a.waitFor(() => a.named("welcome").length > 0);
  checks.welcome = a.named("welcome")[0].user;
  checks.welcome_sid = a.named("welcome")[0].sid === a.socket.id;

  checks.ack_text = await a.socket.emitWithAck("echo", "hello");
  const binary = await a.socket.emitWithAck("echo", Buffer.from([0, 1, 255]));
  checks.ack_binary = Buffer.from(binary).equals(Buffer.from([0, 1, 255]));
  checks.client_emit_callback = await new Promise((resolve) => a.socket.emit("echo", { k: [1, 2] }, resolve));
  checks.server_call = await a.socket.emitWithAck("call_me", "q1");
  const started = Date.now();
  checks.server_call_timeout = await a.socket.emitWithAck("call_timeout");
  checks.server_call_timeout_fast = Date.now() - started < 900;
  try {
    await a.socket.timeout(200).emitWithAck("no_such_event_with_no_ack");
    checks.client_call_timeout = "answered";
  } catch {
    checks.client_call_timeout = "timeout";
  }
  a.socket.emit("emit_cb", "q2");
  await a.waitFor(() => a.named("cb_result").length > 0);
  checks.server_emit_callback = a.named("cb_result")[0];
  await a.socket.emitWithAck("whoami");
  checks.session = await a.socket.emitWithAck("whoami");

  const room = `room-${a.socket.id}`; // its own: other runs share the server
  await a.socket.emitWithAck("join", room);
  checks.join = JSON.stringify(await b.socket.emitWithAck("join", room)) === JSON.stringify([room]);
  for (const skip of [true, false]) {
    const key = skip ? "room_skip" : "room";
    await a.socket.emitWithAck("room_emit", { room, skip, data: key });
    for (const rec of [a, b]) await rec.waitFor(() => rec.named("marker").includes(key));
    checks[key] = [a, b].map((rec) => rec.named("room_msg").includes(key));
  }
  await a.socket.emitWithAck("broadcast", "all");
  for (const rec of [a, b]) await rec.waitFor(() => rec.named("bcast").includes("all"));
  checks.broadcast = true;

  const count = await a.socket.emitWithAck("binary_burst", 200);
  await a.waitFor(() => a.named("bin").length >= count);
  const received = a.named("bin");
  checks.binary_order = JSON.stringify(received.map((event) => event.i)) === JSON.stringify([...Array(200).keys()]);
  checks.binary_attachments = received.every(
    (event) => Buffer.from(event.a).equals(attachment(event.i, 0)) && Buffer.from(event.b).equals(attachment(event.i, 1)),
  );

  if (!transports) {
    const deadline = Date.now() + 5000;
    while ((await a.socket.emitWithAck("transport")) !== "websocket" && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  checks.transport = await a.socket.emitWithAck("transport");
  checks.client_transport = a.socket.io.engine.transport.name;

  const aSid = a.socket.id;
  a.socket.disconnect();
  await b.waitFor(() => b.named("left").some((event) => event.sid === aSid));
  checks.client_disconnect = b.named("left").find((event) => event.sid === aSid).reason;
  b.socket.emit("kick");
  await b.waitFor(() => b.disconnectReason !== null);
  checks.server_disconnect = b.disconnectReason;

  console.log(JSON.stringify(checks));
  clearTimeout(watchdog);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
