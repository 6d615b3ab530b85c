#!/usr/bin/env node
// Runs the browser benchmark page (web/bench.html) in headless Chromium against a kluis server
// on a loopback port and prints its figures. Not part of CI (figures, not pass or fail).
//   bash scripts/build-web.sh --release && cargo build --release -p kluis-server
//   node scripts/bench-web.mjs [notes, default 10000]
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const { chromium } = createRequire(join(root, "tests/e2e/package.json"))("playwright-core");
const n = Number(process.argv[2] || 10000);
const profile = process.env.KLUIS_PROFILE || "release";
const dir = mkdtempSync(join(tmpdir(), "kluis-bench-"));
const server = spawn(join(root, "target", profile, "kluis-server"),
  ["serve", "--data", join(dir, "data"), "--listen", "127.0.0.1:0", "--http-listen", "off", "--web", join(root, "target/web")],
  { stdio: ["ignore", "ignore", "pipe"] });
const url = await new Promise((res, rej) => {
  createInterface({ input: server.stderr }).on("line", (l) => { const m = l.match(/(https:\/\/\S+\/)\s/); if (m) res(m[1]); });
  server.on("exit", () => rej(new Error("the server stopped")));
});
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium" });
try {
  const page = await (await browser.newContext({ ignoreHTTPSErrors: true })).newPage();
  let failed = null;
  page.on("pageerror", (e) => { failed = e; });
  await page.goto(`${url}bench.html?auto&n=${n}`);
  // Done, or stopped by an error on the page (reported instead of waiting for the timeout).
  await page.waitForFunction(() => /done|error/.test(document.getElementById("results").textContent), null, { timeout: 600000 });
  if (failed) throw failed;
  console.log(await page.textContent("#results"));
} finally {
  await browser.close();
  server.kill("SIGTERM");
  rmSync(dir, { recursive: true, force: true });
}
