// Open the echo and latency example pages in headless Chromium (see browser.mjs) and use them.
//
//   node pages.mjs '{"echoUrl": ..., "latencyUrl": ...}'
//
// echo: the page upgrades to websocket, a typed line comes back as "echo: ...".
// latency: with ?pause=0 the page measures round trips back to back, once upgraded to websocket
// and once on ?transport=polling; it must show at least 5 of them, with statistics.
// Prints one JSON line: {"ok": true, "echo": ..., "latency": {"websocket": ..., "polling": ...}}.

import { openPage, pageState, runInChromium, say, waitFor, waitText } from "./browser.mjs";

async function echo(context, echoUrl) {
  const view = await openPage(context, `${echoUrl}/`);
  await waitText(view, "transport", "websocket");
  await say(view, "hello, echo");
  await waitFor(view, "the echo", () => document.getElementById("log").textContent.includes("echo: hello, echo"));
  const state = await pageState(view.page);
  await view.page.close();
  return { ...view.record, ...state };
}

async function latency(context, latencyUrl, transport) {
  const query = transport ? `transport=${transport}&` : "";
  const view = await openPage(context, `${latencyUrl}/?${query}pause=0`);
  await waitText(view, "transport", transport ?? "websocket");
  await waitFor(view, "5 round trips", () => Number(document.getElementById("count").textContent) >= 5);
  // One evaluate, so that the numbers and the bars are of the same instant (pings go on meanwhile).
  const state = await view.page.evaluate(() => {
    const text = (id) => document.getElementById(id).textContent;
    const ids = ["transport", "count", "last", "average", "range"];
    return { ...Object.fromEntries(ids.map((id) => [id, text(id)])), bars: document.querySelectorAll("#bars div").length };
  });
  // A closed polling tab would keep its session until the heartbeat times out: close the socket first.
  await view.page.evaluate(() => socket.close());
  await view.page.close();
  return { ...view.record, ...state };
}

await runInChromium(async (context, config, result) => {
  result.echo = await echo(context, config.echoUrl);
  result.latency = {
    websocket: await latency(context, config.latencyUrl, null),
    polling: await latency(context, config.latencyUrl, "polling"),
  };
});
