// Open echo pages in headless Chromium (see browser.mjs) with the network unreachable.
//
//   node offline.mjs '{"pages": {"demo": url, "echo": url}}'
//
// Every request to a host other than 127.0.0.1 is aborted as "internetdisconnected", as on a machine
// without network (websockets go to 127.0.0.1 only: the pages connect to their own origin). Each page
// must load its JavaScript client from its server, connect, upgrade to websocket and echo a line.
// Prints one JSON line: {"ok": true, "blocked": [urls], "pages": {name: record and state}}, where each
// record also lists the page's failed requests and its responses with a status of 400 or more.

import { openPage, pageState, runInChromium, say, waitFor, waitText } from "./browser.mjs";

const logHas = (line) => document.getElementById("log").textContent.split("\n").includes(line);

async function echoOffline(context, url) {
  const failed = [];
  const errors = [];
  const onFailed = (request) => failed.push(`${request.url()}: ${request.failure()?.errorText}`);
  const onResponse = (response) => {
    if (response.status() >= 400) errors.push(`${response.url()}: ${response.status()}`);
  };
  context.on("requestfailed", onFailed);
  context.on("response", onResponse);
  try {
    const view = await openPage(context, url);
    await waitFor(view, 'the line "connected"', logHas, "connected");
    await waitText(view, "transport", "websocket");
    await say(view, "offline hello");
    await waitFor(view, "the echo", logHas, "echo: offline hello");
    const state = await pageState(view.page);
    state.log = await view.page.evaluate(() => document.getElementById("log").textContent);
    await view.page.close();
    return { ...view.record, ...state, failed, errors };
  } finally {
    context.off("requestfailed", onFailed);
    context.off("response", onResponse);
  }
}

await runInChromium(async (context, config, result) => {
  result.blocked = [];
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (new URL(url).hostname === "127.0.0.1") return route.continue();
    result.blocked.push(url);
    return route.abort("internetdisconnected");
  });
  result.pages = {};
  for (const [name, url] of Object.entries(config.pages)) {
    result.pages[name] = await echoOffline(context, url);
  }
});
