// Drive examples/socketio_chat (the official socket.io-client browser bundle against
// trio_engineio.socketio) in headless Chromium (Debian's) with playwright-core.
//
//   node socketio_chat.mjs '{"chatUrl": ...}'
//
// Scenarios: "upgrade" (two pages long-poll, upgrade to websocket, talk; bob closes his tab and
// alice sees him leave) and "polling" (two pages on ?transport=polling talk).
// Prints one JSON line: {"ok": true, "upgrade": ..., "polling": ...} (each page: its record from
// browser.mjs and what it showed), or {"ok": false, "error": ...}.

import { openPage, pageState, runInChromium, say, waitLine, waitText } from "./browser.mjs";

async function chatScenario(context, chatUrl, transport) {
  const query = transport ? `transport=${transport}&` : "";
  const expected = transport ?? "websocket";
  const alice = await openPage(context, `${chatUrl}/?${query}name=alice`);
  await waitText(alice, "status", "connected");
  await waitText(alice, "transport", expected);
  const bob = await openPage(context, `${chatUrl}/?${query}name=bob`);
  await waitText(bob, "status", "connected");
  await waitText(bob, "transport", expected);
  await waitLine(alice, "* bob joined");

  await say(alice, "hello bob");
  await waitLine(bob, "alice: hello bob");
  await say(bob, "<b>hi</b> alice");
  await waitLine(alice, "bob: <b>hi</b> alice");
  const bobState = await pageState(bob.page);
  await bob.page.close();
  if (!transport) await waitLine(alice, "* bob left"); // a closed polling tab goes unnoticed until the heartbeat
  const aliceState = await pageState(alice.page);
  await alice.page.close();
  return { alice: { ...alice.record, ...aliceState }, bob: { ...bob.record, ...bobState } };
}

await runInChromium(async (context, config, result) => {
  result.upgrade = await chatScenario(context, config.chatUrl, null);
  result.polling = await chatScenario(context, config.chatUrl, "polling");
});
