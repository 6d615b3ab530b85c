// The browser app end to end: real headless Chromium (Debian's, through playwright-core)
// against the real kluis-server on a loopback port, with a key file made by kluis-keys.
// Run by scripts/test.sh after `cargo test` (which builds both binaries) and
// scripts/build-web.sh (which builds the app into target/web).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";
import { prepareZXingModule, readBarcodes } from "zxing-wasm/reader";
import { startProxy } from "./tamper-proxy.mjs";

// A QR reader (ZXing-C++ in wasm) for what the page shows, with its wasm from the package
// rather than a CDN.
{
  const wasm = readFileSync(createRequire(import.meta.url).resolve("zxing-wasm/reader/zxing_reader.wasm"));
  prepareZXingModule({ overrides: { wasmBinary: wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength) } });
}

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const bin = (name) => join(root, "target", process.env.KLUIS_PROFILE || "debug", name);
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const PASSWORD = "ochtendmist boven de polder";

let dir, server, url, code, browser, keyFile, fingerprint, port, adminSecret;

// A fixed port for the whole run, so the origin (and the browser's IndexedDB) survives restarts.
function freePort() {
  return new Promise((res) => {
    const s = createServer().listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => res(p)); });
  });
}

function stopServer() {
  return new Promise((res) => { server.once("exit", res); server.kill("SIGTERM"); });
}

// Every file of a directory tree, for looking for plaintext on the server's disk.
function filesUnder(d) {
  return readdirSync(d).flatMap((f) => {
    const st = statSync(join(d, f));
    return st.isDirectory() ? filesUnder(join(d, f)) : st.isFile() ? [join(d, f)] : [];
  });
}

function startServer() {
  return new Promise((resolveStart, reject) => {
    const child = spawn(bin("kluis-server"), [
      "serve", "--data", join(dir, "data"), "--listen", `127.0.0.1:${port}`, "--http-listen", "off",
      "--web", join(root, "target", "web"),
    ], { stdio: ["ignore", "ignore", "pipe"] });
    const lines = [];
    const rl = createInterface({ input: child.stderr });
    rl.on("line", (line) => {
      lines.push(line);
      const m = line.match(/(https:\/\/\S+\/)\s/);
      if (m && !url) url = m[1];
      const c = line.match(/enrollment code:\s+(\S+)/);
      if (c) code = c[1];
      if (line.includes("Stop with Ctrl-C")) resolveStart(child);
    });
    child.on("exit", (status) => reject(new Error(`server exited (${status}):\n${lines.join("\n")}`)));
  });
}

// The steps a user takes, as the tests repeat them.
// All the tests' requests come from one address, whose sign-in attempts the server throttles
// (30 a minute after a burst of 10): like a user, a step that is told to wait waits and tries
// again.
async function untilNotThrottled(page, path, step) {
  for (let attempt = 0; ; attempt++) {
    const [res] = await Promise.all([
      page.waitForResponse((r) => new URL(r.url()).pathname === path && r.request().method() === "POST"),
      step(),
    ]);
    if (res.status() !== 429 || attempt === 10) return res;
    await new Promise((r) => setTimeout(r, Number(res.headers()["retry-after"] || 2) * 1000 + 100));
  }
}

// The mail the server wrote to its outbox (no relay in these tests), as file names and texts
// without quoted-printable soft line breaks.
const outbox = () => join(dir, "data", "outbox");
const outboxNames = () => new Set(existsSync(outbox()) ? readdirSync(outbox()).filter((f) => f.endsWith(".eml")) : []);
async function mailSince(before, test) {
  for (let i = 0; i < 100; i++) {
    const found = [...outboxNames()].filter((f) => !before.has(f)).sort()
      .map((f) => readFileSync(join(outbox(), f), "utf8").replace(/=\r?\n/g, "").replace(/=3D/g, "=")).filter(test);
    if (found.length) return found[found.length - 1];
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("no such mail arrived");
}
// The code that confirms a new browser of `username`, mailed after `before`.
async function browserCode(username, before) {
  const mail = await mailSince(before, (m) => m.includes(`To: ${username}@example.org`) && m.includes("confirm it: "));
  return mail.match(/confirm it: (\d{6})/)[1];
}

// A sign-in from a browser the account does not trust yet is confirmed with the mailed code,
// as its owner would; `{ confirm: false }` leaves the page at that step.
let signingIn = null;
async function confirmBrowserIfAsked(page, res, { confirm = true } = {}) {
  const body = res.ok() ? await res.json().catch(() => ({})) : {};
  if (body.second_step !== "device" || !confirm) return body;
  await page.getByRole("heading", { name: "Confirm this browser" }).waitFor();
  const code = await browserCode(signingIn.username, signingIn.before);
  await untilNotThrottled(page, "/api/sign-in/device", async () => {
    await page.getByLabel("Code from the message").fill(code);
    await page.getByRole("button", { name: "Confirm this browser" }).click();
  });
  return body;
}

async function signIn(page, username = "admin", password = PASSWORD, options = {}) {
  const signin = page.locator("#signin-form");
  signingIn = { username, before: outboxNames() };
  const res = await untilNotThrottled(page, "/api/sign-in", async () => {
    await signin.getByLabel("Username").fill(username);
    await signin.getByLabel("Password").fill(password);
    await page.getByRole("button", { name: "Sign in" }).click();
  });
  return confirmBrowserIfAsked(page, res, options);
}

// The second step of a sign-in (then the new browser's confirmation, if asked).
async function typeCode(page, code, options = {}) {
  const res = await untilNotThrottled(page, "/api/sign-in/second-factor", async () => {
    await page.locator("#signin-code").getByLabel("Code from your authenticator app").fill(code);
    await page.getByRole("button", { name: "Confirm", exact: true }).click();
  });
  return confirmBrowserIfAsked(page, res, options);
}

async function enrollWith(page, enrollmentCode, email) {
  await page.getByRole("button", { name: "I have an enrollment code" }).click();
  const enroll = page.locator("#enroll");
  await enroll.getByLabel("Enrollment code").fill(enrollmentCode);
  await enroll.getByLabel("Password", { exact: true }).fill(PASSWORD);
  await enroll.getByLabel("E-mail address").fill(email);
  await untilNotThrottled(page, "/api/enroll", () => page.getByRole("button", { name: "Enroll" }).click());
}

// Opens Practice settings and waits until the admin's browser has checked the audit trail.
async function openPracticeTrail(page) {
  await page.getByRole("button", { name: "Practice settings" }).click();
  await page.getByRole("heading", { name: "Practice settings" }).waitFor();
  await page.locator("#audit-state:not(:empty), #audit-warning:not([hidden])").first().waitFor();
}

async function unlockWith(page, file) {
  await page.getByLabel("Key file", { exact: true }).setInputFiles(file);
  await page.getByRole("button", { name: "Unlock" }).click();
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "kluis-e2e-"));
  keyFile = join(dir, "dr-e2e.kluis");
  execFileSync(bin("kluis-keys"), ["generate", "--out", keyFile, "--label", "Dr E2E"], { stdio: "ignore" });
  const inspected = execFileSync(bin("kluis-keys"), ["inspect", keyFile], { encoding: "utf8" });
  fingerprint = inspected.match(/^fingerprint:\s+(\S+)/m)[1];
  port = await freePort();
  server = await startServer();
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
});

after(async () => {
  await browser?.close();
  server?.kill("SIGTERM");
  rmSync(dir, { recursive: true, force: true });
});

test("enroll, unlock with a kluis-keys key file, lock, sign out and in again", async () => {
  const context = await browser.newContext({ ignoreHTTPSErrors: true }); // the development certificate
  const page = await context.newPage();
  const problems = [];
  // Console errors, except the expected 401 of asking /api/me before signing in.
  page.on("console", (m) => {
    if (m.type() === "error" && !/status of 401/.test(m.text())) problems.push(m.text());
  });
  page.on("pageerror", (e) => problems.push(String(e)));
  const res = await page.goto(url);
  // The page is served with the strict CSP, and every script carries its SRI hash.
  assert.match(res.headers()["content-security-policy"], /script-src 'self' 'wasm-unsafe-eval'/);
  const integrity = await page.$$eval("script[src]", (s) => s.map((e) => e.integrity));
  assert.equal(integrity.length, 3);
  for (const i of integrity) assert.match(i, /^sha384-[A-Za-z0-9+/]{64}$/);

  // First sign-in: enrollment with the code the server printed.
  await enrollWith(page, code, "admin@example.org");
  await page.getByRole("heading", { name: "Unlock your vault", exact: true }).waitFor();

  // Unlock with the key file kluis-keys made: the app shows the same fingerprint.
  await unlockWith(page, keyFile);
  await page.getByRole("heading", { name: "Your vault", exact: true }).waitFor();
  assert.equal(await page.locator("#vault-fingerprint").textContent(), fingerprint);
  assert.equal(await page.locator("#vault-label").textContent(), "Dr E2E");

  // Lock: back to the key file; nothing of the key is in the browser's storage.
  await page.getByRole("button", { name: "Lock" }).click();
  await page.getByRole("heading", { name: "Unlock your vault", exact: true }).waitFor();
  const stored = await page.evaluate(async () => {
    const all = [];
    for (const s of [localStorage, sessionStorage]) for (let i = 0; i < s.length; i++) all.push(s.key(i), s.getItem(s.key(i)));
    const dbs = indexedDB.databases ? await indexedDB.databases() : [];
    return { all, dbs: dbs.length };
  });
  const secretLine = execFileSync("grep", ["-v", "^#", keyFile], { encoding: "utf8" }).trim();
  for (const v of stored.all) assert.ok(!String(v).includes(secretLine.slice(20, 60)), "key material in web storage");

  // Sign out, then sign in again on the same browser: with the keyboard alone.
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("heading", { name: "Sign in", exact: true }).waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.id), "signin-username", "focus starts in the form");
  await page.keyboard.type("admin");
  await page.keyboard.press("Tab");
  await page.keyboard.type(PASSWORD);
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { name: "Unlock your vault", exact: true }).waitFor();
  // No code was asked: enrollment made this browser a trusted device, and its device key (a
  // WebCrypto key no script can read out) is kept where sign-out does not clear it.
  const device = await page.evaluate(() => new Promise((resolve) => {
    const open = indexedDB.open("kluis-device");
    open.onsuccess = () => {
      const r = open.result.transaction("device-key").objectStore("device-key").get("ecdsa-p256:admin");
      r.onsuccess = () => resolve({ type: r.result.privateKey.type, extractable: r.result.privateKey.extractable,
        curve: r.result.privateKey.algorithm.namedCurve, storage: localStorage.length });
    };
  }));
  assert.deepEqual(device, { type: "private", extractable: false, curve: "P-256", storage: 0 });
  await unlockWith(page, keyFile);
  await page.getByRole("heading", { name: "Your vault", exact: true }).waitFor();
  assert.equal(await page.locator("#vault-fingerprint").textContent(), fingerprint);

  // Readable at 1280x800 and in a narrow window: nothing runs off the side.
  for (const [width, height] of [[1280, 800], [360, 740]]) {
    await page.setViewportSize({ width, height });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `${width}px wide: ${overflow}px run off the side`);
  }
  // Every form control has a label (for screen readers).
  const unlabelled = await page.$$eval("input:not([type=hidden]), textarea, select",
    (els) => els.filter((e) => !(e.labels && e.labels.length)).map((e) => e.id || e.name));
  assert.deepEqual(unlabelled, []);

  // The public page says what kluis cannot protect, in plain words.
  await page.getByRole("link", { name: "What kluis protects, and what it cannot" }).click();
  await page.getByRole("heading", { name: "What kluis protects, and what it cannot" }).waitFor();
  assert.match(await page.textContent("main"), /Whoever has a copy of your key file/);
  assert.match(await page.textContent("main"), /The server delivers this app's code/);

  assert.deepEqual(problems, [], "no console errors and no CSP violations");
  await context.close();
});

test("a new browser gets in only once confirmed, by the mailed code or from a trusted browser; browsers are listed, renamed and removed; an optional e-mail is stopped in one click", async () => {
  const start = outboxNames();
  const open = async (onDialog) => {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    if (onDialog) page.on("dialog", onDialog);
    await page.goto(url);
    return { context, page };
  };
  const typeBrowserCode = (page, code) => untilNotThrottled(page, "/api/sign-in/device", async () => {
    await page.getByLabel("Code from the message").fill(code);
    await page.getByRole("button", { name: "Confirm this browser" }).click();
  });
  // Browser A, new to the account: the right password gets no session until the code.
  const { context: ctxA, page: a } = await open((d) => d.accept(d.type() === "prompt" ? "Reception PC" : undefined));
  const askedA = await signIn(a, "admin", PASSWORD, { confirm: false });
  assert.deepEqual([askedA.second_step, askedA.channels], ["device", ["e-mail", "device"]]);
  await a.getByRole("heading", { name: "Confirm this browser" }).waitFor();
  assert.match(await a.locator("#confirm-device-channels").textContent(), /your e-mail address/);
  assert.equal((await ctxA.request.get(`${url}api/me`)).status(), 401, "no session before the browser is confirmed");
  const code = await browserCode("admin", signingIn.before);
  await typeBrowserCode(a, code === "000000" ? "000001" : "000000");
  await a.getByText(/wrong username, password or code/).waitFor();
  await typeBrowserCode(a, code);
  await a.getByRole("heading", { name: "Unlock your vault", exact: true }).waitFor();

  // Browser B waits, and A lets it in (A's page announces it by itself).
  const { context: ctxB, page: b } = await open();
  const { number } = await signIn(b, "admin", PASSWORD, { confirm: false });
  await b.getByRole("heading", { name: "Confirm this browser" }).waitFor();
  assert.match(await b.locator("#confirm-device-approval").textContent(), new RegExp(`type the number ${number}`));
  await a.getByText("A new browser is waiting to sign in to your account.").waitFor({ timeout: 15000 });
  await a.getByRole("button", { name: "Review it" }).click();
  await a.locator("#devices-pending li").first().waitFor();
  assert.match(await a.locator("#devices-pending").textContent(), /Waiting to sign in: .+ on Linux, from 127\.0\.0\.1/);
  await a.getByLabel("Number it shows").fill(number);
  await a.getByRole("button", { name: "Let it in" }).click();
  await a.getByText("The new browser is let in.").waitFor();
  await b.getByRole("heading", { name: "Unlock your vault", exact: true }).waitFor({ timeout: 15000 });

  // Browser C is refused from A.
  const { context: ctxC, page: c } = await open();
  await signIn(c, "admin", PASSWORD, { confirm: false });
  await c.getByRole("heading", { name: "Confirm this browser" }).waitFor();
  await a.locator("#devices-pending li").first().waitFor({ timeout: 15000 });
  await a.getByRole("button", { name: "Refuse" }).click();
  await c.getByText("This browser was refused from one of your trusted browsers.").waitFor({ timeout: 15000 });
  await c.getByRole("heading", { name: "Sign in", exact: true }).waitFor();

  // A's list: B is renamed, then removed; B's session ends at once, and its next sign-in is
  // confirmed again.
  const rowB = a.locator("#devices-list li", { hasText: "confirmed by device" });
  await rowB.getByRole("button", { name: "Rename" }).click();
  await a.locator("#devices-list li", { hasText: "Reception PC" }).waitFor();
  assert.match(await a.locator("#devices-list li", { hasText: "(this browser)" }).textContent(), /code by e-mail/);
  assert.equal((await ctxB.request.get(`${url}api/me`)).status(), 200);
  await a.locator("#devices-list li", { hasText: "Reception PC" }).getByRole("button", { name: "Remove" }).click();
  await a.getByText("The browser was removed.").waitFor();
  assert.equal((await ctxB.request.get(`${url}api/me`)).status(), 401, "its session ended");
  await b.goto(url);
  assert.equal((await signIn(b, "admin", PASSWORD, { confirm: false })).second_step, "device");

  // A keeps its device key across a sign-out: no code the next time.
  await a.getByRole("button", { name: "Sign out" }).click();
  assert.equal((await signIn(a, "admin")).username, "admin");
  await a.getByRole("heading", { name: "Unlock your vault", exact: true }).waitFor();

  // The e-mail about a new browser is optional: its link opens a page that changes nothing
  // until the click.
  const notice = await mailSince(start, (m) => m.includes("To: admin@example.org") && m.includes("A new browser for your kluis account"));
  assert.match(notice, /List-Unsubscribe-Post: List-Unsubscribe=One-Click/);
  const link = notice.match(/https:\/\/\S+\/api\/unsubscribe\?token=[A-Za-z0-9_-]{22}/)[0];
  assert.ok(link.startsWith(url), `${link} is not on ${url}`);
  const prefs = async () => (await ctxA.request.get(`${url}api/account/notifications`)).json();
  const act = await ctxC.newPage();
  await act.goto(link);
  await act.getByRole("heading", { name: "Stop these e-mails" }).waitFor();
  assert.equal(new URL(act.url()).hash, "", "the token leaves the address bar");
  assert.equal((await prefs()).new_device, true, "opening the link changed nothing");
  await act.getByRole("button", { name: "Stop these e-mails" }).click();
  await act.getByText(/^Done: you get no more e-mails of that kind/).waitFor();
  assert.equal((await prefs()).new_device, false);
  // ... and A turns them on again under Account and security.
  await a.getByRole("button", { name: "Account and security" }).click();
  await a.getByRole("heading", { name: "Account and security" }).waitFor();
  const box = a.getByLabel("When a new browser is confirmed for my account");
  assert.equal(await box.isChecked(), false);
  await box.check();
  await a.getByRole("button", { name: "Save", exact: true }).click();
  await a.getByText("Your e-mail choices are saved.").waitFor();
  assert.equal((await prefs()).new_device, true);

  // On a shared computer: browser D, confirmed by the mailed code, removes itself. It is signed
  // out and forgets its key for the account, so a next sign-in there is confirmed again.
  const { context: ctxD, page: d } = await open((dialog) => dialog.accept());
  await signIn(d, "admin");
  await d.getByRole("heading", { name: "Unlock your vault", exact: true }).waitFor();
  const keyOfAdmin = () => d.evaluate(() => new Promise((resolve) => {
    const open = indexedDB.open("kluis-device");
    open.onsuccess = () => {
      const r = open.result.transaction("device-key").objectStore("device-key").get("ecdsa-p256:admin");
      r.onsuccess = () => resolve(r.result !== undefined);
    };
  }));
  assert.equal(await keyOfAdmin(), true);
  await d.getByRole("button", { name: "Account and security" }).click();
  await d.locator("#devices-list li", { hasText: "(this browser)" }).getByRole("button", { name: "Remove" }).click();
  await d.getByText("This browser was removed and has forgotten its key for your account.").waitFor();
  await d.getByRole("heading", { name: "Sign in", exact: true }).waitFor();
  assert.equal(await keyOfAdmin(), false, "the key pair is gone from IndexedDB");
  assert.equal((await ctxD.request.get(`${url}api/me`)).status(), 401);
  assert.equal((await signIn(d, "admin", PASSWORD, { confirm: false })).second_step, "device");
  for (const ctx of [ctxA, ctxB, ctxC, ctxD]) await ctx.close();
});

test("clients and SOAP notes: saved encrypted, edited with history, searched, kept across a reload; an older state only after the user accepts it as a restore", async () => {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  page.on("dialog", (d) => d.accept());
  const problems = [];
  page.on("pageerror", (e) => problems.push(String(e)));
  const unlock = () => unlockWith(page, keyFile);
  await page.goto(url);
  await signIn(page);
  await page.getByRole("heading", { name: "Unlock your vault", exact: true }).waitFor();
  await unlock();
  await page.getByRole("heading", { name: "Your vault", exact: true }).waitFor();

  // A client, then a note for them.
  const clientForm = page.locator("#client-form");
  await clientForm.getByLabel("Name").fill("Jan Jansen");
  await clientForm.getByLabel("Phone").fill("06-12345678");
  await page.getByRole("button", { name: "Save client" }).click();
  await page.getByRole("button", { name: "Jan Jansen" }).click();
  await page.getByRole("heading", { name: "Jan Jansen", exact: true }).waitFor();
  await page.getByLabel("Subjective").fill("Knee pain after running, three weeks.");
  await page.getByLabel("Assessment").fill("Patellofemoral pain.");
  await page.getByLabel("Tags (separated by commas)").fill("knee, sport");
  await page.getByRole("button", { name: "Save note" }).click();
  await page.locator("#notes li.note").first().waitFor();
  assert.match(await page.locator("#notes").textContent(), /Knee pain after running/);

  // Edit: a new version; the history shows the first.
  await page.getByRole("button", { name: "Edit", exact: true }).click();
  await page.getByLabel("Plan").fill("Exercises twice a day.");
  await page.getByRole("button", { name: "Save note" }).click();
  await page.getByText("Exercises twice a day.").waitFor();
  await page.getByRole("button", { name: "History" }).click();
  await page.getByText("Version 1").waitFor();
  assert.doesNotMatch(await page.locator("#history-list").textContent(), /Exercises/);

  // Search, in memory.
  await page.getByRole("button", { name: "All clients" }).click();
  await page.getByLabel("Search notes (only in this browser)").fill("patello");
  await page.locator("#search-results li.note").first().waitFor();
  assert.match(await page.locator("#search-results").textContent(), /Jan Jansen/);

  // The server holds none of it in the clear: not in the stores, not anywhere in its data.
  for (const f of filesUnder(join(dir, "data"))) {
    const raw = readFileSync(f);
    for (const canary of ["Knee pain", "Jan Jansen", "Patellofemoral", "06-12345678", "Exercises"]) {
      assert.ok(!raw.includes(canary), `${canary} found in ${f}`);
    }
  }

  // A reload: sign-in is kept, the key file unlocks again, everything is back.
  await page.reload();
  await page.getByRole("heading", { name: "Unlock your vault", exact: true }).waitFor();
  await unlock();
  await page.getByRole("button", { name: "Jan Jansen" }).click();
  await page.getByText("Exercises twice a day.").waitFor();
  const state = await page.locator("#vault-state").textContent();

  // Behind the app's back: the server's notes store is rolled back to before the edit.
  await page.getByRole("button", { name: "All clients" }).click();
  await page.getByRole("button", { name: "Lock" }).click();
  // Behind the app's back, as a restore from backup would: both stores go back to a copy.
  await stopServer();
  const stores = ["notes", "identities"].map((s) => [join(dir, "data", s), join(dir, `${s}-before`)]);
  for (const [live, copy] of stores) cpSync(live, copy, { recursive: true });
  server = await startServer();
  await unlock();
  await page.getByRole("button", { name: "Jan Jansen" }).click();
  await page.getByRole("button", { name: "Edit", exact: true }).click();
  await page.getByLabel("Objective").fill("Swelling gone.");
  await page.getByRole("button", { name: "Save note" }).click();
  await page.getByText("Swelling gone.").waitFor();
  await page.getByRole("button", { name: "Edit client details" }).click();
  await page.locator("#client-form").getByLabel("Phone").fill("06-87654321");
  await page.getByRole("button", { name: "Save client" }).click();
  await page.getByText("Client saved").waitFor();
  await page.getByRole("button", { name: "All clients" }).click();
  await page.getByRole("button", { name: "Lock" }).click();
  // A second device (its own browser profile) sees this newest state too.
  const context2 = await browser.newContext({ ignoreHTTPSErrors: true });
  const page2 = await context2.newPage();
  await page2.goto(url);
  await signIn(page2);
  await unlockWith(page2, keyFile);
  await page2.getByRole("heading", { name: "Your vault", exact: true }).waitFor();
  await page2.getByRole("button", { name: "Lock" }).click();
  await stopServer();
  for (const [live, copy] of stores) {
    rmSync(live, { recursive: true, force: true });
    cpSync(copy, live, { recursive: true });
  }
  server = await startServer();
  await unlock();
  // The app does not take the older state: it explains both possible causes, with the dates of
  // both states and what would be set aside, and nothing of it is shown as the vault. The
  // client list comes first.
  const restoreHeading = page.getByRole("heading", { name: "The server shows an older state of your vault" });
  const asked = (p, what) => p.locator("#restore-states").filter({ hasText: `your ${what} as it was` }).waitFor();
  await asked(page, "client list");
  assert.ok(await page.locator("#vault").isHidden());
  assert.match(await page.locator("#restore-list").textContent(), /Older version: client Jan Jansen/);
  // Refused: the vault stays locked, and the device's high-water mark is unchanged, so the
  // next unlock asks again.
  await page.getByRole("button", { name: "Do not accept; keep the vault locked" }).click();
  await page.getByRole("heading", { name: "Unlock your vault", exact: true }).waitFor();
  assert.match(await page.locator("#status").textContent(), /did not accept/);
  await unlock();
  await asked(page, "client list");
  await page.getByRole("button", { name: "Accept the older state" }).click();
  // Then the notes.
  await asked(page, "notes");
  const states = await page.locator("#restore-states").textContent();
  const [, offeredN, seenN] = states.match(/saved on .+ \(save (\d+)\)\. This device last saw it as saved on .+ \(save (\d+)\)/);
  assert.ok(Number(offeredN) < Number(seenN), states);
  assert.match(await page.locator("#restore").textContent(), /restored from a backup/);
  assert.match(await page.locator("#restore-list").textContent(), /Older version: note of \d{4}-\d\d-\d\d Jan Jansen/);
  assert.ok(await restoreHeading.isVisible());
  // Accepted: the vault opens in the restored state, the acceptance is saved into it, and the
  // counter continues above what the device had seen.
  await page.getByRole("button", { name: "Accept the older state" }).click();
  await page.getByRole("heading", { name: "Your vault", exact: true }).waitFor();
  assert.match(await page.locator("#status").textContent(), /accepted/);
  const after = await page.locator("#vault-state").textContent();
  assert.equal(Number(after.match(/notes save (\d+)/)[1]), Number(seenN) + 1, after);
  // The acceptance records are neither clients nor notes.
  assert.equal(await page.locator("#clients li").count(), 1);
  assert.doesNotMatch(await page.locator("#clients").textContent(), /restore/i);
  await page.getByRole("button", { name: "Jan Jansen" }).click();
  await page.getByRole("button", { name: "Edit client details" }).click();
  assert.equal(await page.locator("#client-form").getByLabel("Phone").inputValue(), "06-12345678");
  await page.getByRole("button", { name: "Jan Jansen" }).click();
  await page.getByText("Exercises twice a day.").waitFor();
  assert.doesNotMatch(await page.locator("#notes").textContent(), /Swelling gone/);
  assert.equal(await page.locator("#notes li.note").count(), 1, "the acceptance record is no note");
  // The second device, which also saw the replaced state, meets a history that does not follow
  // from it: it asks its own user, and says what the first device accepted.
  await unlockWith(page2, keyFile);
  await asked(page2, "client list");
  assert.match(await page2.locator("#restore-others").textContent(), /one of your devices accepted the state of/);
  await page2.getByRole("button", { name: "Accept the older state" }).click();
  await asked(page2, "notes");
  assert.match(await page2.locator("#restore-others").textContent(), /one of your devices accepted the state of/);
  assert.match(await page2.locator("#restore-list").textContent(), /Older version: note of/);
  await page2.getByRole("button", { name: "Accept the older state" }).click();
  await page2.getByRole("heading", { name: "Your vault", exact: true }).waitFor();
  const after2 = await page2.locator("#vault-state").textContent();
  assert.equal(Number(after2.match(/notes save (\d+)/)[1]), Number(seenN) + 2, after2);
  await context2.close();
  // The next load follows on from the accepted states without a question.
  await page.reload();
  await page.getByRole("heading", { name: "Unlock your vault", exact: true }).waitFor();
  await unlock();
  await page.getByRole("heading", { name: "Your vault", exact: true }).waitFor();
  assert.equal(await page.locator("#vault-state").textContent(), after2);
  assert.ok(state.length > 0);
  assert.deepEqual(problems, []);
  await context.close();
});

test("auto-lock after the idle time keeps the note being written as an encrypted draft", async () => {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  await page.clock.install(); // the page's clock, moved by the test (the server's is real)
  await page.goto(url);
  await signIn(page);
  await unlockWith(page, keyFile);
  await page.getByRole("button", { name: "Jan Jansen" }).click();
  await page.getByLabel("Subjective").fill("Half-written: sleeps badly since");
  // 14 minutes without input: still open. Then past the practice's 15 minutes: locked.
  await page.clock.fastForward("14:00");
  assert.ok(await page.locator("#client").isVisible());
  await page.clock.fastForward("01:30");
  await page.getByRole("heading", { name: "Unlock your vault", exact: true }).waitFor();
  assert.match(await page.locator("#status").textContent(), /encrypted draft/);
  assert.equal(await page.locator("#note-s").inputValue(), "", "the form is emptied on lock");
  // Unlock again: the draft is there, and continues where it stopped.
  await unlockWith(page, keyFile);
  await page.getByRole("button", { name: "Jan Jansen" }).click();
  await page.getByText("Draft (not finished)").waitFor();
  await page.getByRole("button", { name: "Continue" }).click();
  assert.equal(await page.locator("#note-s").inputValue(), "Half-written: sleeps badly since");
  // After locking, no key bytes and no plaintext are in the browser's storage (the canary).
  await page.getByRole("button", { name: "All clients" }).click();
  await page.getByRole("button", { name: "Lock" }).click();
  const dump = await page.evaluate(async () => {
    const out = [];
    for (const s of [localStorage, sessionStorage]) for (let i = 0; i < s.length; i++) out.push(s.key(i), s.getItem(s.key(i)));
    const db = await new Promise((res) => { const r = indexedDB.open("kluis-device"); r.onsuccess = () => res(r.result); });
    const all = await new Promise((res) => { const r = db.transaction("high-water").objectStore("high-water").getAll(); r.onsuccess = () => res(r.result); });
    out.push(JSON.stringify(all));
    return out.join("\n");
  });
  const secretLine = readFileSync(keyFile, "utf8").split("\n").find((l) => l && !l.startsWith("#"));
  for (const canary of ["sleeps badly", "Jan Jansen", "Knee pain", secretLine.slice(-40)]) {
    assert.ok(!dump.includes(canary), `${canary} is in the browser's storage`);
  }
  assert.match(dump, /"counter":\d+,"chain":"[0-9a-f]{64}"/);
  await context.close();
});

test("the key file is registered: another one is refused; a break-glass key gets its sealed copy", async () => {
  // Another key file for the admin, who registered theirs: refused.
  const other = join(dir, "other.kluis");
  execFileSync(bin("kluis-keys"), ["generate", "--out", other, "--label", "Someone else"], { stdio: "ignore" });
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  await page.goto(url);
  await signIn(page);
  await unlockWith(page, other);
  await page.getByText(/not the one registered for your account/).waitFor();
  assert.ok(await page.locator("#vault").isHidden());
  await page.getByRole("button", { name: "Sign out" }).click();

  // A new practitioner, invited by the operator while the server runs (admin socket), whose key
  // file carries the practice's break-glass key.
  const invited = execFileSync(bin("kluis-server"), ["user", "invite", "bram", "--practice", "My practice",
    "--role", "practitioner", "--data", join(dir, "data")], { encoding: "utf8" });
  const bramCode = invited.match(/enrollment code:\s+(\S+)/)[1];
  const bg = join(dir, "practice-break-glass.kluis");
  execFileSync(bin("kluis-keys"), ["escrow", "init", "--out", bg, "--label", "Practice break-glass", "--no-passphrase"], { stdio: "ignore" });
  const bgFingerprint = execFileSync(bin("kluis-keys"), ["inspect", bg], { encoding: "utf8" }).match(/^fingerprint:\s+(\S+)/m)[1];
  const bramKey = join(dir, "bram.kluis");
  execFileSync(bin("kluis-keys"), ["generate", "--out", bramKey, "--label", "Bram", "--escrow", `${bg}.pub`], { stdio: "ignore" });
  await enrollWith(page, bramCode, "bram@example.org");
  await unlockWith(page, bramKey);
  await page.getByRole("heading", { name: "Your vault", exact: true }).waitFor();
  assert.match(await page.locator("#vault-state").textContent(), new RegExp(`break-glass copy stored for the practice key ${bgFingerprint}`));
  const counter = Number((await page.locator("#vault-state").textContent()).match(/notes save (\d+)/)[1]);
  assert.equal(counter, 1, "the escrow record is the vault's first save");
  // A second unlock does not store it again.
  await page.getByRole("button", { name: "Lock" }).click();
  await unlockWith(page, bramKey);
  await page.getByRole("heading", { name: "Your vault", exact: true }).waitFor();
  assert.match(await page.locator("#vault-state").textContent(), /notes save 1,/);
  await context.close();
});

test("break-glass drill: the operator exports a practitioner's vaults and the practice opens them with its break-glass key, without the server", async () => {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  await page.goto(url);
  await signIn(page, "bram");
  await unlockWith(page, join(dir, "bram.kluis"));
  await page.getByRole("heading", { name: "Your vault", exact: true }).waitFor();
  await page.locator("#client-form").getByLabel("Name").fill("Els Breekglas");
  await page.getByRole("button", { name: "Save client" }).click();
  await page.getByText("Client saved").waitFor();
  await page.getByRole("button", { name: "Els Breekglas" }).click();
  await page.getByLabel("Subjective").fill("canary: only the break-glass key reads this");
  await page.getByRole("button", { name: "Save note" }).click();
  await page.getByText("Note saved").waitFor();
  await page.getByRole("button", { name: "All clients" }).click();
  await page.getByRole("button", { name: "Lock" }).click();
  await context.close();
  // The operator exports bram's vaults while the server runs (its admin socket).
  const exportFile = join(dir, "bram.export");
  const exported = execFileSync(bin("kluis-server"), ["export", "--user", "bram", "--out", exportFile, "--data", join(dir, "data")], { encoding: "utf8" });
  assert.match(exported, /bram: exported 2 notes-vault and 1 identities-vault records/);
  assert.ok(!readFileSync(exportFile).includes("canary"), "the export holds ciphertext only");
  // The practice, with its break-glass key and its own record of bram's fingerprint.
  const bramFingerprint = execFileSync(bin("kluis-keys"), ["inspect", join(dir, "bram.kluis")], { encoding: "utf8" }).match(/^fingerprint:\s+(\S+)/m)[1];
  const out = join(dir, "recovered-bram");
  const recovered = spawnSync(bin("kluis-keys"), ["escrow", "recover", "--escrow-key", join(dir, "practice-break-glass.kluis"),
    "--export", exportFile, "--expect", bramFingerprint, "--out", out], { encoding: "utf8" });
  assert.equal(recovered.status, 0, recovered.stderr);
  assert.match(recovered.stderr, /Recovered 1 clients and 1 notes/);
  const folder = readdirSync(out).find((f) => f.startsWith("Els Breekglas-"));
  assert.ok(folder, `no client folder in ${readdirSync(out)}`);
  const [note] = readdirSync(join(out, folder, "notes")).filter((f) => f.endsWith(".md"));
  assert.match(readFileSync(join(out, folder, "notes", note), "utf8"), /canary: only the break-glass key reads this/);
  // Another practitioner's fingerprint is refused, and nothing is written.
  const refused = spawnSync(bin("kluis-keys"), ["escrow", "recover", "--escrow-key", join(dir, "practice-break-glass.kluis"),
    "--export", exportFile, "--expect", fingerprint, "--out", join(dir, "recovered-wrong")], { encoding: "utf8" });
  assert.equal(refused.status, 1);
  assert.ok(!existsSync(join(dir, "recovered-wrong")));
});

test("a server that alters a record, swaps a version, leaves a record out or replays a deleted one is caught, and the app says so", async () => {
  const tls = join(dir, "data", "tls");
  const proxy = await startProxy({
    target: { host: "127.0.0.1", port },
    cert: readFileSync(join(tls, "dev-cert.pem")), key: readFileSync(join(tls, "dev-key.pem")),
  });
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  page.on("dialog", (d) => d.accept());
  await page.goto(`https://localhost:${proxy.port}/`);
  await signIn(page);
  const unlock = () => unlockWith(page, keyFile);
  await unlock();
  await page.getByRole("button", { name: "Jan Jansen" }).click();
  // One more version of the knee note, so that it has a version 2 to ask for.
  const knee = page.locator("#notes li.note", { hasText: "Knee pain" });
  await knee.getByRole("button", { name: "Edit", exact: true }).click();
  await page.getByLabel("Objective").fill("Full range of motion.");
  await page.getByRole("button", { name: "Save note" }).click();
  await page.getByText("Full range of motion.").waitFor();

  // The server answers "version 2" with version 1: refused as swapped.
  proxy.mode = "version";
  await page.locator("#notes li.note", { hasText: "Full range" }).getByRole("button", { name: "History" }).click();
  await page.getByText(/Warning: the server sent vault data that fails its checks/).waitFor();
  assert.match(await page.locator("#status").textContent(), /swapped/);

  // A flipped bit in a record: the vault does not open, and nothing of it is shown.
  proxy.mode = "flip";
  await page.getByRole("button", { name: "All clients" }).click();
  await page.getByRole("button", { name: "Lock" }).click();
  await unlock();
  await page.getByText(/Warning: the server sent vault data that fails its checks/).waitFor();
  assert.ok(await page.locator("#vault").isHidden());
  assert.ok(await page.locator("#client").isHidden());

  // A record left out of the listing: refused as missing.
  proxy.mode = "drop";
  await page.locator("#status").evaluate((e) => { e.textContent = ""; });
  await unlock();
  await page.getByText(/Warning: the server sent vault data that fails its checks/).waitFor();
  assert.match(await page.locator("#status").textContent(), /record-missing/);
  assert.ok(await page.locator("#vault").isHidden());

  // A deleted note replayed into the listing: refused as injected.
  proxy.mode = "pass";
  await page.locator("#status").evaluate((e) => { e.textContent = ""; });
  await unlock();
  await page.getByRole("button", { name: "Jan Jansen" }).click();
  await page.getByLabel("Subjective").fill("A note to delete.");
  await page.getByRole("button", { name: "Save note" }).click();
  const doomed = page.locator("#notes li.note", { hasText: "A note to delete." });
  await doomed.waitFor();
  // The proxy keeps the first listing it saw with this note in it: sync once more through it.
  proxy.seen.clear();
  await page.getByRole("button", { name: "All clients" }).click();
  await page.getByRole("button", { name: "Lock" }).click();
  await unlock();
  await page.getByRole("button", { name: "Jan Jansen" }).click();
  await page.locator("#notes li.note", { hasText: "A note to delete." }).getByRole("button", { name: "Delete" }).click();
  await page.getByText("Note deleted.").waitFor();
  proxy.mode = "inject";
  await page.getByRole("button", { name: "All clients" }).click();
  await page.getByRole("button", { name: "Lock" }).click();
  await unlock();
  await page.getByText(/Warning: the server sent vault data that fails its checks/).waitFor();
  assert.match(await page.locator("#status").textContent(), /injected/);
  assert.ok(await page.locator("#vault").isHidden());

  // Honest again: it opens.
  proxy.mode = "pass";
  await unlock();
  await page.getByRole("heading", { name: "Your vault", exact: true }).waitFor();

  // The practice's audit trail: the admin's browser keeps the head it saw, and a server that
  // shortens or rewrites the trail is caught at the next look.
  const practice = () => openPracticeTrail(page);
  await practice();
  assert.match(await page.locator("#audit-state").textContent(), /entries, each chained to the one before/);
  await page.getByRole("button", { name: "Back" }).click();
  await practice();
  assert.match(await page.locator("#audit-state").textContent(), /continues the entry \d+ that this browser saw/);
  for (const mode of ["audit-cut", "audit-rewrite"]) {
    proxy.mode = mode;
    await page.getByRole("button", { name: "Back" }).click();
    await practice();
    assert.match(await page.locator("#audit-warning").textContent(), /does not continue the entry \d+ that this browser saw/, mode);
  }
  proxy.mode = "pass";
  await context.close();
  proxy.server.close();
});

test("a practitioner without a key file creates one in the browser, and kluis-keys reads it", async () => {
  const invited = execFileSync(bin("kluis-server"), ["user", "invite", "carla", "--practice", "My practice",
    "--role", "practitioner", "--data", join(dir, "data")], { encoding: "utf8" });
  const carlaCode = invited.match(/enrollment code:\s+(\S+)/)[1];
  const context = await browser.newContext({ ignoreHTTPSErrors: true, acceptDownloads: true });
  const page = await context.newPage();
  await page.goto(url);
  await enrollWith(page, carlaCode, "carla@example.org");
  await page.getByText("I have no key file yet").click();
  await page.getByLabel("A name for the key (your name)").fill("Carla de Wit");
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("button", { name: "Create and save my key file" }).click(),
  ]);
  assert.equal(download.suggestedFilename(), "Carla-de-Wit.kluis");
  const saved = join(dir, "carla.kluis");
  await download.saveAs(saved);
  const shown = await page.locator("#newkey-fingerprint").textContent();
  const inspected = execFileSync(bin("kluis-keys"), ["inspect", saved], { encoding: "utf8" });
  assert.equal(inspected.match(/^fingerprint:\s+(\S+)/m)[1], shown);
  assert.match(inspected, /^label:\s+Carla de Wit \(verified\)/m);
  await unlockWith(page, saved);
  await page.getByRole("heading", { name: "Your vault", exact: true }).waitFor();
  assert.equal(await page.locator("#vault-fingerprint").textContent(), shown);
  // Carla adds a passphrase with kluis-keys; the app then asks for it, and a wrong one opens nothing.
  await page.getByRole("button", { name: "Lock" }).click();
  const passFile = join(dir, "carla.pass");
  writeFileSync(passFile, "lantaarn wolkbreuk zevenhoek\n");
  execFileSync(bin("kluis-keys"), ["passwd", saved, "--new-passphrase-file", passFile], { stdio: "ignore" });
  await unlockWith(page, saved);
  await page.getByText("This key file is protected: type its passphrase.").waitFor();
  await page.getByLabel("Passphrase of the key file").fill("lantaarn wolkbreuk zevenhoeK");
  await unlockWith(page, saved);
  await page.waitForFunction(() => /passphrase/i.test(document.getElementById("status").textContent) &&
    !/type its passphrase/.test(document.getElementById("status").textContent));
  assert.ok(await page.locator("#vault").isHidden());
  await page.getByLabel("Passphrase of the key file").fill("lantaarn wolkbreuk zevenhoek");
  await unlockWith(page, saved);
  await page.getByRole("heading", { name: "Your vault", exact: true }).waitFor();
  assert.equal(await page.locator("#vault-fingerprint").textContent(), shown);
  await context.close();
});

// The code an authenticator app would show `steps` 30-second steps from now (oathtool, an
// implementation independent of kluis).
function totp(secret, steps = 0) {
  const at = Math.floor(Date.now() / 1000) + steps * 30;
  return execFileSync("oathtool", ["--totp", "-b", secret, "-N", `@${at}`], { encoding: "utf8" }).trim();
}

test("two-step sign-in: an authenticator set up from the page, asked at sign-in, and a recovery code for a lost phone", async () => {
  const invited = execFileSync(bin("kluis-server"), ["user", "invite", "dora", "--practice", "My practice",
    "--role", "practitioner", "--data", join(dir, "data")], { encoding: "utf8" });
  const doraCode = invited.match(/enrollment code:\s+(\S+)/)[1];
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(String(e)));
  await page.goto(url);
  await enrollWith(page, doraCode, "dora@example.org");
  await page.getByRole("heading", { name: "Unlock your vault", exact: true }).waitFor();
  // Account and security: set up the app. The QR code is an image the app can scan; the test
  // types the key shown beside it, as a user without a camera would.
  await page.getByRole("button", { name: "Account and security" }).click();
  await page.getByRole("heading", { name: "Account and security" }).waitFor();
  assert.match(await page.locator("#account-2fa-state").textContent(), /off/);
  await page.getByRole("button", { name: "Set up an authenticator app" }).click();
  await page.locator("#totp-setup").waitFor();
  const secret = (await page.locator("#totp-secret").textContent()).trim();
  assert.match(secret, /^[A-Z2-7]{32}$/);
  await page.waitForFunction(() => document.getElementById("totp-qr").complete && document.getElementById("totp-qr").naturalWidth > 0);
  await page.locator("#totp-confirm-code").fill("000000" === totp(secret) ? "000001" : "000000");
  await page.getByRole("button", { name: "Turn on two-step sign-in" }).click();
  await page.getByText(/that code is not right/).waitFor();
  await page.locator("#totp-confirm-code").fill(totp(secret));
  await page.getByRole("button", { name: "Turn on two-step sign-in" }).click();
  await page.getByRole("heading", { name: "Your recovery codes" }).waitFor();
  const codes = await page.locator("#recovery-list li").allTextContents();
  assert.equal(codes.length, 10);
  await page.getByRole("button", { name: "I have kept these codes" }).click();
  assert.match(await page.locator("#account-2fa-state").textContent(), /is on/);
  // Sign out; signing in now takes the password and then a code.
  await page.getByRole("button", { name: "Sign out" }).click();
  await signIn(page, "dora");
  await page.getByRole("heading", { name: "Your code" }).waitFor();
  await typeCode(page, "12345");
  await page.getByText(/wrong username, password or code/).waitFor();
  // The code of the set-up's step is spent; the app's next one (one step ahead) is taken.
  await typeCode(page, totp(secret, 1));
  await page.getByRole("heading", { name: "Unlock your vault", exact: true }).waitFor();
  // Lost phone: a recovery code signs in once.
  await page.getByRole("button", { name: "Sign out" }).click();
  await signIn(page, "dora");
  await page.getByRole("heading", { name: "Your code" }).waitFor();
  await typeCode(page, codes[3]);
  await page.getByRole("heading", { name: "Unlock your vault", exact: true }).waitFor();
  await page.getByRole("button", { name: "Sign out" }).click();
  await signIn(page, "dora");
  await typeCode(page, codes[3]);
  await page.getByText(/wrong username, password or code/).waitFor();
  assert.ok(await page.locator("#unlock").isHidden());
  assert.deepEqual(problems, []);
  await context.close();
});

test("support sees only what a user's code allows while the user watches and ends it; the admin runs the practice from the console", async () => {
  const start = outboxNames();
  // Support staff: the operator adds sam, who enrolls and must set up two-step sign-in first.
  const added = execFileSync(bin("kluis-server"), ["support", "add", "sam", "--data", join(dir, "data")], { encoding: "utf8" });
  const ctxS = await browser.newContext({ ignoreHTTPSErrors: true });
  const staff = await ctxS.newPage();
  staff.on("dialog", (d) => d.accept());
  await staff.goto(url);
  await enrollWith(staff, added.match(/enrollment code:\s+(\S+)/)[1], "sam@example.org");
  await staff.getByText("Support staff must use two-step sign-in").waitFor();
  await staff.getByRole("button", { name: "Set up an authenticator app" }).click();
  await staff.locator("#totp-setup").waitFor();
  const samSecret = (await staff.locator("#totp-secret").textContent()).trim();
  await staff.locator("#totp-confirm-code").fill(totp(samSecret));
  await staff.getByRole("button", { name: "Turn on two-step sign-in" }).click();
  await staff.getByRole("button", { name: "I have kept these codes" }).click();
  await staff.getByRole("button", { name: "Back" }).click();
  await staff.getByRole("heading", { name: "Support console" }).waitFor();

  // A browser of the admin's that support will remove, then the admin's own.
  const ctxX = await browser.newContext({ ignoreHTTPSErrors: true });
  const x = await ctxX.newPage();
  await x.goto(url);
  await signIn(x, "admin");
  await x.getByRole("heading", { name: "Unlock your vault", exact: true }).waitFor();
  const ctxU = await browser.newContext({ ignoreHTTPSErrors: true });
  const u = await ctxU.newPage();
  u.on("dialog", (d) => d.accept());
  await u.goto(url);
  await signIn(u, "admin");
  await u.getByRole("heading", { name: "Unlock your vault", exact: true }).waitFor();
  // The admin makes a code: one hour, what support may see, and removing a browser.
  await u.getByRole("button", { name: "Account and security" }).click();
  await u.getByLabel("see how much my vault stores").check();
  await u.getByLabel("remove one of my browsers").check();
  await u.getByRole("button", { name: "Make a support code" }).click();
  await u.locator("#support-code-shown").waitFor();
  const code = (await u.locator("#support-code").textContent()).trim();
  assert.match(code, /^[0-9A-Z]{4}(-[0-9A-Z]{4}){4}$/);
  await u.getByText(/Waiting to be used/).waitFor();

  // Support opens the account with it, and sees the views it allows.
  await staff.getByLabel("Access code from the user").fill(code);
  await staff.getByRole("button", { name: "Open the account" }).click();
  await staff.locator("#console-session").waitFor();
  assert.equal((await staff.locator("#console-views button").allTextContents()).join("|"), "Settings|Browsers|Sign-in history|Two-step sign-in|Storage");
  await staff.getByRole("button", { name: "Settings", exact: true }).click();
  await staff.getByText(/email: admin@example\.org/).waitFor();
  await staff.getByRole("button", { name: "Sign-in history" }).click();
  await staff.locator("#console-result li").first().waitFor();
  assert.ok(!/127\.0\.0\.1|ip:/.test(await staff.locator("#console-result").textContent()), "no addresses for support");
  await staff.getByRole("button", { name: "Storage" }).click();
  await staff.getByText(/notes: .*live_records/).waitFor();
  await staff.getByRole("button", { name: "Two-step sign-in" }).click();
  await staff.getByText(/enabled: false/).waitFor(); // the admin sets it up in a later test
  // Removing a browser: the most recently seen is the admin's own, the next is browser X.
  await staff.getByRole("button", { name: "Browsers" }).click();
  await staff.locator("#console-result li").nth(1).waitFor();
  assert.equal((await ctxX.request.get(`${url}api/me`)).status(), 200);
  await staff.locator("#console-result li").nth(1).getByRole("button", { name: "Remove this browser" }).click();
  await staff.getByText("The browser was removed.").waitFor();
  assert.equal((await ctxX.request.get(`${url}api/me`)).status(), 401, "its session ended");
  // Everything else is refused: what the code did not allow, and anything of the admin's
  // records or account (support's own session acts only on support's own account).
  const grantId = await staff.evaluate(() => fetch("/api/support/sessions").then((r) => r.json()).then((l) => l[0].id));
  const api = (method, path, data) => ctxS.request.fetch(`${url}${path.slice(1)}`, { method, data, headers: { origin: url.slice(0, -1) } });
  assert.equal((await api("POST", `/api/support/sessions/${grantId}/invitations/erik`)).status(), 403);
  assert.equal((await api("GET", "/api/practice/users")).status(), 403);
  assert.equal((await api("POST", "/api/vault-key", { public_key: "kluispub1x" })).status(), 403);
  assert.equal((await api("POST", "/api/account/support", { scopes: ["view-settings"] })).status(), 403);

  // The admin watches every step live, refused ones too, and ends the session at once.
  await u.getByText(/Support is in your account now/).waitFor({ timeout: 15000 });
  await u.locator("#support-grants li li", { hasText: "remove one of my browsers" }).waitFor({ timeout: 15000 });
  await u.locator("#support-grants li li", { hasText: "refused: not allowed" }).waitFor({ timeout: 15000 });
  assert.match(await u.locator("#support-grants").textContent(), /used by sam/);
  await u.getByRole("button", { name: "End it now" }).click();
  await u.getByText("Support's access has ended.").waitFor();
  await staff.getByRole("button", { name: "Settings", exact: true }).click();
  await staff.getByText("The support session has ended.").waitFor();
  assert.ok(await staff.locator("#console-session").isHidden());
  // The code worked once.
  await staff.getByLabel("Access code from the user").fill(code);
  await staff.getByRole("button", { name: "Open the account" }).click();
  await staff.getByText(/this code is not valid/).waitFor();
  const told = await mailSince(start, (m) => m.includes("To: admin@example.org") && m.includes("Support opened your kluis account"));
  assert.match(told, /used the access code you made/);

  // The admin console: members with the fingerprint the server holds, an invitation by e-mail
  // (sent again), disabling and enabling a member, and the IP release.
  await u.getByRole("button", { name: "Practice settings" }).click();
  await u.locator("#members li").first().waitFor();
  assert.match(await u.locator("#members li", { hasText: "admin ·" }).textContent(), new RegExp(`key file \\(server's word\\): ${fingerprint}`));
  await u.getByLabel("New user's username").fill("erik");
  await u.getByLabel(/Their e-mail address/).fill("erik@example.org");
  await u.getByRole("button", { name: "Invite", exact: true }).click();
  await u.locator("#invite-shown").waitFor();
  const erikCode = (await u.locator("#invite-code").textContent()).trim();
  const invitation = await mailSince(start, (m) => m.includes("To: erik@example.org") && m.includes("Your invitation to kluis"));
  assert.ok(invitation.includes(erikCode), "the invitation carries the code");
  await u.locator("#members li", { hasText: "erik" }).getByRole("button", { name: "Send the invitation again" }).click();
  await u.getByText("The invitation to erik was sent again with a new code.").waitFor();
  await u.locator("#members li", { hasText: "carla" }).getByRole("button", { name: "Disable" }).click();
  await u.getByText("carla is disabled and signed out.").waitFor();
  assert.equal((await ctxX.request.post(`${url}api/sign-in`, { data: { username: "carla", password: PASSWORD }, headers: { origin: url.slice(0, -1) } })).status(), 401);
  await u.locator("#members li", { hasText: "carla" }).getByRole("button", { name: "Enable" }).click();
  await u.getByText("carla can sign in again.").waitFor();
  // Addresses: none in the practice's sign-in log; one member's, for a recorded reason.
  await u.locator("#practice-history li").first().waitFor();
  assert.ok(!/127\.0\.0\.1/.test(await u.locator("#practice-history").textContent()), "no addresses without a reason");
  await u.getByLabel("Whose addresses (username)").fill("dora");
  await u.getByLabel(/Why \(at least 10 characters\)/).fill("Police request, reference 2026-117");
  await u.getByRole("button", { name: "Show the addresses" }).click();
  await u.locator("#release-list li").first().waitFor();
  assert.match(await u.locator("#release-list").textContent(), /sign-in .* 127\.0\.0\.1/);
  await u.locator("#practice-events li", { hasText: "saw the addresses of dora" }).waitFor();
  assert.match(await u.locator("#audit-state").textContent(), /entries, each chained/);
  const doraTold = await mailSince(start, (m) => m.includes("To: dora@example.org") && m.includes("looked up your sign-in addresses"));
  assert.match(doraTold, /Police request, reference 2026-117/);
  for (const ctx of [ctxS, ctxX, ctxU]) await ctx.close();
});

test("a practice admin requires two-step sign-in, and a user without it is sent to set it up", async () => {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  await page.goto(url);
  await signIn(page, "admin");
  await page.getByRole("heading", { name: "Unlock your vault", exact: true }).waitFor();
  await page.getByRole("button", { name: "Practice settings" }).click();
  await page.getByRole("heading", { name: "Practice settings" }).waitFor();
  assert.equal(await page.locator("#policy-idle").inputValue(), "15");
  await page.getByLabel("Everyone in the practice must use two-step sign-in").check();
  await page.getByRole("button", { name: "Save settings" }).click();
  await page.getByText("Settings saved.").waitFor();
  // The admin has no second factor yet: the next sign-in goes to setting one up, and the vault
  // stays out of reach until then.
  await page.getByRole("button", { name: "Sign out" }).click();
  await signIn(page, "admin");
  await page.getByRole("heading", { name: "Account and security" }).waitFor();
  assert.match(await page.locator("#status").textContent(), /requires two-step sign-in/);
  await page.getByRole("button", { name: "Back" }).click();
  await unlockWith(page, keyFile);
  await page.getByText(/requires two-step sign-in/).waitFor();
  assert.ok(await page.locator("#vault").isHidden());
  // The admin sets up an authenticator, and can then reset the two-step sign-in of dora, who
  // lost her phone and her codes; the practice's record says who checked her identity and how.
  await page.getByRole("button", { name: "Account and security" }).click();
  await page.getByRole("button", { name: "Set up an authenticator app" }).click();
  await page.locator("#totp-setup").waitFor();
  const secret = (await page.locator("#totp-secret").textContent()).trim();
  adminSecret = secret;
  // The QR code, as a phone's camera sees it on the screen, scans to the otpauth URI with the
  // same secret that is written out beside it.
  const qr = page.locator("#totp-qr");
  await qr.evaluate((img) => img.decode());
  const [scanned] = await readBarcodes(new Uint8Array(await qr.screenshot()), { formats: ["QRCode"] });
  assert.ok(scanned, "the QR code does not scan");
  const uri = new URL(scanned.text);
  assert.equal(`${uri.protocol}//${uri.host}`, "otpauth://totp");
  assert.equal(uri.searchParams.get("secret"), secret.replace(/\s/g, ""));
  assert.match(decodeURIComponent(uri.pathname), /admin/);
  await page.locator("#totp-confirm-code").fill(totp(secret));
  await page.getByRole("button", { name: "Turn on two-step sign-in" }).click();
  await page.getByRole("button", { name: "I have kept these codes" }).click();
  await page.locator("#account-history li").first().waitFor();
  assert.match(await page.locator("#account-history").textContent(), /signed in/);
  await page.getByRole("button", { name: "Practice settings" }).click();
  await page.getByRole("heading", { name: "Reset a user's two-step sign-in" }).waitFor();
  await page.getByLabel("Username", { exact: true }).last().fill("dora");
  await page.getByLabel("Who checked their identity").fill("Admin, at the front desk");
  await page.getByLabel("How", { exact: true }).selectOption("in-person");
  await page.getByRole("button", { name: "Reset two-step sign-in" }).click();
  await page.getByText("Two-step sign-in was reset for dora").waitFor();
  await page.locator("#practice-events li", { hasText: "two-step sign-in of dora reset" }).waitFor();
  assert.match(await page.locator("#practice-events").textContent(),
    /two-step sign-in of dora reset by admin:admin; identity checked by Admin, at the front desk \(In person/);
  assert.match(await page.locator("#practice-history").textContent(), /dora/);
  // Dora's next sign-in asks no code and sends her to set up a new authenticator.
  const other = await browser.newContext({ ignoreHTTPSErrors: true });
  const dora = await other.newPage();
  await dora.goto(url);
  await signIn(dora, "dora");
  await dora.getByRole("heading", { name: "Account and security" }).waitFor();
  assert.match(await dora.locator("#status").textContent(), /two-step sign-in was reset/);
  await other.close();
  await context.close();
});

test("HIPAA mode: every sign-in announced by e-mail, whose link ends that session on a click, and sign-out when idle", async () => {
  // The admin (with the second factor set up in the test before) turns HIPAA mode on.
  const adminContext = await browser.newContext({ ignoreHTTPSErrors: true });
  const admin = await adminContext.newPage();
  await admin.goto(url);
  await signIn(admin, "admin");
  await admin.getByRole("heading", { name: "Your code" }).waitFor();
  await typeCode(admin, totp(adminSecret, 1));
  await admin.getByRole("heading", { name: "Unlock your vault", exact: true }).waitFor();
  await admin.getByRole("button", { name: "Practice settings" }).click();
  await admin.getByRole("heading", { name: "Practice settings" }).waitFor();
  await admin.getByRole("checkbox", { name: /^HIPAA mode/ }).check();
  // With a shorter idle time and a longer minimum password, set here too.
  await admin.locator("#policy-idle").fill("10");
  await admin.locator("#policy-min-password").fill("16");
  await admin.getByRole("button", { name: "Save settings" }).click();
  await admin.getByText("Settings saved.").waitFor();
  const saved = await (await adminContext.request.get(`${url}api/practice/policy`)).json();
  assert.equal(saved.idle_minutes, 10);
  assert.equal(saved.min_password_chars, 16);
  assert.equal(saved.hipaa_mode, true);
  await adminContext.close();

  // Carla (key file with a passphrase, no second factor yet) is sent to set one up.
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  await page.clock.install();
  await page.goto(url);
  await signIn(page, "carla");
  await page.getByRole("heading", { name: "Account and security" }).waitFor();
  await page.getByRole("button", { name: "Set up an authenticator app" }).click();
  await page.locator("#totp-setup").waitFor();
  const secret = (await page.locator("#totp-secret").textContent()).trim();
  await page.locator("#totp-confirm-code").fill(totp(secret));
  await page.getByRole("button", { name: "Turn on two-step sign-in" }).click();
  await page.getByRole("button", { name: "I have kept these codes" }).click();
  await page.getByRole("button", { name: "Sign out" }).click();
  const before = outboxNames();
  await signIn(page, "carla");
  await typeCode(page, totp(secret, 1));
  await page.getByRole("heading", { name: "Unlock your vault", exact: true }).waitFor();
  await page.getByLabel("Key file", { exact: true }).setInputFiles(join(dir, "carla.kluis"));
  await page.getByRole("button", { name: "Unlock" }).click();
  await page.getByLabel("Passphrase of the key file").fill("lantaarn wolkbreuk zevenhoek");
  await page.getByRole("button", { name: "Unlock" }).click();
  await page.getByRole("heading", { name: "Your vault", exact: true }).waitFor();

  // The notice of that sign-in is in the outbox (no relay in this test): to carla, with a link.
  const notice = await mailSince(before, (m) => m.includes("To: carla@example.org") && m.includes("New sign-in"));
  const text = notice.replace(/=\r?\n/g, "").replace(/=3D/g, "=");
  const link = text.match(/https:\/\/\S+\/act\.html#not-me=[A-Za-z0-9_-]{22}/)[0];
  assert.ok(link.startsWith(url), `${link} is not on ${url}`);
  // Opening the link changes nothing; the click ends the session.
  const other = await browser.newContext({ ignoreHTTPSErrors: true });
  const act = await other.newPage();
  await act.goto(link);
  assert.equal(new URL(act.url()).hash, "", "the token leaves the address bar");
  assert.equal((await context.request.get(`${url}api/me`)).status(), 200);
  await act.getByRole("button", { name: "End that session" }).click();
  await act.getByText("That session has ended.").waitFor();
  assert.equal((await context.request.get(`${url}api/me`)).status(), 401);
  await other.close();

  // Idle in HIPAA mode past the practice's 10 minutes: the app locks, wipes its keys and signs out.
  await page.clock.fastForward("10:30");
  await page.getByRole("heading", { name: "Sign in", exact: true }).waitFor();
  assert.match(await page.locator("#status").textContent(), /Signed out after a while without activity/);
  assert.equal(await page.locator("#vault-fingerprint").textContent(), "");
  await context.close();
});

test("a forgotten password: a link by e-mail, a new password on the page it opens, and sign-in with it", async () => {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  await page.goto(url);
  const before = outboxNames();
  await page.getByText("Forgot your password?").click();
  await untilNotThrottled(page, "/api/password-reset", async () => {
    await page.locator("#forgot-form").getByLabel("Username").fill("dora");
    await page.getByRole("button", { name: "Send the link" }).click();
  });
  await page.getByText("If that account exists, a link is on its way").waitFor();
  const mail = await mailSince(before, (m) => m.includes("To: dora@example.org") && m.includes("Reset your kluis password"));
  const link = mail.match(/https:\/\/\S+\/act\.html#reset=[A-Za-z0-9_-]{22}/)[0];
  const act = await context.newPage();
  await act.goto(link);
  await act.getByRole("heading", { name: "Choose a new password" }).waitFor();
  const submit = (p) => untilNotThrottled(act, "/api/password-reset/complete", async () => {
    await act.getByLabel("New password", { exact: true }).fill(p);
    await act.getByRole("button", { name: "Set the new password" }).click();
  });
  await submit("password1234567");
  await act.getByText(/That did not work/).waitFor();
  const fresh = "zomerregen op het dak van dora";
  await submit(fresh);
  await act.getByText("Your new password is set").waitFor();
  // The old password is refused; the new one signs in (HIPAA mode then asks for a second factor).
  await signIn(page, "dora");
  await page.getByText(/wrong username, password or code/).waitFor();
  await signIn(page, "dora", fresh);
  await page.getByRole("heading", { name: "Account and security" }).waitFor();
  await context.close();
});

test("no e-mail the server wrote in this whole run names a client, a note or anything written in one", () => {
  const mails = [...outboxNames()].map((f) => readFileSync(join(outbox(), f), "utf8").replace(/=\r?\n/g, "").replace(/=3D/g, "="));
  assert.ok(mails.length >= 10, `only ${mails.length} messages in the outbox`);
  for (const canary of ["Jan Jansen", "Els Breekglas", "Knee pain", "Patellofemoral", "06-12345678", "Exercises",
    "sleeps badly", "only the break-glass key", "A note to delete"]) {
    const hit = mails.find((m) => m.includes(canary));
    assert.equal(hit, undefined, `"${canary}" is in a message`);
  }
});

test("backup and restore: the operator restores the server onto a new directory, its users sign in again, and the admin's browser is told the trail was restored", async () => {
  const data = join(dir, "data");
  const added = execFileSync(bin("kluis-server"), ["practice", "add", "Praktijk Herstel", "--admin", "bea", "--data", data], { encoding: "utf8" });
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  await page.goto(url);
  await enrollWith(page, added.match(/enrollment code:\s+(\S+)/)[1], "bea@example.org");
  await page.getByRole("heading", { name: "Unlock your vault", exact: true }).waitFor();
  const practice = () => openPracticeTrail(page);
  await practice();
  assert.match(await page.locator("#audit-state").textContent(), /entries, each chained to the one before/);

  // The operator's key pair, and a backup through the running server.
  const identity = join(dir, "operator.age");
  const recipient = execFileSync(bin("kluis-server"), ["backup-identity", "--out", identity], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  const backupFile = join(dir, "practice.kluis-backup");
  const taken = execFileSync(bin("kluis-server"), ["backup", "--out", backupFile, "--recipient", recipient, "--data", data], { encoding: "utf8" });
  const signingKey = taken.match(/signed with (ed25519:[0-9a-f]{64})/)[1];

  // Life goes on after the backup: bea signs out and in, and her browser sees the trail grow.
  await page.getByRole("button", { name: "Back" }).click();
  await page.getByRole("button", { name: "Sign out" }).click();
  await signIn(page, "bea");
  await practice();
  assert.match(await page.locator("#audit-state").textContent(), /continues the entry \d+ that this browser saw/);

  // The server's disk is lost. The operator restores the backup onto a new directory (a
  // directory that holds anything is refused) and starts the server on it.
  await stopServer();
  const refused = spawnSync(bin("kluis-server"), ["restore", "--from", backupFile, "--identity", identity, "--signing-key", signingKey, "--data", data], { encoding: "utf8" });
  assert.notEqual(refused.status, 0);
  assert.match(refused.stderr, /is not empty/);
  renameSync(data, join(dir, "data-lost"));
  const restored = execFileSync(bin("kluis-server"), ["restore", "--from", backupFile, "--identity", identity, "--signing-key", signingKey, "--data", data], { encoding: "utf8" });
  assert.match(restored, /restored backup [0-9a-f]{16}/);
  server = await startServer();

  // Bea's browser is still trusted (it was enrolled before the backup); her admin view says
  // the trail is shorter than what it saw, and why.
  await page.goto(url);
  await signIn(page, "bea");
  await page.getByRole("heading", { name: "Unlock your vault", exact: true }).waitFor();
  await practice();
  const warning = await page.locator("#audit-warning").textContent();
  assert.match(warning, /does not continue the entry \d+ that this browser saw/);
  assert.match(warning, /says the server was restored on .+ from a backup taken on /);
  await page.getByRole("button", { name: /Take the trail as it is now/ }).click();
  await page.getByRole("button", { name: "Back" }).click();
  await practice();
  assert.match(await page.locator("#audit-state").textContent(), /continues the entry \d+ that this browser saw/);
  await context.close();
});
