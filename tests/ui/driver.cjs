// Drives headless Chromium with playwright-core for tests/ui/browser.py: one JSON command
// per line on stdin, one JSON answer per line on stdout ({"ok": value} or {"error": text}).
// Usage: node driver.cjs <folder holding node_modules/playwright-core> <chromium binary>
"use strict";

const path = require("path");
const readline = require("readline");
const { chromium } = require(path.join(process.argv[2], "node_modules", "playwright-core"));

// As the test-infra probe found: without the background-networking flags Chromium keeps
// trying hosts this machine's closed network refuses.
const ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--disable-dev-shm-usage"];

async function main() {
  const browser = await chromium.launch({ executablePath: process.argv[3], headless: true,
    args: ARGS });
  let context = null, page = null;
  const console = [];
  // A fresh context per test: no cookie (so no token) and no state from the test before.
  async function fresh() {
    if (context) await context.close();
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    console.length = 0;
    page.on("console", (message) => console.push(`${message.type()}: ${message.text()}`));
    page.on("pageerror", (error) => console.push(`pageerror: ${error.message}`));
    return true;
  }
  await fresh();

  const commands = {
    fresh,
    goto: ({ url }) => page.goto(url, { waitUntil: "load" }).then((r) => r && r.status()),
    url: () => page.url(),
    click: ({ selector }) => page.click(selector),
    fill: ({ selector, value }) => page.fill(selector, value),
    wait: ({ selector, state, timeout }) => page.waitForSelector(selector,
      { state: state || "visible", timeout: timeout || 20000 }).then(() => true),
    waitFunction: ({ expression, timeout }) => page.waitForFunction(expression, null,
      { timeout: timeout || 20000, polling: 100 }).then(() => true),
    text: ({ selector }) => page.textContent(selector),
    count: ({ selector }) => page.locator(selector).count(),
    evaluate: ({ expression }) => page.evaluate(expression),
    viewport: ({ width, height }) => page.setViewportSize({ width, height }),
    screenshot: ({ file, fullPage }) => page.screenshot({ path: file, fullPage: !!fullPage })
      .then(() => file),
    console: () => console.splice(0),
    close: () => browser.close().then(() => true),
  };

  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (!line.trim()) continue;
    const command = JSON.parse(line);
    let answer;
    try {
      const handler = commands[command.op];
      if (!handler) throw new Error(`unknown op ${command.op}`);
      const value = await handler(command);
      answer = { ok: value === undefined ? null : value };
    } catch (error) {
      answer = { error: String(error && error.message ? error.message : error) };
    }
    process.stdout.write(JSON.stringify(answer) + "\n");
    if (command.op === "close") break;
  }
  await browser.close().catch(() => {});
  process.exit(0);  // stdin may still be open: end here, not when the test closes it
}

main().catch((error) => {
  process.stderr.write(`driver: ${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});
