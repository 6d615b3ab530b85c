// The browser benchmark (README, "Benchmarks"): opening a vault of N notes, with the bulk
// AES-GCM through WebCrypto (kluis's route) and in wasm (RustCrypto), beside raw WebCrypto
// AES-GCM over the same number and size of bodies. Every figure comes from this same page.
"use strict";

(() => {
  const out = document.getElementById("results");
  const log = (line) => { out.textContent += line + "\n"; };
  const ms = (t) => t.toFixed(0).padStart(6) + " ms";

  async function rawWebCrypto(n, size) {
    const key = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
    const iv = new Uint8Array(12);
    const bodies = [];
    for (let i = 0; i < n; i++) {
      crypto.getRandomValues(iv);
      const ivCopy = iv.slice();
      bodies.push([ivCopy, await crypto.subtle.encrypt({ name: "AES-GCM", iv: ivCopy }, key, new Uint8Array(size))]);
    }
    const t = performance.now();
    await Promise.all(bodies.map(([i, c]) => crypto.subtle.decrypt({ name: "AES-GCM", iv: i }, key, c)));
    return performance.now() - t;
  }

  async function openVault(n, size) {
    const fixture = wasm_bindgen.BenchVault.build(n, size);
    const sync = fixture.sync;
    const vault = wasm_bindgen.Vault.unlock(fixture.key_file, undefined);
    const session = vault.session("notes");
    const t0 = performance.now();
    const list = session.accept(sync, true, undefined, undefined);
    const t1 = performance.now();
    await Promise.all(list.map((r) => session.open(r.envelope)));
    const t2 = performance.now();
    for (const r of list) session.open_in_wasm(r.envelope);
    const t3 = performance.now();
    session.free();
    vault.free();
    return { verify: t1 - t0, webcrypto: t2 - t1, total: t2 - t0, wasm: t3 - t2, bytes: sync.length };
  }

  async function run() {
    out.textContent = "";
    const n = Number(new URLSearchParams(location.search).get("n") || 10000);
    log(`Open a vault of ${n} notes (verify the manifest and every record, decrypt all):`);
    for (const size of [2048, 16384]) {
      const r = await openVault(n, size);
      const raw = await rawWebCrypto(n, size + 32);
      log(`  ${String(size / 1024).padStart(2)} KiB notes: open ${ms(r.total)} (verify ${ms(r.verify)}, decrypt via WebCrypto ${ms(r.webcrypto)}); ` +
        `decrypt in wasm ${ms(r.wasm)}; raw WebCrypto AES-GCM over the same bodies ${ms(raw)}; ` +
        `throughput vs raw WebCrypto ${(raw / r.webcrypto).toFixed(2)}; sync response ${(r.bytes / 1e6).toFixed(1)} MB`);
    }
    log("done");
  }

  document.getElementById("run").addEventListener("click", run);
  const wasm = document.querySelector('meta[name="kluis-wasm"]');
  wasm_bindgen({ module_or_path: fetch(wasm.content, { integrity: wasm.dataset.integrity }) }).then(() => {
    if (new URLSearchParams(location.search).has("auto")) run();
  });
})();
