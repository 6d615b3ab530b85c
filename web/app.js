// The kluis browser app. Plain JavaScript over the wasm binding (crates/wasm): key bytes stay
// in wasm memory; this file only ever holds an opaque handle. No inline script, no eval, no
// innerHTML: the page runs under a strict CSP with Trusted Types required.
"use strict";

(() => {
  const T = (key) => KLUIS_TEXT[key] ?? key;
  const $ = (id) => document.getElementById(id);
  const BROWSER_TOKEN = "kluis.browser"; // the known-browser token (not a key; see FORMAT.md §9.2)
  let vault = null; // the wasm handle of the unlocked key file

  for (const el of document.querySelectorAll("[data-text]")) el.textContent = T(el.dataset.text);

  function say(message) {
    $("status").textContent = message;
  }

  function show(id) {
    for (const s of ["signin", "enroll", "unlock", "vault"]) $(s).hidden = s !== id;
    $("signout").hidden = id === "signin" || id === "enroll";
    const first = $(id).querySelector("input, button");
    if (first) first.focus();
  }

  // Every request the user caused is marked, so that only user activity extends the session.
  async function api(method, path, body) {
    const headers = { "x-kluis-activity": "user" };
    const init = { method, headers, credentials: "same-origin", cache: "no-store" };
    if (body !== undefined) {
      headers["content-type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const res = await fetch(path, init);
    const text = await res.text();
    const data = text ? JSON.parse(text) : null;
    if (!res.ok) {
      const err = new Error((data && data.detail) || res.statusText);
      err.status = res.status;
      throw err;
    }
    return data;
  }

  function lock(message) {
    if (vault) {
      vault.free(); // drops the Rust value: the secret and every derived key are zeroized
      vault = null;
    }
    $("vault-label").textContent = "";
    $("vault-fingerprint").textContent = "";
    if (message) say(message);
  }

  $("to-enroll").addEventListener("click", () => { say(""); show("enroll"); });
  $("to-signin").addEventListener("click", () => { say(""); show("signin"); });

  $("signin-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    try {
      const headers = { "content-type": "application/json", "x-kluis-activity": "user" };
      const known = localStorage.getItem(BROWSER_TOKEN);
      if (known) headers["x-kluis-browser"] = known;
      const res = await fetch("/api/sign-in", {
        method: "POST",
        credentials: "same-origin",
        cache: "no-store",
        headers,
        body: JSON.stringify({ username: f.username.value, password: f.password.value }),
      });
      const me = await res.json();
      if (!res.ok) throw new Error(me.detail || res.statusText);
      if (me.browser_token) localStorage.setItem(BROWSER_TOKEN, me.browser_token);
      f.reset();
      say("");
      show("unlock");
    } catch (e) {
      f.password.value = "";
      say(T("app.error") + e.message);
    }
  });

  $("enroll-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    try {
      const body = { code: f.code.value, password: f.password.value, email: f.email.value };
      if (f.mobile.value.trim()) body.mobile = f.mobile.value;
      await api("POST", "/api/enroll", body);
      f.reset();
      say("");
      show("unlock");
    } catch (e) {
      say(T("app.error") + e.message);
    }
  });

  $("unlock-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    const file = f.file.files[0];
    if (!file) return;
    const bytes = new Uint8Array(await file.arrayBuffer());
    const passphrase = $("unlock-pass-row").hidden ? undefined : f.passphrase.value;
    try {
      vault = wasm_bindgen.Vault.unlock(bytes, passphrase); // overwrites `bytes` with zeros
      f.reset();
      $("unlock-pass-row").hidden = true;
      $("vault-label").textContent = vault.label;
      $("vault-fingerprint").textContent = vault.fingerprint;
      say("");
      show("vault");
    } catch (e) {
      bytes.fill(0);
      if (/passphrase/i.test(String(e.message)) && $("unlock-pass-row").hidden) {
        $("unlock-pass-row").hidden = false;
        say(T("unlock.need-passphrase"));
        f.passphrase.focus();
      } else {
        say(T("app.error") + e.message);
      }
    }
  });

  $("lock").addEventListener("click", () => { lock(T("app.locked")); show("unlock"); });

  $("signout").addEventListener("click", async () => {
    lock();
    try { await api("POST", "/api/sign-out"); } catch (_) { /* signed out either way */ }
    say(T("app.signed-out"));
    show("signin");
  });

  async function start() {
    const wasm = document.querySelector('meta[name="kluis-wasm"]');
    try {
      // The wasm module is fetched with its Subresource Integrity hash, like the scripts.
      await wasm_bindgen({ module_or_path: fetch(wasm.content, { integrity: wasm.dataset.integrity }) });
    } catch (e) {
      say(T("app.no-wasm"));
      return;
    }
    try {
      await api("GET", "/api/me");
      show("unlock");
    } catch (_) {
      show("signin");
    }
  }
  start();
})();
