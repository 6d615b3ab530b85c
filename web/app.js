// The kluis browser app. Plain JavaScript over the wasm binding (crates/wasm): key bytes stay
// in wasm memory; this file only ever holds opaque handles, and the decrypted records it shows.
// No inline script, no eval, no innerHTML: the page runs under a strict CSP with Trusted Types.
//
// Record contents (FORMAT.md §11) are JSON inside the envelopes:
//   client: {"v": 1, "name", "phone", "email"}                      (identities vault)
//   note:   {"v": 1, "client", "date", "s", "o", "a", "p", "tags"}  (notes vault; "client" is the
//            client's record id, so the server sees no link between a note and a client)
//   restore acceptance: {"v": 1, "restore": {...}}                 (either vault; FORMAT.md §4.5)
"use strict";

(() => {
  const T = (key, vars) => (KLUIS_TEXT[key] ?? key).replace(/\{(\w+)\}/g, (_, k) => String(vars?.[k] ?? ""));
  const $ = (id) => document.getElementById(id);
  const SECTIONS = ["signin", "signin-code", "confirm-device", "enroll", "unlock", "restore", "vault", "client", "account", "practice", "support"];
  const isSupport = () => Boolean(account?.roles?.includes("support"));
  const isRestore = (r) => r.restore !== undefined; // a restore acceptance (FORMAT.md §11)

  let account = null; // the signed-in user, from /api/me
  let vault = null;   // the wasm handle of the unlocked key file
  let notes = null;   // {session, records: Map(id -> note)}
  let clients = null; // {session, records: Map(id -> client)}
  let current = null; // the client whose notes are shown
  let idleMs = 15 * 60 * 1000; // the practice's idle timeout (from /api/me)
  let lastActivity = Date.now();
  let noteDirty = false; // the note form holds unsaved text

  for (const el of document.querySelectorAll("[data-text]")) el.textContent = T(el.dataset.text);

  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === "onclick") e.addEventListener("click", v);
      else if (k === "class") e.className = v;
      else e.setAttribute(k, v);
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c);
    return e;
  }

  function say(message) { $("status").textContent = message; }

  function show(id) {
    for (const s of SECTIONS) $(s).hidden = s !== id;
    const out = id === "signin" || id === "enroll" || id === "signin-code" || id === "confirm-device";
    $("signout").hidden = out;
    $("to-account").hidden = out;
    $("to-practice").hidden = out || !account?.roles?.includes("admin");
    const first = $(id).querySelector("input:not([type=hidden]), button");
    if (first) first.focus();
  }

  // Every request the user caused is marked, so that only user activity extends the session.
  async function request(method, path, { json, cbor, headers: extra } = {}) {
    const headers = { "x-kluis-activity": "user", ...extra };
    const init = { method, headers, credentials: "same-origin", cache: "no-store" };
    if (json !== undefined) { headers["content-type"] = "application/json"; init.body = JSON.stringify(json); }
    if (cbor !== undefined) { headers["content-type"] = "application/cbor"; init.body = cbor; }
    const res = await fetch(path, init);
    if (!res.ok && res.status !== 409) {
      let detail = res.statusText;
      try { detail = (await res.json()).detail || detail; } catch (_) { /* not JSON */ }
      const err = new Error(detail);
      err.status = res.status;
      throw err;
    }
    return res;
  }
  const api = async (method, path, json) => {
    const res = await request(method, path, { json });
    const text = await res.text();
    return text ? JSON.parse(text) : null;
  };
  const bytes = async (path) => new Uint8Array(await (await request("GET", path)).arrayBuffer());

  // This device's own database, which sign-out does not clear (Clear-Site-Data "cache",
  // "cookies"): the highest manifest seen per vault, and the device key (FORMAT.md §11).
  function deviceDb() {
    return new Promise((resolve, reject) => {
      const open = indexedDB.open("kluis-device", 3);
      open.onupgradeneeded = () => {
        for (const store of ["high-water", "device-key", "audit-head"]) {
          if (!open.result.objectStoreNames.contains(store)) open.result.createObjectStore(store);
        }
      };
      open.onsuccess = () => resolve(open.result);
      open.onerror = () => reject(open.error);
    });
  }

  // One object store of that database: `get` answers null for a key that is absent or cannot
  // be read; `put` and `delete` each run in their own transaction and resolve once it commits.
  function deviceStore(name) {
    const write = async (change) => {
      const db = await deviceDb();
      await new Promise((resolve, reject) => {
        const tx = db.transaction(name, "readwrite");
        change(tx.objectStore(name));
        tx.oncomplete = () => resolve();
        tx.onerror = () => reject(tx.error);
      });
    };
    return {
      async get(key) {
        const db = await deviceDb();
        return new Promise((resolve) => {
          const r = db.transaction(name).objectStore(name).get(key);
          r.onsuccess = () => resolve(r.result || null);
          r.onerror = () => resolve(null);
        });
      },
      put: (key, value) => write((store) => store.put(value, key)),
      delete: (key) => write((store) => store.delete(key)),
    };
  }

  // The browser's device key (FORMAT.md §9.5): an ECDSA P-256 key pair made by WebCrypto with a
  // non-extractable private key, so no script, this one included, can ever read it out; kept in
  // IndexedDB across sign-outs. At sign-in it signs a challenge from the server, which then
  // knows a browser the account trusts from one it must confirm first.
  const DEVICE_PROOF_LABEL = new TextEncoder().encode("kluis/v1/device-proof");
  const b64url = {
    encode: (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, ""),
    decode: (text) => Uint8Array.from(atob(text.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0)),
  };
  // One key pair per account in this browser, so that the server cannot tell that two accounts
  // are used in the same browser.
  const deviceKey = {
    store: deviceStore("device-key"),
    slot: (username) => `ecdsa-p256:${username.trim().normalize("NFKC").toLowerCase()}`,
    generate: () => crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]),
    load(username) { return this.store.get(this.slot(username)); },
    keep(username, pair) { return this.store.put(this.slot(username), pair); },
    // Drops the account's key pair from this browser (the browser was removed from the
    // account): it would only be refused, and a shared computer keeps nothing of it.
    forget(username) { return this.store.delete(this.slot(username)); },
    async pairFor(username) {
      const stored = await this.load(username);
      if (stored) return stored;
      const pair = await this.generate();
      await this.keep(username, pair);
      return pair;
    },
    // The proof for one request with `pair` (or the account's own); none when this browser
    // cannot keep a key (then every sign-in is confirmed by a code).
    async proof(username, given) {
      try {
        const pair = given || await this.pairFor(username);
        const { challenge } = await api("POST", "/api/sign-in/challenge");
        const bytes = b64url.decode(challenge);
        const message = new Uint8Array(DEVICE_PROOF_LABEL.length + 1 + bytes.length);
        message.set(DEVICE_PROOF_LABEL, 0);
        message.set(bytes, DEVICE_PROOF_LABEL.length + 1);
        const signature = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, pair.privateKey, message);
        const publicKey = await crypto.subtle.exportKey("raw", pair.publicKey);
        return { public_key: b64url.encode(publicKey), challenge, signature: b64url.encode(signature) };
      } catch (_) {
        return undefined;
      }
    },
  };

  // The highest manifest this device has seen, per vault. Counter, chain and the manifest itself
  // (ids, versions, hashes, times, as the server holds them): no key, no text.
  const highWater = {
    store: deviceStore("high-water"),
    get(id) { return this.store.get(id); },
    put(id, session) {
      const mark = { counter: session.counter, chain: session.chain, seen: Date.now(), manifest: session.manifest() };
      return this.store.put(id, mark);
    },
  };

  // The records a sync opened (`plaintext` is UTF-8 JSON; null for the escrow record, which
  // only the practice's break-glass key opens), read into `into`.
  const utf8 = new TextDecoder("utf-8", { fatal: true });
  function readRecords(list, into) {
    for (const r of list) if (r.plaintext) into.set(r.id, JSON.parse(utf8.decode(r.plaintext)));
    return into;
  }

  // A wasm handle with an async call in flight cannot be freed (wasm-bindgen holds it borrowed
  // until the call ends): `busy` records the call, and `release` frees the handle at once, or
  // as soon as that call has ended, so locking always wipes the keys.
  const inFlight = new WeakMap();
  function busy(handle, promise) {
    inFlight.set(handle, promise);
    return promise.finally(() => { if (inFlight.get(handle) === promise) inFlight.delete(handle); });
  }
  function release(handle) {
    const pending = handle && inFlight.get(handle);
    if (pending) pending.then(() => release(handle), () => release(handle));
    else if (handle) try { handle.free(); } catch (_) { /* freed already */ }
  }

  // Each lock starts a new generation: work begun before it stops at its next step, so nothing
  // of a vault appears after the vault was locked.
  let generation = 0;
  const LOCKED = "locked";
  function stillOpen(gen) {
    if (gen !== generation) { const e = new Error(LOCKED); e.locked = true; throw e; }
  }

  // The operations on one vault run one after the other (a save waits for a resync, a history
  // view for a save), so no wasm call finds its session busy.
  function serial(v, op) {
    const run = (v.queue || Promise.resolve()).then(op, op);
    v.queue = run.catch(() => {});
    return run;
  }

  function openRecords(v, list) {
    readRecords(list, v.records);
    // Records deleted in the vault's newest state leave the view.
    const live = v.session.versions();
    for (const id of [...v.records.keys()]) if (!(id in live)) v.records.delete(id);
  }

  async function openVault(which, me, gen) {
    const session = vault.session(which);
    let handedOver = false;
    try {
      const hw = await highWater.get(session.id);
      stillOpen(gen);
      const registered = me.vaults[which];
      if (registered && registered !== session.id) throw new Error(T("vault.wrong-key"));
      if (!registered) {
        // A vault this device has seen is never created again: a server that claims not to
        // know it would get a fresh, empty vault signed by this device.
        if (hw) throw new Error(T("vault.integrity") + T("vault.unknown"));
        await request("POST", `/api/vaults/${which}`, { cbor: session.genesis(Date.now()) });
      }
      const query = hw ? `since=${hw.counter}&all=true` : "since=0";
      const sync = await bytes(`/api/vaults/${session.id}/sync?${query}`);
      stillOpen(gen);
      const v = { session, records: new Map() };
      let list;
      try {
        list = await busy(session, session.accept(sync, true, hw?.counter, hw?.chain));
      } catch (e) {
        stillOpen(gen);
        // An older or diverging state may be an honest restore from backup: the user decides.
        if (hw && /^(rollback|fork):/.test(e.message)) {
          const restored = await offerRestore(which, v, sync, hw, e.message, gen);
          handedOver = true;
          return restored;
        }
        throw new Error(T("vault.integrity") + e.message);
      }
      stillOpen(gen);
      try {
        openRecords(v, list);
      } catch (e) {
        throw new Error(T("vault.integrity") + e.message);
      }
      await highWater.put(session.id, session);
      stillOpen(gen);
      handedOver = true;
      return v;
    } finally {
      if (!handedOver) release(session);
    }
  }

  // ---- a restored (older) state: explained, and accepted only by the user (FORMAT.md §4.5) ----

  let restoreDecision = null;
  let restoredNow = false; // this unlock accepted a restored state
  $("restore-accept").addEventListener("click", () => restoreDecision?.(true));
  $("restore-refuse").addEventListener("click", () => restoreDecision?.(false));

  function describe(which, rec, id) {
    if (!rec) return T("restore.record", { id: id.slice(0, 8) });
    if (which === "identities") return T("restore.client", { name: rec.name ?? "" });
    return T("restore.note", { date: rec.date ?? "", client: clients?.records.get(rec.client)?.name ?? "" });
  }

  // Owns `v.session` from here: returns `v` once the user accepted and the acceptance is
  // saved, and otherwise frees it (the caller's `finally` does not).
  async function offerRestore(which, v, sync, hw, reason, gen) {
    const { session } = v;
    let handedOver = false;
    try {
      return await askRestore(which, v, sync, hw, reason, gen).then((r) => { handedOver = true; return r; });
    } finally {
      if (!handedOver) release(session);
    }
  }

  async function askRestore(which, v, sync, hw, reason, gen) {
    const { session } = v;
    let info;
    const offered = new Map();
    try {
      info = await busy(session, session.inspect(sync, hw.manifest));
      stillOpen(gen);
      readRecords(info.records, offered);
    } catch (e) {
      if (e.locked) throw e;
      throw new Error(T("vault.integrity") + reason + "; " + e.message);
    }
    const vault = T(`restore.vault-${which}`);
    $("restore-states").textContent = info.seen
      ? T("restore.states", { vault, offered: when(info.offered.saved_at), offered_n: info.offered.counter, seen: when(info.seen.saved_at), seen_n: info.seen.counter })
      : T("restore.states-unknown", { vault, offered: when(info.offered.saved_at), offered_n: info.offered.counter, seen_n: hw.counter });
    // Acceptances another device wrote on the offered branch.
    const others = info.unseen.map((id) => offered.get(id)).filter((r) => r && isRestore(r));
    $("restore-others").textContent = others.map((r) =>
      T("restore.other-device", { at: when(r.restore.at), offered: when(r.restore.accepted.saved_at) })).join(" ");
    const items = [
      ...info.missing.map((id) => T("restore.missing", { id: id.slice(0, 8) })),
      ...info.older.map((id) => T("restore.older", { what: describe(which, offered.get(id), id) })),
      ...info.unseen.filter((id) => !isRestore(offered.get(id) ?? {})).map((id) => T("restore.unseen", { what: describe(which, offered.get(id), id) })),
    ];
    const SHOWN = 50;
    $("restore-lost").textContent = info.seen
      ? T("restore.lost", { missing: info.missing.length, older: info.older.length, unseen: info.unseen.length })
      : T("restore.lost-unknown");
    $("restore-list").replaceChildren(...items.slice(0, SHOWN).map((t) => el("li", {}, t)),
      ...(items.length > SHOWN ? [el("li", {}, T("restore.more", { n: items.length - SHOWN }))] : []));
    say("");
    show("restore");
    const accepted = await new Promise((resolve) => { restoreDecision = resolve; });
    restoreDecision = null;
    $("restore-list").replaceChildren();
    stillOpen(gen);
    if (!accepted) {
      const e = new Error(T("restore.refused"));
      e.plain = true;
      throw e;
    }
    session.accept_offered(hw.counter, hw.chain);
    for (const [id, r] of offered) v.records.set(id, r);
    const confirmation = {
      v: 1,
      restore: {
        at: Date.now(),
        accepted: info.offered,
        replaced: { counter: hw.counter, chain: hw.chain, saved_at: info.seen?.saved_at ?? null },
        missing: info.missing, older: info.older, unseen: info.unseen,
      },
    };
    // The confirming save continues the counter above the replaced mark; only once the server
    // has it does the device's high-water mark move (save() stores it).
    await save(v, [[session.new_id(), confirmation]]);
    stillOpen(gen);
    restoredNow = true;
    return v;
  }

  async function resync(v) {
    const since = v.session.counter;
    const sync = await bytes(`/api/vaults/${v.session.id}/sync?since=${since}`);
    try {
      openRecords(v, await busy(v.session, v.session.accept(sync, false, since, v.session.chain)));
    } catch (e) {
      throw new Error(T("vault.integrity") + e.message);
    }
    await highWater.put(v.session.id, v.session);
  }

  // One save: encrypted here, sent with the manifest update; a conflict syncs and tries again.
  function save(v, changes) {
    return serial(v, () => saveNow(v, changes));
  }

  async function saveNow(v, changes) {
    for (let attempt = 0; attempt < 3; attempt++) {
      const body = v.session.prepare(changes.map(([id, rec]) => [id, rec === null ? null : JSON.stringify(rec)]), Date.now());
      const res = await request("POST", `/api/vaults/${v.session.id}/saves`, { cbor: body });
      if (res.status === 204) {
        v.session.commit();
        for (const [id, rec] of changes) rec === null ? v.records.delete(id) : v.records.set(id, rec);
        await highWater.put(v.session.id, v.session);
        showState();
        return;
      }
      await resync(v); // 409: someone saved first; nothing of ours was stored
    }
    throw new Error("the vault keeps changing; try again");
  }

  // With a break-glass key in the key file, the key-file secret is sealed to it and stored as
  // a record of the notes vault (once per break-glass key), so the practice can recover the
  // vault in an emergency.
  let escrowState = "";
  async function escrow() {
    const id = notes.session.escrow_id(vault);
    if (!id) { escrowState = T("escrow.none"); return; }
    if (!(id in notes.session.versions())) {
      for (let attempt = 0; attempt < 3; attempt++) {
        const body = notes.session.prepare_escrow(vault, Date.now());
        const res = await request("POST", `/api/vaults/${notes.session.id}/saves`, { cbor: body });
        if (res.status === 204) { notes.session.commit(); await highWater.put(notes.session.id, notes.session); break; }
        await resync(notes);
        if (id in notes.session.versions()) break;
      }
    }
    escrowState = T("escrow.stored", { fingerprint: vault.break_glass_fingerprint });
  }

  function showState() {
    if (!notes) return;
    $("vault-state").textContent = T("vault.state", { counter: notes.session.counter, hash: notes.session.chain.slice(0, 12) }) +
      ", " + T("vault.state-clients", { counter: clients.session.counter, hash: clients.session.chain.slice(0, 12) }) +
      (escrowState ? ` · ${escrowState}` : "");
  }

  function lock(message) {
    generation++; // work under way stops at its next step
    restoreDecision?.(false); // a restore question still open is answered "no"
    for (const v of [notes, clients]) if (v) release(v.session); // wipes the vault keys
    notes = clients = current = null;
    escrowState = "";
    release(vault); // wipes the key-file secret
    vault = null;
    for (const id of ["vault-label", "vault-fingerprint", "vault-state", "client-title"]) $(id).textContent = "";
    for (const id of ["clients", "notes", "search-results", "history-list"]) $(id).replaceChildren();
    $("search").value = "";
    $("client-form").reset();
    $("note-form").reset();
    if (message) say(message);
  }

  // ---- clients --------------------------------------------------------------------------

  function renderClients() {
    const items = [...clients.records.entries()].filter(([, c]) => !isRestore(c)).sort((a, b) => a[1].name.localeCompare(b[1].name));
    $("clients").replaceChildren(...(items.length ? items.map(([id, c]) =>
      el("li", {}, el("button", { type: "button", class: "link", onclick: () => openClient(id) }, c.name))) :
      [el("li", {}, T("clients.none"))]));
  }

  function openClient(id) {
    current = id;
    const c = clients.records.get(id);
    $("client-title").textContent = c.name;
    $("note-form").reset();
    $("note-form").elements.id.value = "";
    $("note-form-title").textContent = T("notes.add");
    $("note-date").value = new Date().toISOString().slice(0, 10);
    noteDirty = false;
    $("history").hidden = true;
    renderNotes();
    say("");
    show("client");
  }

  $("client-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    const id = f.elements.id.value || clients.session.new_id();
    const rec = { v: 1, name: f.elements.name.value.trim(), phone: f.elements.phone.value.trim(), email: f.elements.email.value.trim() };
    try {
      await save(clients, [[id, rec]]);
      f.reset();
      f.elements.id.value = "";
      $("client-form-title").textContent = T("clients.add");
      renderClients();
      if (current === id) openClient(id);
      say(T("clients.saved"));
    } catch (e) { say(T("app.error") + e.message); }
  });

  $("edit-client").addEventListener("click", () => {
    const c = clients.records.get(current);
    const f = $("client-form");
    f.elements.id.value = current;
    f.elements.name.value = c.name;
    f.elements.phone.value = c.phone || "";
    f.elements.email.value = c.email || "";
    $("client-form-title").textContent = T("clients.edit");
    show("vault");
    $("client-name").focus();
  });

  $("back-to-clients").addEventListener("click", () => { current = null; say(""); show("vault"); });

  // ---- notes ------------------------------------------------------------------------------

  function noteItem(id, n, withClient) {
    const tags = (n.tags || []).map((t) => el("span", { class: "tag" }, t));
    const head = withClient ? `${n.date} · ${clients.records.get(n.client)?.name ?? ""}` : n.date;
    const actions = withClient ? null : el("div", { class: "actions" },
      el("button", { type: "button", onclick: () => editNote(id) }, T(n.draft ? "notes.continue-draft" : "notes.edit-button")),
      el("button", { type: "button", onclick: () => showHistory(id) }, T("notes.history-button")),
      el("button", { type: "button", onclick: () => deleteNote(id) }, T("notes.delete-button")));
    const draft = n.draft ? el("span", { class: "tag" }, T("notes.draft")) : null;
    return el("li", { class: "note" }, el("h5", {}, head, " ", draft, ...tags),
      ...["s", "o", "a", "p"].filter((k) => n[k]).map((k) => el("p", {}, el("strong", {}, T(`notes.${k}`) + ": "), n[k])),
      actions);
  }

  function renderNotes() {
    const items = [...notes.records.entries()].filter(([, n]) => !isRestore(n) && n.client === current)
      .sort((a, b) => b[1].date.localeCompare(a[1].date));
    $("notes").replaceChildren(...(items.length ? items.map(([id, n]) => noteItem(id, n, false)) : [el("li", {}, T("notes.none"))]));
  }

  function editNote(id) {
    const n = notes.records.get(id);
    const f = $("note-form");
    f.elements.id.value = id;
    for (const k of ["date", "s", "o", "a", "p"]) f.elements[k].value = n[k] || "";
    f.elements.tags.value = (n.tags || []).join(", ");
    $("note-form-title").textContent = T("notes.edit");
    $("note-s").focus();
  }

  async function deleteNote(id) {
    if (!window.confirm(T("notes.confirm-delete"))) return;
    try {
      await save(notes, [[id, null]]);
      renderNotes();
      say(T("notes.deleted"));
    } catch (e) { say(T("app.error") + e.message); }
  }

  function showHistory(id) {
    const v = notes;
    const gen = generation;
    return serial(v, async () => {
      const latest = v.session.versions()[id];
      const items = [];
      try {
        for (let n = latest - 1; n >= 1; n--) {
          const env = await bytes(`/api/vaults/${v.session.id}/records/${id}?version=${n}`);
          stillOpen(gen);
          const old = JSON.parse(await busy(v.session, v.session.open_version(id, n, env)));
          stillOpen(gen);
          items.push(el("li", {}, el("strong", {}, T("history.version", { n })), noteItem(id, old, true)));
        }
      } catch (e) {
        if (e.locked) return;
        say(T("vault.integrity") + e.message);
      }
      $("history-list").replaceChildren(...items);
      $("history").hidden = false;
    });
  }

  function noteFromForm(f) {
    return {
      v: 1, client: current, date: f.elements.date.value,
      s: f.elements.s.value, o: f.elements.o.value, a: f.elements.a.value, p: f.elements.p.value,
      tags: f.elements.tags.value.split(",").map((t) => t.trim()).filter(Boolean),
    };
  }

  $("note-form").addEventListener("input", () => { noteDirty = true; });

  $("note-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    const id = f.elements.id.value || notes.session.new_id();
    try {
      await save(notes, [[id, noteFromForm(f)]]);
      noteDirty = false;
      openClient(current);
      say(T("notes.saved"));
    } catch (e) { say(T("app.error") + e.message); }
  });

  // Auto-lock: after the practice's idle time without user input (not background requests),
  // the vault locks. A note being written is first saved as an encrypted draft, never lost.
  for (const kind of ["keydown", "pointerdown", "wheel", "touchstart"]) {
    document.addEventListener(kind, () => { lastActivity = Date.now(); }, { passive: true, capture: true });
  }

  let locking = false;
  async function idleLock() {
    if (locking) return;
    locking = true;
    const f = $("note-form");
    if (noteDirty && current && notes) {
      const id = f.elements.id.value || notes.session.new_id();
      try { await save(notes, [[id, { ...noteFromForm(f), draft: true }]]); } catch (_) { /* lock anyway */ }
    }
    noteDirty = false;
    if (account?.hipaa_mode) {
      // HIPAA mode: the session ends with the lock (the server ends it at the same idle time).
      lock(T("app.idle-signed-out"));
      account = null;
      try { await api("POST", "/api/sign-out"); } catch (_) { /* ended either way */ }
      show("signin");
    } else {
      lock(T("app.idle-locked"));
      show("unlock");
    }
    locking = false;
  }

  setInterval(() => {
    if (vault && Date.now() - lastActivity >= idleMs) idleLock();
  }, 1000);

  // Search runs over the decrypted notes in memory only; nothing is sent anywhere.
  $("search").addEventListener("input", (ev) => {
    const q = ev.target.value.trim().toLowerCase();
    if (!q) { $("search-results").replaceChildren(); return; }
    const hits = [...notes.records.entries()].filter(([, n]) => !isRestore(n) &&
      [n.s, n.o, n.a, n.p, ...(n.tags || []), clients.records.get(n.client)?.name ?? ""].some((x) => (x || "").toLowerCase().includes(q)));
    $("search-results").replaceChildren(...(hits.length ? hits.map(([id, n]) => noteItem(id, n, true)) : [el("li", {}, T("search.none"))]));
  });

  // ---- sign-in, enrollment, unlock --------------------------------------------------------

  $("to-enroll").addEventListener("click", () => { say(""); show("enroll"); });
  $("to-signin").addEventListener("click", () => { say(""); show("signin"); });

  // Signed in: on to the key file, unless the practice requires a second factor not yet set up
  // (or the user came from an e-mail's link to the notification preferences).
  function signedIn(me) {
    account = me;
    stopWaiting();
    say("");
    watchPending();
    if (isSupport()) {
      // The operator's support staff have no vault: their page is the support console, which
      // needs their second factor.
      if (!me.second_factor) showAccount(T("console.needs-2fa"));
      else showConsole();
      return;
    }
    if (me.second_factor_required && !me.second_factor) {
      showAccount(T(me.second_factor_due ? "account.2fa-reset" : "account.2fa-required"));
      return;
    }
    if (location.hash === "#preferences") {
      history.replaceState(null, "", location.pathname);
      showAccount().then(() => $("preferences-title").scrollIntoView());
      return;
    }
    show("unlock");
  }

  // After the password (and code): signed in, or the next step the server asks for.
  function nextStep(res) {
    if (res.second_step === "totp") { say(""); show("signin-code"); return; }
    if (res.second_step === "device") { confirmDevice(res.channels || [], res.number); return; }
    signedIn(res);
  }

  // ---- a browser the account does not trust yet: a code, or an approval ---------------------

  let waiting = null; // the timer that asks whether a trusted browser let this one in
  function stopWaiting() { if (waiting) { clearTimeout(waiting); waiting = null; } }

  function confirmDevice(channels, number) {
    const where = channels.filter((c) => c !== "device").map((c) => T(`device.channel-${c}`));
    $("confirm-device-channels").textContent = where.length
      ? T("device.channels", { where: where.join(" / ") }) : T("device.channels-none");
    $("confirm-device-approval").textContent = T("device.approval", { number: number ?? "" });
    $("confirm-device-approval").hidden = !channels.includes("device");
    say("");
    show("confirm-device");
    stopWaiting();
    if (channels.includes("device")) waitForApproval();
  }

  function waitForApproval() {
    waiting = setTimeout(async () => {
      waiting = null;
      try {
        const res = await fetch("/api/sign-in/device/wait", { method: "POST", credentials: "same-origin", cache: "no-store" });
        if (res.status === 202) { if ($("confirm-device").hidden === false) waitForApproval(); return; }
        if (res.ok) { signedIn(await res.json()); return; }
        say(T(res.status === 403 ? "device.refused" : "device.expired"));
        show("signin");
      } catch (_) {
        if ($("confirm-device").hidden === false) waitForApproval();
      }
    }, 2000);
  }

  $("confirm-device-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    try {
      const me = await api("POST", "/api/sign-in/device", { code: f.code.value });
      f.reset();
      signedIn(me);
    } catch (e) {
      f.reset();
      say(T("app.error") + e.message);
      if (e.status === 401 && /password first/.test(e.message)) { stopWaiting(); show("signin"); }
    }
  });

  $("confirm-device-cancel").addEventListener("click", () => { stopWaiting(); say(""); show("signin"); });

  $("signin-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    try {
      const device = await deviceKey.proof(f.username.value);
      const res = await request("POST", "/api/sign-in", {
        json: { username: f.username.value, password: f.password.value, device },
      });
      const next = await res.json();
      f.reset();
      nextStep(next);
    } catch (e) {
      f.password.value = "";
      say(T("app.error") + e.message);
    }
  });

  $("forgot-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    try {
      await api("POST", "/api/password-reset", { username: f.username.value });
      f.reset();
      say(T("forgot.sent"));
    } catch (e) { say(T("app.error") + e.message); }
  });

  $("signin-code-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    try {
      const next = await api("POST", "/api/sign-in/second-factor", { code: f.code.value });
      f.reset();
      nextStep(next);
    } catch (e) {
      f.reset();
      say(T("app.error") + e.message);
      // A ticket that ended (too many codes, or five minutes) needs the password again.
      if (e.status === 401 && /password first/.test(e.message)) show("signin");
    }
  });

  // ---- account and security: the second factor ------------------------------------------

  async function showAccount(message) {
    try {
      account = await api("GET", "/api/me");
    } catch (e) { say(T("app.error") + e.message); return; }
    const on = account.second_factor;
    $("account-2fa-state").textContent = T(on ? "account.2fa-on" : "account.2fa-off");
    $("totp-begin").hidden = on;
    $("recovery-form").hidden = !on;
    $("totp-setup").hidden = true;
    $("recovery").hidden = true;
    $("support-code-form").hidden = isSupport();
    $("support-code-shown").hidden = true;
    $("prefs-new-device").checked = account.notifications?.new_device ?? true;
    $("prefs-every-sign-in").checked = account.notifications?.every_sign_in ?? false;
    say(message || "");
    show("account");
    await showDevices();
    await showGrants();
    try {
      const events = await api("GET", "/api/account/events");
      $("account-events").replaceChildren(...events.slice(0, 20).map((e) => el("li", {}, eventText(e))));
    } catch (_) { /* the list is extra */ }
    try {
      const history = await api("GET", "/api/sign-ins");
      $("account-history").replaceChildren(...history.slice(0, 20).map((e) => el("li", {}, signInRow(e, false))));
    } catch (_) { /* the history is extra */ }
  }

  // ---- the browsers the account trusts, and the new ones waiting for approval ------------------

  async function showDevices() {
    let list;
    try { list = await api("GET", "/api/devices"); } catch (_) { return; }
    $("pending-banner").hidden = list.pending.length === 0;
    $("devices-pending").replaceChildren(...list.pending.map((p) => {
      const number = el("input", { id: `number-${p.id}`, inputmode: "numeric", autocomplete: "off", maxlength: "2", size: "3" });
      return el("li", { class: "pending" },
        T("devices.pending", { browser: p.browser, ip: p.ip, place: p.place, when: when(p.at_ms) }),
        el("div", { class: "actions" },
          el("label", { for: `number-${p.id}` }, T("devices.number")), number,
          el("button", { type: "button", onclick: () => decide(p.id, number.value) }, T("devices.approve")),
          el("button", { type: "button", onclick: () => decide(p.id, null) }, T("devices.deny"))));
    }));
    $("devices-list").replaceChildren(...list.devices.map((d) => el("li", {},
      T("devices.row", { name: d.name, seen: when(d.last_seen_ms), how: d.confirmed_by }), " ",
      d.current ? el("strong", {}, T("devices.this")) : null,
      el("div", { class: "actions" },
        el("button", { type: "button", onclick: () => renameDevice(d) }, T("devices.rename")),
        el("button", { type: "button", onclick: () => removeDevice(d) }, T("devices.remove"))))));
  }

  // Approves with the number the new browser shows (`number`), or refuses (`null`).
  async function decide(id, number) {
    try {
      if (number === null) await api("POST", `/api/devices/pending/${id}/deny`);
      else await api("POST", `/api/devices/pending/${id}/approve`, { number });
      say(T(number === null ? "devices.denied" : "devices.approved"));
    } catch (e) { say(T("app.error") + e.message); }
    await showDevices();
  }

  async function renameDevice(d) {
    const name = window.prompt(T("devices.rename-prompt"), d.name);
    if (!name) return;
    try { await api("PUT", `/api/devices/${d.id}`, { name }); } catch (e) { say(T("app.error") + e.message); }
    await showDevices();
  }

  async function removeDevice(d) {
    if (!window.confirm(T(d.current ? "devices.confirm-remove-this" : "devices.confirm-remove"))) return;
    try {
      await api("DELETE", `/api/devices/${d.id}`);
      say(T(d.current ? "devices.removed-this" : "devices.removed"));
    } catch (e) { say(T("app.error") + e.message); return; }
    if (d.current) {
      const username = account?.username;
      lock();
      account = null;
      if (username) await deviceKey.forget(username).catch(() => {});
      show("signin");
      return;
    }
    await showDevices();
  }

  // ---- access for support: codes the user makes, and what support does with them ------------

  async function showGrants() {
    if (isSupport()) { $("support-grants").replaceChildren(); return []; }
    let grants;
    try { grants = await api("GET", "/api/account/support"); } catch (_) { return []; }
    $("support-grants").replaceChildren(...grants.map((g) => el("li", { class: `grant ${g.state}` },
      T("support.grant", {
        state: T(`support.state-${g.state}`), created: when(g.created_ms), until: when(g.expires_ms),
        staff: g.staff ? T("support.grant-staff", { staff: g.staff }) : "",
        scopes: g.scopes.map((s) => T(`scope.${s}`)).join("; "),
      }),
      g.actions.length ? el("ol", {}, ...g.actions.map((a) => el("li", {}, T("support.action", {
        when: when(a.at_ms), scope: T(`scope.${a.scope}`), detail: a.detail, refused: a.allowed ? "" : T("support.refused"),
      })))) : null,
      g.state === "waiting" || g.state === "active"
        ? el("div", { class: "actions" }, el("button", { type: "button", onclick: () => endGrant(g.id) }, T("support.end")))
        : null)));
    return grants;
  }

  async function endGrant(id) {
    try {
      await api("DELETE", `/api/account/support/${id}`);
      say(T("support.ended"));
    } catch (e) { say(T("app.error") + e.message); }
    await showGrants();
  }

  $("support-code-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    const scopes = [...f.querySelectorAll("input[name=scope]:checked")].map((i) => i.value);
    try {
      const made = await api("POST", "/api/account/support", { minutes: Number(f.elements.minutes.value), scopes });
      $("support-code").textContent = made.code;
      $("support-code-until").textContent = T("support.code-until", { until: when(made.grant.expires_ms) });
      $("support-code-shown").hidden = false;
      say("");
    } catch (e) { say(T("app.error") + e.message); }
    await showGrants();
  });

  // ---- the support console (the operator's support staff) ---------------------------------

  const CONSOLE_VIEWS = [
    ["view-settings", "settings"], ["view-devices", "devices"], ["view-sign-ins", "sign-ins"],
    ["view-second-factor", "second-factor"], ["view-storage", "storage"],
  ];
  let consoleSession = null;

  async function showConsole(message) {
    let sessions = [];
    try { sessions = await api("GET", "/api/support/sessions"); } catch (e) { message = T("app.error") + e.message; }
    $("console-sessions").replaceChildren(...sessions.map((g) => el("li", {},
      el("button", { type: "button", class: "link", onclick: () => openSession(g) },
        T("console.session-row", { username: g.username, until: when(g.expires_ms) })))));
    if (consoleSession && !sessions.some((g) => g.id === consoleSession.id)) consoleSession = null;
    $("console-session").hidden = !consoleSession;
    say(message || "");
    show("support");
  }

  function openSession(g) {
    consoleSession = g;
    $("console-session-title").textContent = T("console.session", { username: g.username, practice: "" }).replace(/, $/, "");
    $("console-session-until").textContent = T("console.until", {
      until: when(g.expires_ms), scopes: g.scopes.map((s) => T(`scope.${s}`)).join("; "),
    });
    $("console-views").replaceChildren(...CONSOLE_VIEWS.filter(([scope]) => g.scopes.includes(scope))
      .map(([scope, what]) => el("button", { type: "button", onclick: () => consoleView(what) }, T(`console.${scope}`))));
    $("console-resend-form").hidden = !g.scopes.includes("resend-invitation");
    $("console-result").replaceChildren();
    $("console-session").hidden = false;
  }

  const shown = (v) => (v === null || v === undefined ? "–" : typeof v === "object" ? JSON.stringify(v) : String(v));
  function fields(obj) {
    return Object.entries(obj).map(([k, v]) => `${k}: ${k.endsWith("_ms") && v ? when(v) : shown(v)}`).join(" · ");
  }

  async function consoleView(what) {
    const g = consoleSession;
    try {
      const result = await api("GET", `/api/support/sessions/${g.id}/${what}`);
      const rows = Array.isArray(result) ? result : Object.entries(result).map(([k, v]) => ({ [k]: v }));
      $("console-result").replaceChildren(...rows.map((r) => el("li", {}, fields(r),
        what === "devices" && g.scopes.includes("revoke-device")
          ? el("div", { class: "actions" }, el("button", { type: "button", onclick: () => consoleRemove(r.id) }, T("console.remove-device")))
          : null)));
      say("");
    } catch (e) {
      say(T("app.error") + e.message);
      if (e.status === 404) await showConsole(T("console.ended"));
    }
  }

  async function consoleRemove(device) {
    if (!window.confirm(T("devices.confirm-remove"))) return;
    try {
      await api("DELETE", `/api/support/sessions/${consoleSession.id}/devices/${device}`);
      await consoleView("devices");
      say(T("console.removed"));
    } catch (e) { say(T("app.error") + e.message); }
  }

  $("redeem-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    try {
      const g = await api("POST", "/api/support/redeem", { code: f.elements.code.value });
      f.reset();
      await showConsole();
      openSession(g);
    } catch (e) { f.reset(); say(T("app.error") + e.message); }
  });

  $("console-resend-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    try {
      await api("POST", `/api/support/sessions/${consoleSession.id}/invitations/${encodeURIComponent(f.elements.username.value.trim())}`);
      f.reset();
      say(T("console.resent"));
    } catch (e) { say(T("app.error") + e.message); }
  });

  $("console-end").addEventListener("click", async () => {
    try { await api("POST", `/api/support/sessions/${consoleSession.id}/end`); } catch (_) { /* ended either way */ }
    consoleSession = null;
    await showConsole(T("console.ended"));
  });

  // While signed in, a new browser waiting for this account's approval is announced on every
  // page (a background request: it does not count as activity).
  let pendingTimer = null;
  function watchPending() {
    if (pendingTimer) clearInterval(pendingTimer);
    pendingTimer = setInterval(async () => {
      if (!account) { clearInterval(pendingTimer); pendingTimer = null; $("pending-banner").hidden = true; return; }
      try {
        const res = await fetch("/api/devices", { credentials: "same-origin", cache: "no-store" });
        if (!res.ok) return;
        const list = await res.json();
        $("pending-banner").hidden = list.pending.length === 0;
        if (!$("account").hidden && list.pending.length !== $("devices-pending").children.length) showDevices();
        // A support session under way is announced on every page, and shown live, step by step.
        if (!isSupport()) {
          const grants = await (await fetch("/api/account/support", { credentials: "same-origin", cache: "no-store" })).json();
          $("support-banner").hidden = !grants.some((g) => g.state === "active");
          if (!$("account").hidden && grants.some((g) => g.state === "waiting" || g.state === "active")) showGrants();
        }
      } catch (_) { /* try again at the next tick */ }
    }, 5000);
  }
  $("pending-review").addEventListener("click", () => showAccount());
  $("support-review").addEventListener("click", () => showAccount().then(() => $("support-grants").scrollIntoView()));

  $("preferences-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      account.notifications = await api("PUT", "/api/account/notifications", {
        new_device: $("prefs-new-device").checked, every_sign_in: $("prefs-every-sign-in").checked,
      });
      say(T("prefs.saved"));
    } catch (e) { say(T("app.error") + e.message); }
  });

  const when = (ms) => new Date(ms).toLocaleString();
  function signInRow(e, withUser) {
    const vars = { when: when(e.at_ms), username: e.username ?? "?", result: T(`result.${e.result}`), ip: e.ip,
      agent: `${e.browser} (${T(e.known_device ? "browser.known" : "browser.new")})` };
    return T(withUser ? "signin.row-user" : "signin.row", vars);
  }

  function showCodes(codes) {
    $("recovery-list").replaceChildren(...codes.map((c) => el("li", {}, c)));
    $("recovery").hidden = false;
    $("recovery-done").focus();
  }

  $("totp-begin").addEventListener("click", async () => {
    try {
      const setup = await api("POST", "/api/account/totp");
      $("totp-secret").textContent = setup.secret;
      $("totp-qr").src = `/api/account/totp/qr.svg?at=${Date.now()}`;
      $("totp-qr").alt = T("account.totp-scan");
      $("totp-setup").hidden = false;
      $("totp-begin").hidden = true;
      $("totp-confirm-code").focus();
    } catch (e) { say(T("app.error") + e.message); }
  });

  $("totp-confirm-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    try {
      const res = await api("POST", "/api/account/totp/confirm", { code: f.code.value });
      f.reset();
      $("totp-setup").hidden = true;
      $("totp-secret").textContent = "";
      $("totp-qr").removeAttribute("src");
      account.second_factor = true;
      $("account-2fa-state").textContent = T("account.2fa-on");
      say(T("account.totp-on"));
      showCodes(res.recovery_codes);
    } catch (e) { f.reset(); say(T("app.error") + e.message); }
  });

  $("recovery-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    try {
      const res = await api("POST", "/api/account/recovery-codes", { code: f.code.value });
      f.reset();
      showCodes(res.recovery_codes);
    } catch (e) { f.reset(); say(T("app.error") + e.message); }
  });

  $("recovery-done").addEventListener("click", () => {
    $("recovery-list").replaceChildren();
    showAccount();
  });

  function back() {
    say("");
    if (isSupport()) showConsole();
    else show(vault ? "vault" : "unlock");
  }
  $("account-back").addEventListener("click", back);
  $("practice-back").addEventListener("click", back);
  $("to-account").addEventListener("click", () => showAccount());

  // ---- practice settings (admins) ----------------------------------------------------------

  let policy = null;
  $("to-practice").addEventListener("click", async () => {
    try {
      policy = await api("GET", "/api/practice/policy");
      $("policy-idle").value = policy.idle_minutes;
      $("policy-2fa").checked = policy.second_factor_required;
      $("policy-hipaa").checked = policy.hipaa_mode;
      $("policy-min-password").value = policy.min_password_chars;
      $("practice-outbox").hidden = !account?.mail_to_outbox;
      $("invite-shown").hidden = true;
      $("release-list").replaceChildren();
      $("audit-state").textContent = "";
      $("audit-warning").hidden = true;
      $("audit-accept").hidden = true;
      say("");
      show("practice");
      await showMembers();
      await showPracticeLogs();
      await checkAudit();
    } catch (e) { say(T("app.error") + e.message); }
  });

  // ---- the admin console: members, invitations, disabling, the IP release ------------------

  async function showMembers() {
    let members;
    try { members = await api("GET", "/api/practice/users"); } catch (_) { return; }
    $("members").replaceChildren(...members.map((m) => {
      const act = (label, onclick) => el("button", { type: "button", onclick }, T(label));
      return el("li", { class: "member" },
        T("members.row", {
          username: m.username, roles: m.roles.join(", "), state: T(`members.state-${m.state}`),
          tfa: T(m.second_factor ? "members.on" : "members.off"), email: m.email ? ` · ${m.email}` : "",
        }),
        el("div", { class: "hint" }, m.fingerprint ? T("members.fingerprint", { fingerprint: m.fingerprint }) : T("members.no-key"),
          m.invited_until ? ` · ${T("members.invited-until", { until: when(m.invited_until) })}` : ""),
        el("div", { class: "actions" },
          m.state === "active" && m.username !== account.username ? act("members.disable", () => setEnabled(m.username, false)) : null,
          m.state === "disabled" ? act("members.enable", () => setEnabled(m.username, true)) : null,
          m.state === "invited" && m.email ? act("members.resend", () => resendInvitation(m.username)) : null));
    }));
  }

  async function setEnabled(username, enabled) {
    if (!enabled && !window.confirm(T("members.confirm-disable", { username }))) return;
    try {
      await api("POST", `/api/practice/users/${encodeURIComponent(username)}/${enabled ? "enable" : "disable"}`);
      say(T(enabled ? "members.enabled" : "members.disabled", { username }));
    } catch (e) { say(T("app.error") + e.message); }
    await showMembers();
    await showPracticeLogs();
  }

  async function resendInvitation(username) {
    try {
      await api("POST", `/api/practice/users/${encodeURIComponent(username)}/invitation`);
      say(T("members.resent", { username }));
    } catch (e) { say(T("app.error") + e.message); }
    await showMembers();
  }

  $("invite-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    const roles = [f.elements.practitioner.checked ? "practitioner" : null, f.elements.admin.checked ? "admin" : null].filter(Boolean);
    try {
      const e = await api("POST", "/api/practice/invitations", { username: f.elements.username.value.trim(), roles, email: f.elements.email.value.trim() || null });
      $("invite-code").textContent = e.code;
      $("invite-shown").hidden = false;
      f.reset();
      say("");
    } catch (e) { say(T("app.error") + e.message); }
    await showMembers();
  });

  $("release-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    const username = f.elements.username.value.trim();
    try {
      const entries = await api("POST", "/api/practice/ip-release", { username, reason: f.elements.reason.value });
      $("release-list").replaceChildren(...entries.map((e) => el("li", {}, T("release.row", { when: when(e.at_ms), kind: e.kind, what: e.what, ip: e.ip }))));
      f.reset();
      say(T("release.done", { username }));
      await showPracticeLogs();
    } catch (e) { say(T("app.error") + e.message); }
  });

  function eventText(e) {
    return T(`event.${e.kind}`, {
      when: when(e.at_ms), username: e.username, by: e.by, verified_by: e.verified_by, evidence: T(`evidence.${e.evidence}`),
      detail: e.detail ?? "",
    });
  }

  // ---- the practice's audit trail: checked here, anchored in this browser ------------------
  // Each entry's hash is SHA-256("kluis/v1/audit" ‖ 0x00 ‖ prev ‖ seq LF at_ms LF kind LF subject
  // LF actor LF object) (FORMAT.md §9.6). This browser keeps the last head it saw and checks
  // that the trail only grows from it: a server that rewrites or shortens it is caught here.

  const AUDIT_LABEL = new TextEncoder().encode("kluis/v1/audit");
  const fromHex = (h) => Uint8Array.from(h.match(/../g) || [], (b) => parseInt(b, 16));
  const toHex = (b) => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, "0")).join("");

  async function entryHash(prevHex, e) {
    const line = new TextEncoder().encode([e.seq, e.at_ms, e.kind, e.subject ?? "", e.actor, e.object].join("\n"));
    const prev = fromHex(prevHex);
    const bytes = new Uint8Array(AUDIT_LABEL.length + 1 + prev.length + line.length);
    bytes.set(AUDIT_LABEL, 0);
    bytes.set(prev, AUDIT_LABEL.length + 1);
    bytes.set(line, AUDIT_LABEL.length + 1 + prev.length);
    return toHex(await crypto.subtle.digest("SHA-256", bytes));
  }

  const auditStore = deviceStore("audit-head");

  let auditNow = null; // the head just read, for "take the trail as it is now"

  async function checkAudit() {
    const key = `practice:${account.practice}`;
    const seen = await auditStore.get(key);
    let since = seen ? seen.seq - 1 : 0;
    let last = null; // {seq, hash} verified so far
    let why = null;
    let restored = null;
    for (;;) {
      const page = await api("GET", `/api/practice/audit?since=${since}`);
      for (const e of page.entries) {
        if (!last && seen) {
          if (e.seq !== seen.seq || e.hash !== seen.hash) { why = T("audit.why-gone"); break; }
        } else {
          const prev = last ? last.hash : "0".repeat(64);
          if (e.seq !== (last ? last.seq + 1 : 1) || e.prev !== prev) { why = T("audit.why-link", { seq: e.seq }); break; }
        }
        if (await entryHash(e.prev, e) !== e.hash) { why = T("audit.why-hash", { seq: e.seq }); break; }
        if (e.kind === "restored") restored = e;
        last = { seq: e.seq, hash: e.hash };
      }
      if (why || page.entries.length < 1000) { auditNow = page.head; break; }
      since = last.seq;
    }
    if (seen && !why && !last) why = T("audit.why-gone"); // shorter than what this browser saw
    if (why && auditNow && !restored) {
      // A restore from backup shortens the trail and says so in an entry near its end.
      const tail = await api("GET", `/api/practice/audit?since=${Math.max(0, auditNow.seq - 20)}`);
      restored = tail.entries.filter((e) => e.kind === "restored").pop() || null;
    }
    const head = auditNow ? `${auditNow.seq}:${auditNow.hash}` : "–";
    $("audit-warning").hidden = !why;
    $("audit-accept").hidden = !why;
    if (why) {
      $("audit-warning").textContent = T("audit.broken", { seen: seen.seq, when: when(seen.at), why })
        + (restored ? T("audit.restored", {
          seq: restored.seq,
          when: when(restored.at_ms),
          taken: when(Number(restored.object.split("@")[1]) || restored.at_ms),
        }) : "");
      $("audit-state").textContent = "";
      return;
    }
    $("audit-state").textContent = seen
      ? T("audit.grows", { n: last?.seq ?? 0, seen: seen.seq, when: when(seen.at), head })
      : T("audit.first", { n: last?.seq ?? 0, head });
    if (last) await auditStore.put(key, { seq: last.seq, hash: last.hash, at: Date.now() });
  }

  $("audit-accept").addEventListener("click", async () => {
    if (!auditNow) return;
    await auditStore.put(`practice:${account.practice}`, { seq: auditNow.seq, hash: auditNow.hash, at: Date.now() });
    say(T("audit.accepted"));
    await checkAudit();
  });

  async function showPracticeLogs() {
    const [history, events] = await Promise.all([api("GET", "/api/practice/sign-ins"), api("GET", "/api/practice/events")]);
    $("practice-history").replaceChildren(...history.slice(0, 50).map((e) => el("li", {}, signInRow(e, true))));
    $("practice-events").replaceChildren(...events.map((e) => el("li", {}, eventText(e))));
  }

  $("reset-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    const username = f.elements.username.value.trim();
    try {
      await api("POST", `/api/practice/users/${encodeURIComponent(username)}/second-factor-reset`,
        { verified_by: f.elements.verified_by.value, evidence: f.elements.evidence.value });
      f.reset();
      say(T("practice.reset-done", { username }));
      await showPracticeLogs();
    } catch (e) { say(T("app.error") + e.message); }
  });

  $("policy-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const next = {
        ...policy, idle_minutes: Number($("policy-idle").value), min_password_chars: Number($("policy-min-password").value),
        second_factor_required: $("policy-2fa").checked, hipaa_mode: $("policy-hipaa").checked,
      };
      policy = await api("PUT", "/api/practice/policy", next);
      say(T("practice.saved"));
    } catch (e) { say(T("app.error") + e.message); }
  });

  $("enroll-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    try {
      const body = { code: f.code.value, password: f.password.value, email: f.email.value };
      if (f.mobile.value.trim()) body.mobile = f.mobile.value;
      // This browser becomes a trusted device of the new account (kept under its username once
      // the server says which it is).
      const pair = await deviceKey.generate().catch(() => null);
      const device = pair ? await deviceKey.proof("", pair) : undefined;
      if (device) body.device = device;
      const me = await api("POST", "/api/enroll", body);
      f.reset();
      if (pair) await deviceKey.keep(me.username, pair).catch(() => {});
      signedIn(me);
    } catch (e) {
      say(T("app.error") + e.message);
    }
  });

  $("unlock-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    const file = f.file.files[0];
    if (!file) return;
    const keyBytes = new Uint8Array(await file.arrayBuffer());
    const passphrase = $("unlock-pass-row").hidden ? undefined : f.passphrase.value;
    try {
      vault = wasm_bindgen.Vault.unlock(keyBytes, passphrase); // overwrites keyBytes with zeros
    } catch (e) {
      keyBytes.fill(0);
      if (/passphrase/i.test(String(e.message)) && $("unlock-pass-row").hidden) {
        $("unlock-pass-row").hidden = false;
        say(T("unlock.need-passphrase"));
        f.passphrase.focus();
      } else {
        say(T("app.error") + e.message);
      }
      return;
    }
    f.reset();
    $("unlock-pass-row").hidden = true;
    const gen = generation;
    try {
      const me = await api("GET", "/api/me");
      account = me;
      if (me.second_factor_required && !me.second_factor) {
        throw new Error(T(me.second_factor_due ? "account.2fa-reset" : "account.2fa-required"));
      }
      idleMs = (me.idle_minutes || 15) * 60 * 1000;
      lastActivity = Date.now();
      // The key file is registered on first use; later unlocks must present the same one.
      if (!me.public_key) {
        await api("POST", "/api/vault-key", { public_key: vault.public_key });
      } else if (me.public_key !== vault.public_key) {
        throw new Error(T("vault.wrong-key"));
      }
      restoredNow = false;
      clients = await openVault("identities", me, gen);
      notes = await openVault("notes", me, gen);
      await escrow();
      stillOpen(gen);
    } catch (e) {
      if (gen !== generation) return; // locked meanwhile: the lock said why
      lock();
      say(e.plain ? e.message : T("app.error") + e.message);
      show("unlock");
      return;
    }
    $("vault-label").textContent = vault.label;
    $("vault-fingerprint").textContent = vault.fingerprint;
    showState();
    renderClients();
    say(restoredNow ? T("restore.accepted") : "");
    show("vault");
  });

  // A key file made here: the text leaves wasm only as the download, and its copy is wiped.
  $("newkey-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const f = ev.target;
    try {
      const key = wasm_bindgen.NewKeyFile.generate(f.elements.label.value, Math.floor(Date.now() / 1000));
      const text = key.take_text();
      const blob = new Blob([text], { type: "application/octet-stream" });
      text.fill(0);
      const url = URL.createObjectURL(blob);
      const name = f.elements.label.value.trim().replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^-+|-+$/g, "") || "my";
      const a = el("a", { href: url, download: `${name}.kluis` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      $("newkey-fingerprint").textContent = key.fingerprint;
      $("newkey-done").hidden = false;
      key.free();
    } catch (e) { say(T("app.error") + e.message); }
  });

  $("lock").addEventListener("click", () => { lock(T("app.locked")); show("unlock"); });

  $("signout").addEventListener("click", async () => {
    lock();
    account = null;
    $("pending-banner").hidden = true;
    $("support-banner").hidden = true;
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
      signedIn(await api("GET", "/api/me"));
    } catch (_) {
      show("signin");
    }
  }
  start();
})();
