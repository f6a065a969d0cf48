// Load the Admin UI page (@socket.io/admin-ui's ui/dist, served by socketio_sync.admin.ui_app)
// in the system Chromium, log in through its connection form, and read what it shows.
//
// Usage: node tests/js/admin_ui.mjs PAGE_URL SERVER_URL [--username U --password P]
//            [--expect-socket ID ...] [--expect-room NAME ...] [--screenshot PATH] [--chromium PATH]
//
// Prints one JSON object on stdout:
//   {ok, steps: [{step, ok, ms, detail?, error?}], socketsText, roomsText, serversText,
//    requests: [urls outside PAGE_URL's origin], consoleErrors, pageErrors, screenshot}
// Exits 0 even when a step failed (the Python test asserts on the JSON); 2 when it cannot run.

import { chromium } from "playwright-core";

const STEP_TIMEOUT = 15_000;

function parseArgs(argv) {
  const out = { page: null, server: null, username: "", password: "", sockets: [], rooms: [],
    screenshot: null, chromium: "/usr/bin/chromium" };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--username") out.username = argv[++i];
    else if (a === "--password") out.password = argv[++i];
    else if (a === "--expect-socket") out.sockets.push(argv[++i]);
    else if (a === "--expect-room") out.rooms.push(argv[++i]);
    else if (a === "--screenshot") out.screenshot = argv[++i];
    else if (a === "--chromium") out.chromium = argv[++i];
    else if (!out.page) out.page = a;
    else if (!out.server) out.server = a;
    else throw new Error(`unexpected argument ${a}`);
  }
  if (!out.page || !out.server) throw new Error("usage: admin_ui.mjs PAGE_URL SERVER_URL [options]");
  return out;
}

let args;
try {
  args = parseArgs(process.argv.slice(2));
} catch (e) {
  console.error(e.message);
  process.exit(2);
}

const result = { ok: false, steps: [], socketsText: "", roomsText: "", serversText: "",
  requests: [], consoleErrors: [], pageErrors: [], screenshot: null };

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

let browser;
try {
  browser = await chromium.launch({ executablePath: args.chromium, args: ["--no-sandbox"] });
} catch (e) {
  console.error(`cannot start Chromium at ${args.chromium}: ${e.message}`);
  process.exit(2);
}

const origin = new URL(args.page).origin;
const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
// No network beyond the test server: anything else is recorded and refused.
await context.route("**/*", (route) => {
  const url = route.request().url();
  if (url.startsWith(origin) || url.startsWith(args.server)) return route.continue();
  result.requests.push(url);
  return route.abort();
});
const page = await context.newPage();
page.on("console", (msg) => { if (msg.type() === "error") result.consoleErrors.push(msg.text()); });
page.on("pageerror", (err) => result.pageErrors.push(String(err.message || err)));

const textOf = () => page.evaluate(() => document.body.innerText);

try {
  let ok = await step("the page loads", async () => {
    await page.goto(args.page, { timeout: STEP_TIMEOUT });
    await page.waitForSelector("text=Server URL", { timeout: STEP_TIMEOUT });
    return await page.title();
  });
  ok = ok && await step("log in through the connection form", async () => {
    await page.getByLabel("Server URL").fill(args.server);
    if (args.username) await page.getByLabel("Username").fill(args.username);
    if (args.password) await page.getByLabel("Password").fill(args.password);
    await page.getByRole("button", { name: /connect/i }).click();
    // the header's status chip says so, and the form's dialog closes
    await page.waitForSelector(".v-chip:has-text('connected')", { timeout: STEP_TIMEOUT });
    await page.waitForSelector(".v-dialog--active", { state: "detached", timeout: STEP_TIMEOUT });
    await page.waitForSelector(".v-overlay--active", { state: "detached", timeout: STEP_TIMEOUT });
    return (await page.locator(".v-chip").first().innerText()).trim();
  });
  ok = ok && await step("the icon font is loaded from the server", async () => {
    return await page.evaluate(async () => {
      await document.fonts.ready;
      const faces = [...document.fonts].filter((f) => f.family.includes("Material Design Icons"));
      return { faces: faces.length, loaded: faces.filter((f) => f.status === "loaded").length,
               icons: document.querySelectorAll(".mdi").length };
    });
  });
  ok = ok && await step("the sockets page lists the sockets", async () => {
    await page.goto(new URL("#/sockets/", args.page).href);
    for (const id of args.sockets) {
      await page.waitForSelector(`text=${id}`, { timeout: STEP_TIMEOUT });
    }
    result.socketsText = await textOf();
  });
  ok = ok && await step("the rooms page lists the rooms", async () => {
    await page.goto(new URL("#/rooms/", args.page).href);
    for (const room of args.rooms) {
      await page.waitForSelector(`text=${room}`, { timeout: STEP_TIMEOUT });
    }
    result.roomsText = await textOf();
  });
  ok = ok && await step("the servers page shows this server", async () => {
    await page.goto(new URL("#/servers/", args.page).href);
    await page.waitForSelector("text=observe-test", { timeout: STEP_TIMEOUT });
    result.serversText = await textOf();
  });
  if (args.screenshot) {
    await step("screenshot of the rooms page", async () => {
      await page.goto(new URL("#/rooms/", args.page).href);
      for (const room of args.rooms) {
        await page.waitForSelector(`text=${room}`, { timeout: STEP_TIMEOUT });
      }
      await page.waitForTimeout(400);  // the route's fade-in transition
      await page.screenshot({ path: args.screenshot, animations: "disabled" });
      result.screenshot = args.screenshot;
    });
  }
  result.ok = result.steps.every((s) => s.ok);
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
