// The web app over `lockerctl sim web` (no Bluetooth: the app finds relay.json and talks to
// the simulator through the WebSocket relay), in headless Chromium. Run by
// host_tests/test_webapp.py with RELAY_BASE (the served app), CRED_FILE, SIM_CONTROL_PORT,
// CHROMIUM; skipped without them.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ENV = process.env;
const skip = ENV.RELAY_BASE && ENV.CRED_FILE && existsSync(ENV.CHROMIUM || "/usr/bin/chromium")
  ? false : "needs `lockerctl sim web` and Chromium: run through host_tests/test_webapp.py";
let browser, page, userDir;

function control(cmd) {
  return new Promise((resolve, reject) => {
    const s = net.connect(Number(ENV.SIM_CONTROL_PORT), "127.0.0.1");
    let buf = "";
    s.on("connect", () => s.write(JSON.stringify(cmd) + "\n"));
    s.on("data", (d) => {
      buf += d;
      if (!buf.includes("\n")) return;
      s.destroy();
      try { resolve(JSON.parse(buf)); } catch (e) { reject(e); }
    });
    s.on("error", reject);
  });
}

const text = (sel) => page.$eval(sel, (e) => e.textContent.trim());
const waitView = (id) => page.waitForFunction((v) => document.body.dataset.view === v,
  { timeout: 20000 }, id);

before(async () => {
  if (skip) return;
  const { default: puppeteer } = await import("puppeteer-core");
  userDir = mkdtempSync(join(tmpdir(), "webapp-relay-"));
  browser = await puppeteer.launch({
    executablePath: ENV.CHROMIUM || "/usr/bin/chromium", headless: true, userDataDir: userDir,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  page = await browser.newPage();
  await page.setViewport({ width: 412, height: 860, isMobile: true, hasTouch: true });
});

after(async () => {
  if (browser) await browser.close();
  if (userDir) rmSync(userDir, { recursive: true, force: true });
});

test("deposit and pickup through the simulator relay", { skip }, async () => {
  await page.goto(ENV.RELAY_BASE);
  await page.waitForFunction(() => document.body.dataset.ready === "1");
  assert.equal(await text("#via"), "via simulator relay");
  assert.equal(await page.$eval("#no-ble", (e) => e.hidden), true, "no Bluetooth warning with a relay");
  await page.click("#go-courier");
  await (await page.$("#c-file")).uploadFile(ENV.CRED_FILE);
  await page.waitForSelector("#c-hascred:not([hidden])");
  await page.click('.size[data-size="3"]');
  await page.click("#c-deposit");
  await waitView("v-c-result");
  const slot = Number(/Slot (\d+) is open/.exec(await text("#cr-title"))[1]);
  assert.equal((await control({ cmd: "status" })).slots[slot - 1][1], 3, "an L slot");
  const link = await page.$eval("#cr-link", (e) => e.value);
  await page.goto("about:blank");
  await page.goto(link);
  await waitView("v-recipient");
  await page.click("#r-open");
  await waitView("v-r-result");
  assert.equal(await text("#rr-title"), `Slot ${slot} is open`);
  assert.equal((await control({ cmd: "status" })).slots[slot - 1][2], 0, "slot free again");
});
