// Drive the chat example (examples/chat) in two tabs of the system Chromium.
//
// Usage: node tests/js/browser_chat.mjs URL [--screenshot PATH] [--chromium PATH]
//
// Prints one JSON object on stdout:
//   {ok, steps: [{step, ok, ms, detail?}], tab1: {status, items}, tab2: {...},
//    consoleErrors: [...], pageErrors: [...], screenshot}
// and exits 0 even when a step failed (the Python test reads the JSON and asserts);
// it exits 2 only when it cannot run at all (bad arguments, Chromium does not start).

import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const STEP_TIMEOUT = 10_000;

function parseArgs(argv) {
  const out = { url: null, screenshot: "/tmp/chat.png", chromium: "/usr/bin/chromium" };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--screenshot") out.screenshot = argv[++i];
    else if (a === "--chromium") out.chromium = argv[++i];
    else if (!out.url) out.url = a;
    else throw new Error(`unexpected argument ${a}`);
  }
  if (!out.url) throw new Error("usage: browser_chat.mjs URL [--screenshot PATH] [--chromium PATH]");
  return out;
}

const args = (() => {
  try {
    return parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(e.message);
    process.exit(2);
  }
})();

const result = {
  ok: false, steps: [], tab1: null, tab2: null, consoleErrors: [], pageErrors: [], screenshot: null,
};

async function step(name, fn) {
  const t0 = Date.now();
  try {
    const detail = await fn();
    result.steps.push({ step: name, ok: true, ms: Date.now() - t0, ...(detail === undefined ? {} : { detail }) });
    return true;
  } catch (e) {
    result.steps.push({ step: name, ok: false, ms: Date.now() - t0, error: String(e && e.message || e).split("\n")[0] });
    return false;
  }
}

async function snapshot(page) {
  if (!page || page.isClosed()) return null;
  return page.evaluate(() => ({
    status: document.getElementById("status").textContent,
    items: [...document.querySelectorAll("#messages li")].map((li) => ({
      text: li.textContent, system: li.classList.contains("system"),
    })),
  }));
}

function watch(page, label) {
  page.on("console", (msg) => {
    if (msg.type() === "error") result.consoleErrors.push(`${label}: ${msg.text()}`);
  });
  page.on("pageerror", (err) => result.pageErrors.push(`${label}: ${err.message}`));
}

// An <li> of #messages whose text is exactly `text`.
function waitForItem(page, text) {
  return page.waitForFunction(
    (t) => [...document.querySelectorAll("#messages li")].some((li) => li.textContent === t),
    text, { timeout: STEP_TIMEOUT },
  );
}

function waitForStatus(page, fragment) {
  return page.waitForFunction(
    (f) => document.getElementById("status").textContent.includes(f),
    fragment, { timeout: STEP_TIMEOUT },
  );
}

const userDataDir = mkdtempSync(join(tmpdir(), "chat-chromium-"));
let context;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: args.chromium,
    headless: true,
    viewport: { width: 800, height: 560 },
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
    timeout: 30_000,
  });
} catch (e) {
  rmSync(userDataDir, { recursive: true, force: true });
  console.error(`cannot start Chromium at ${args.chromium}: ${e.message}`);
  process.exit(2);
}

try {
  const tab1 = context.pages()[0] || await context.newPage();
  watch(tab1, "tab1");
  let tab2 = null;

  const ok = (
    await step("tab1 loads and connects", async () => {
      await tab1.goto(args.url, { timeout: STEP_TIMEOUT });
      await waitForStatus(tab1, "connected (");
      return await tab1.title();
    })
    && await step("tab1 upgrades to websocket", async () => {
      await waitForStatus(tab1, "websocket");
    })
    && await step("tab2 loads and connects", async () => {
      tab2 = await context.newPage();
      watch(tab2, "tab2");
      await tab2.goto(args.url, { timeout: STEP_TIMEOUT });
      await waitForStatus(tab2, "connected (");
    })
    && await step("tab1 sees 'a user connected'", async () => {
      await waitForItem(tab1, "a user connected");
    })
    && await step("tab1 sends with the button; both tabs show it", async () => {
      await tab1.fill("#input", "hello from tab 1");
      await tab1.click("#send");
      await Promise.all([waitForItem(tab1, "hello from tab 1"), waitForItem(tab2, "hello from tab 1")]);
      return await tab1.inputValue("#input"); // cleared after sending
    })
    && await step("tab2 sends with Enter; both tabs show it", async () => {
      await tab2.fill("#input", "héllo ✓ from tab 2");
      await tab2.press("#input", "Enter");
      await Promise.all([waitForItem(tab1, "héllo ✓ from tab 2"), waitForItem(tab2, "héllo ✓ from tab 2")]);
    })
  );

  result.tab1 = await snapshot(tab1);
  result.tab2 = await snapshot(tab2);
  result.screenshot = await tab1.screenshot({ path: args.screenshot }).then(() => args.screenshot, () => null);

  const closed = ok && await step("closing tab2 shows 'a user disconnected' in tab1", async () => {
    await tab2.close();
    await waitForItem(tab1, "a user disconnected");
  });
  result.ok = Boolean(ok && closed);
} finally {
  await context.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
}

process.stdout.write(JSON.stringify(result) + "\n");
