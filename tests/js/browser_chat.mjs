// Drive the chat example (examples/chat) as two people, alice and bob, each in a
// browser context of their own in the system Chromium.
//
// Usage: node tests/js/browser_chat.mjs URL [--transports polling|websocket|polling,websocket]
//                                           [--screenshot PATH] [--chromium PATH]
//
// URL is the server's root; the page gets ?transports=... from --transports (by default
// none: the page's own default, polling then the upgrade).
//
// Prints one JSON object on stdout:
//   {ok, steps: [{step, ok, ms, detail?, error?}], alice: {...}, bob: {...},
//    consoleErrors: [...], pageErrors: [...], screenshot}
// where alice/bob are snapshots of the page taken before bob leaves (see snapshot()).
// It exits 0 even when a step failed (the Python test reads the JSON and asserts);
// it exits 2 only when it cannot run at all (bad arguments, Chromium does not start).

import { chromium } from "playwright-core";

const STEP_TIMEOUT = 10_000;

function parseArgs(argv) {
  const out = { url: null, transports: null, screenshot: null, chromium: "/usr/bin/chromium" };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--transports") out.transports = argv[++i];
    else if (a === "--screenshot") out.screenshot = argv[++i];
    else if (a === "--chromium") out.chromium = argv[++i];
    else if (!out.url) out.url = a;
    else throw new Error(`unexpected argument ${a}`);
  }
  if (!out.url) {
    throw new Error("usage: browser_chat.mjs URL [--transports T] [--screenshot PATH] [--chromium PATH]");
  }
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

const pageUrl = (() => {
  const url = new URL(args.url);
  if (args.transports) url.searchParams.set("transports", args.transports);
  return url.href;
})();
// What the engine must end up on: the last transport allowed (the upgrade target).
const expectedTransport = (args.transports || "polling,websocket").split(",").at(-1);

const result = {
  ok: false, url: pageUrl, steps: [], alice: null, bob: null,
  consoleErrors: [], pageErrors: [], screenshot: null,
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

// What a test asserts about one page.
async function snapshot(page) {
  if (!page || page.isClosed()) return null;
  return page.evaluate(() => {
    const text = (id) => document.getElementById(id).textContent;
    const engine = window.chatApp.chat.io.engine;
    return {
      status: text("status"),
      online: text("online"),
      typing: text("typing"),
      nickError: text("nick-error"),
      nickname: document.getElementById("nick-input").value,
      activeRoom: [...document.querySelectorAll(".room.active")].map((b) => b.dataset.room),
      items: [...document.querySelectorAll("#messages li")].map((li) => (
        li.classList.contains("message")
          ? { kind: "message", nickname: li.querySelector(".nickname").textContent,
              text: li.querySelector(".text").textContent, mine: li.classList.contains("mine") }
          : { kind: li.className, text: li.textContent })),
      // The connection itself: both namespaces share one engine, on this transport.
      transport: engine ? engine.transport.name : null,
      sharedConnection: window.chatApp.presence.io === window.chatApp.chat.io,
    };
  });
}

function watch(page, label) {
  page.on("console", (msg) => {
    if (msg.type() === "error") result.consoleErrors.push(`${label}: ${msg.text()}`);
  });
  page.on("pageerror", (err) => result.pageErrors.push(`${label}: ${err.message}`));
}

// An <li> of #messages: a notice whose text is `text`, or a message {nickname, text}.
function waitForItem(page, item) {
  return page.waitForFunction((want) => [...document.querySelectorAll("#messages li")].some((li) => (
    typeof want === "string"
      ? li.classList.contains("notice") && li.textContent === want
      : li.classList.contains("message") && li.querySelector(".nickname").textContent === want.nickname
        && li.querySelector(".text").textContent === want.text
  )), item, { timeout: STEP_TIMEOUT });
}

// Element #id's text satisfies `want`: a string to equal, or {includes: fragment}, or {nonEmpty: true}.
async function waitForText(page, id, want) {
  await page.waitForFunction(([i, w]) => {
    const t = document.getElementById(i).textContent;
    if (typeof w === "string") return t === w;
    if (w.includes !== undefined) return t.includes(w.includes);
    return t !== "";
  }, [id, want], { timeout: STEP_TIMEOUT });
  return page.textContent(`#${id}`);
}

async function openAs(context, label) {
  const page = await context.newPage();
  watch(page, label);
  await page.goto(pageUrl, { timeout: STEP_TIMEOUT });
  await waitForText(page, "status", { includes: "connected (" });
  return page;
}

async function takeNickname(page, nickname) {
  await page.fill("#nick-input", nickname);
  await page.click("#nick-button");
  await waitForItem(page, `You are in #general as ${nickname}`);
}

let browser;
try {
  browser = await chromium.launch({
    executablePath: args.chromium,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    timeout: 30_000,
  });
} catch (e) {
  console.error(`cannot start Chromium at ${args.chromium}: ${e.message}`);
  process.exit(2);
}

try {
  // Two contexts: two people with nothing shared (cookies, storage, connections).
  const contextA = await browser.newContext({ viewport: { width: 820, height: 620 } });
  const contextB = await browser.newContext({ viewport: { width: 820, height: 620 } });
  let alice = null;
  let bob = null;

  const ok = (
    await step("alice loads the page and connects", async () => {
      alice = await openAs(contextA, "alice");
      return await alice.title();
    })
    && await step("alice takes her nickname and is put in #general", async () => {
      await takeNickname(alice, "alice");
      await alice.waitForSelector("#room-general.active", { timeout: STEP_TIMEOUT });
    })
    && await step("bob loads the page and connects", async () => {
      bob = await openAs(contextB, "bob");
    })
    && await step("bob is refused a taken nickname", async () => {
      await bob.fill("#nick-input", "Alice");
      await bob.click("#nick-button");
      return await waitForText(bob, "nick-error", { nonEmpty: true });
    })
    && await step("bob takes another nickname; alice sees him join", async () => {
      await takeNickname(bob, "bob");
      await waitForText(bob, "nick-error", "");
      await waitForItem(alice, "bob joined #general");
    })
    && await step("presence on '/': both pages show 2 online", async () => {
      await Promise.all([waitForText(alice, "online", "2 online"), waitForText(bob, "online", "2 online")]);
    })
    && await step(`both connections are on ${expectedTransport}`, async () => {
      for (const page of [alice, bob]) {
        await page.waitForFunction((t) => window.chatApp.chat.io.engine.transport.name === t,
          expectedTransport, { timeout: STEP_TIMEOUT });
        await waitForText(page, "status", `connected (${expectedTransport})`);
      }
    })
    && await step("alice sees 'bob is typing…' while he types", async () => {
      await bob.locator("#input").pressSequentially("hi al");
      return await waitForText(alice, "typing", "bob is typing…");
    })
    && await step("bob sends with Enter; both show it and alice's indicator clears", async () => {
      await bob.fill("#input", "hi alice");
      await bob.press("#input", "Enter");
      const msg = { nickname: "bob", text: "hi alice" };
      await Promise.all([waitForItem(alice, msg), waitForItem(bob, msg)]);
      await waitForText(alice, "typing", "");
      return await bob.inputValue("#input"); // cleared after sending
    })
    && await step("bob sees alice typing, cleared when she empties the input", async () => {
      await alice.locator("#input").pressSequentially("h");
      await waitForText(bob, "typing", "alice is typing…");
      await alice.fill("#input", "");
      await waitForText(bob, "typing", "");
    })
    && await step("alice sends with the button; both show it", async () => {
      await alice.fill("#input", "héllo bob ✓");
      await alice.click("#send");
      const msg = { nickname: "alice", text: "héllo bob ✓" };
      await Promise.all([waitForItem(alice, msg), waitForItem(bob, msg)]);
    })
    && await step("bob moves to #random; alice sees him leave", async () => {
      await bob.click("#room-random");
      await waitForItem(bob, "You are in #random as bob");
      await waitForItem(alice, "bob left #general");
    })
    && await step("bob talks in #random, comes back and talks in #general", async () => {
      await bob.fill("#input", "only in random");
      await bob.press("#input", "Enter");
      await waitForItem(bob, { nickname: "bob", text: "only in random" });
      await bob.click("#room-general");
      await waitForItem(bob, "You are in #general as bob");
      await bob.fill("#input", "back in general");
      await bob.press("#input", "Enter");
      // Same connection, same order: had "only in random" reached alice, it would be
      // there before this one (the Python test asserts it is not).
      const msg = { nickname: "bob", text: "back in general" };
      await Promise.all([waitForItem(alice, msg), waitForItem(bob, msg)]);
    })
  );

  result.alice = await snapshot(alice).catch((e) => ({ error: String(e) }));
  result.bob = await snapshot(bob).catch((e) => ({ error: String(e) }));
  if (alice && args.screenshot) {
    result.screenshot = await alice.screenshot({ path: args.screenshot }).then(() => args.screenshot, () => null);
  }

  const left = ok && await step("bob closes his page; alice sees him leave and 1 online", async () => {
    // As a person closing the tab does: the page's beforeunload handlers run.
    await bob.close({ runBeforeUnload: true });
    await alice.waitForFunction(
      () => document.querySelector("#messages li:last-child").textContent === "bob left #general",
      null, { timeout: STEP_TIMEOUT });
    await waitForText(alice, "online", "1 online");
    await contextB.close();
  });
  result.ok = Boolean(ok && left);
  if (alice) await alice.close({ runBeforeUnload: true }).catch(() => {}); // leave, even over polling
} finally {
  await browser.close().catch(() => {});
}

process.stdout.write(JSON.stringify(result) + "\n");
