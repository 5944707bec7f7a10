// Long-polling echo load: CLIENTS Engine.IO sessions over HTTP long-polling, each with one
// message in flight (POST it, wait for its echo on the pending GET, POST the next), for
// SECONDS seconds after WARMUP. Answers the server's pings. Each client has its own keep-alive
// agent with two sockets (one for the GET that waits, one for POSTs), as a browser would.
// Prints {"event": "counting"}, then {"messages": N, "latencies_ms": [...sampled]}.
// Usage: node poll.mjs URL CLIENTS SECONDS WARMUP [SIZE]
import http from "node:http";
import { measuring, runWindow } from "./_window.mjs";

const [url, clients, seconds, warmup, size] = process.argv.slice(2);
const payload = "4" + "x".repeat(Number(size || 20));
const base = url + "/engine.io/?EIO=4&transport=polling";
let received = 0;
const latencies = [];

function request(agent, method, target, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(target, {
      method,
      agent,
      headers: body === undefined ? {} : { "content-type": "text/plain;charset=UTF-8" },
    });
    req.on("response", (res) => {
      const chunks = [];
      res.on("data", (chunk) => chunks.push(chunk));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString();
        if (res.statusCode !== 200) reject(new Error(`${method} ${res.statusCode}: ${text}`));
        else resolve(text);
      });
    });
    req.on("error", reject);
    req.end(body);
  });
}

async function client() {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
  const open = await request(agent, "GET", base);
  const sid = JSON.parse(open.slice(1)).sid;
  const target = `${base}&sid=${sid}`;
  let sentAt = 0;
  const post = (body) => request(agent, "POST", target, body);
  sentAt = performance.now();
  post(payload);
  while (!measuring.stopped) {
    const body = await request(agent, "GET", target);
    for (const packet of body.split("\x1e")) {
      if (packet === "2") { post("3"); continue; }
      if (packet[0] !== "4") continue;
      if (measuring.counting) {
        received++;
        if (received % 10 === 0) latencies.push(performance.now() - sentAt);
      }
      if (measuring.stopped) break;
      sentAt = performance.now();
      post(payload);
    }
  }
  agent.destroy();
}

runWindow({ clients, warmup, seconds, client, result: () => ({ messages: received, latencies_ms: latencies }) });
