// Drive examples/chat in headless Chromium (Debian's, never a downloaded one) with playwright-core.
//
//   node chat.mjs '{"chatUrl": ..., "corsChatUrl": ..., "foreignUrl": ..., "screenshot": ...}'
//
// chatUrl       a chat server with the default cors_allowed_origins (None: same origin only)
// corsChatUrl   a chat server whose cors_allowed_origins lists foreignUrl's origin
// foreignUrl    a server of another origin whose "/" is foreign.html
// screenshot    where to save a PNG of the websocket conversation
// chromium      the browser (default /usr/bin/chromium); deadlineMs: the limit of the whole run
//
// Scenarios: "polling" (two pages on ?transport=polling talk, bob leaves with the Leave button),
// "websocket" (two pages upgrade to websocket, talk, bob closes his tab) and "crossOrigin" (a page
// of foreignUrl is refused by chatUrl, by polling and by websocket, and accepted by corsChatUrl).
// Prints one JSON line: {"ok": true, "polling": ..., "websocket": ..., "crossOrigin": ...}
// (each page: its record from browser.mjs and what it showed), or {"ok": false, "error": ...}.

import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { openPage, pageState, runInChromium, say, waitFor, waitLine, waitText } from "./browser.mjs";

const closed = () => document.getElementById("status").textContent.startsWith("closed");

async function chatScenario(context, chatUrl, transport, screenshot) {
  const query = transport ? `transport=${transport}&` : "";
  const expected = transport ?? "websocket"; // by default the page long-polls, then upgrades
  const alice = await openPage(context, `${chatUrl}/?${query}name=alice`);
  await waitText(alice, "status", "connected");
  await waitText(alice, "transport", expected);
  const bob = await openPage(context, `${chatUrl}/?${query}name=bob`);
  await waitText(bob, "status", "connected");
  await waitText(bob, "transport", expected);
  await waitLine(alice, "* bob joined");

  await say(alice, "hello bob");
  await waitLine(bob, "alice: hello bob");
  await waitLine(alice, "alice: hello bob");
  await say(bob, "<b>hi</b> alice");
  await waitLine(alice, "bob: <b>hi</b> alice");
  await waitLine(bob, "bob: <b>hi</b> alice");

  // Each page's state is read while it talks; finalStatus once it has left.
  const bobState = await pageState(bob.page);
  if (transport === "polling") {
    await bob.page.click("#leave"); // socket.close(): a CLOSE packet
    await waitFor(bob, "bob's page to close", closed);
    bobState.finalStatus = (await pageState(bob.page)).status;
  }
  await bob.page.close(); // with a websocket, closing the tab is enough for the server to notice
  await waitLine(alice, "* bob left");
  if (screenshot) {
    mkdirSync(dirname(screenshot), { recursive: true });
    await alice.page.screenshot({ path: screenshot });
  }
  const aliceState = await pageState(alice.page);
  // A polling page's closed tab goes unnoticed until the heartbeat times out: leave explicitly.
  await alice.page.click("#leave");
  await waitFor(alice, "alice's page to close", closed);
  aliceState.finalStatus = (await pageState(alice.page)).status;
  await alice.page.close();
  return { alice: { ...alice.record, ...aliceState }, bob: { ...bob.record, ...bobState } };
}

async function crossOriginScenario(context, { chatUrl, corsChatUrl, foreignUrl }) {
  const foreignPage = (server, extra) => `${foreignUrl}/?server=${encodeURIComponent(server)}&${extra}`;
  const ended = () =>
    document.getElementById("closed").textContent !== "" ||
    document.getElementById("status").textContent === "connected";
  const outcome = {};
  for (const [key, extra] of [
    ["refusedPolling", "name=mallory"],
    ["refusedWebsocket", "name=mallory&transport=websocket"],
  ]) {
    const view = await openPage(context, foreignPage(chatUrl, extra));
    await waitFor(view, "the connection attempt to end", ended);
    outcome[key] = { ...view.record, ...(await pageState(view.page)) };
    await view.page.close();
  }
  const friend = await openPage(context, foreignPage(corsChatUrl, "name=friend"));
  await waitText(friend, "status", "connected");
  await waitText(friend, "transport", "websocket");
  await friend.page.evaluate(() => window.socket.send("hello from another origin"));
  await waitFor(friend, "its own message back", () =>
    [...document.querySelectorAll("#log li")].some((item) => item.textContent.includes("hello from another origin")),
  );
  outcome.allowed = { ...friend.record, ...(await pageState(friend.page)) };
  await friend.page.evaluate(() => window.socket.close());
  await waitFor(friend, "the socket to close", () => document.getElementById("closed").textContent !== "");
  await friend.page.close();
  return outcome;
}

await runInChromium(async (context, config, result) => {
  result.polling = await chatScenario(context, config.chatUrl, "polling");
  result.websocket = await chatScenario(context, config.chatUrl, null, config.screenshot);
  result.crossOrigin = await crossOriginScenario(context, config);
});
