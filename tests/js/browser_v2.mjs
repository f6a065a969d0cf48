// Load tests/apps/eio3_app.py's page (the socket.io-client 2 bundle) in the system
// Chromium and report what happened: the page's outcome (the ack of a binary "echo") and
// the Content-Type of every Engine.IO request and response, which tells whether XHR2
// binary payloads were used.
//
// Usage: node tests/js/browser_v2.mjs URL [--chromium PATH]
// Prints one JSON object: {outcome, requests: [{method, requestType, responseType}], pageErrors}

import { chromium } from "playwright-core";

const argv = process.argv.slice(2);
const url = argv[0];
const exe = argv.includes("--chromium") ? argv[argv.indexOf("--chromium") + 1] : "/usr/bin/chromium";
if (!url) {
  console.error("usage: browser_v2.mjs URL [--chromium PATH]");
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: exe,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  timeout: 30_000,
});
const report = { outcome: null, requests: [], pageErrors: [] };
try {
  const page = await browser.newPage();
  page.on("pageerror", (e) => report.pageErrors.push(String(e)));
  // headers() is synchronous: an async allHeaders() can still be pending when the browser
  // closes, and its rejection ("Target page ... has been closed") would kill this script.
  page.on("response", (response) => {
    const request = response.request();
    if (!request.url().includes("/socket.io/")) return;
    report.requests.push({
      method: request.method(),
      requestType: request.headers()["content-type"] ?? null,
      responseType: response.headers()["content-type"] ?? null,
      status: response.status(),
    });
  });
  await page.goto(url, { timeout: 15_000 });
  report.outcome = await page.evaluate(
    () => Promise.race([window.outcome, new Promise((r) => setTimeout(() => r({ error: "page timed out" }), 10_000))]),
  );
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
