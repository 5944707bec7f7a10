// What the browser scripts share: Debian's Chromium under playwright-core, page records, waits.
//
// Never downloads a browser: it runs config.chromium (default /usr/bin/chromium) with a fresh
// profile directory, removed afterwards.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

// Run main(context, config, result) in a fresh Chromium and print `result` as one JSON line:
// {"ok": true, ...} or {"ok": false, "error": ..., ...what was done}. Exit code 0 only when ok.
// The config comes as JSON in argv[2]; deadlineMs bounds the whole run.
export async function runInChromium(main) {
  const config = JSON.parse(process.argv[2] ?? "{}");
  const result = { ok: false };
  const report = (exitCode) => {
    process.stdout.write(JSON.stringify(result) + "\n");
    process.exitCode = exitCode;
  };
  // A last resort: pytest's own deadline is longer, so a hang is reported with what was done so far.
  const deadlineMs = config.deadlineMs ?? 45_000;
  const watchdog = setTimeout(() => {
    result.error = `did not finish within ${deadlineMs} ms`;
    report(3);
    process.exit();
  }, deadlineMs);
  const userDataDir = mkdtempSync(join(tmpdir(), "trio-engineio-chromium-"));
  let context = null;
  try {
    const started = Date.now();
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: config.chromium ?? "/usr/bin/chromium",
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 800, height: 560 },
    });
    result.launchMs = Date.now() - started;
    const probe = await context.newPage();
    result.userAgent = await probe.evaluate(() => navigator.userAgent);
    await probe.close();
    await main(context, config, result);
    result.totalMs = Date.now() - started;
    result.ok = true;
  } catch (error) {
    result.error = String(error?.stack ?? error);
  } finally {
    await context?.close().catch(() => {});
    rmSync(userDataDir, { recursive: true, force: true });
    clearTimeout(watchdog);
  }
  report(result.ok ? 0 : 1);
}

// A new page at `url`, with a record of its console, uncaught errors and websockets.
export async function openPage(context, url, { waitMs = 10_000 } = {}) {
  const page = await context.newPage();
  const record = { url, console: [], pageErrors: [], websockets: [] };
  page.on("console", (message) => record.console.push(`${message.type()}: ${message.text()}`));
  page.on("pageerror", (error) => record.pageErrors.push(String(error)));
  page.on("websocket", (websocket) => record.websockets.push(websocket.url()));
  await page.goto(url);
  return { page, record, waitMs };
}

// The text of each element with an id, and the lines of #log (if any).
export const pageState = (page) =>
  page.evaluate(() => {
    const state = {};
    for (const element of document.querySelectorAll("body [id]")) {
      if (!["INPUT", "FORM", "BUTTON", "SCRIPT", "UL"].includes(element.tagName)) {
        state[element.id] = element.textContent;
      }
    }
    state.lines = [...document.querySelectorAll("#log li")].map((item) => item.textContent);
    state.markupInLog = document.querySelectorAll("#log b, #log img, #log script").length;
    return state;
  });

// Wait until predicate(arg) is true in the page (polled every 50 ms, up to the page's waitMs);
// on timeout, the error says what the page showed.
export async function waitFor(view, description, predicate, arg) {
  try {
    await view.page.waitForFunction(predicate, arg, { timeout: view.waitMs, polling: 50 });
  } catch (error) {
    const state = await pageState(view.page).catch(() => "unavailable");
    throw new Error(`${view.record.url}: waiting for ${description}: ${error.message}\npage: ${JSON.stringify(state)}`);
  }
}

export const waitText = (view, id, expected) =>
  waitFor(
    view,
    `#${id} to be ${JSON.stringify(expected)}`,
    ([id, expected]) => document.getElementById(id)?.textContent === expected,
    [id, expected],
  );

export const waitLine = (view, line) =>
  waitFor(
    view,
    `the line ${JSON.stringify(line)}`,
    (line) => [...document.querySelectorAll("#log li")].some((item) => item.textContent === line),
    line,
  );

// Type into #input and press Enter, as a person does.
export async function say(view, text) {
  await view.page.fill("#input", text);
  await view.page.press("#input", "Enter");
}
