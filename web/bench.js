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

  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const ROUNDS = 3; // these shared machines are noisy: each figure is the median of three runs

  async function measure(n, size) {
    const fixture = wasm_bindgen.BenchVault.build(n, size);
    const sync = fixture.sync;
    const envelopes = fixture.envelopes;
    const vault = wasm_bindgen.Vault.unlock(fixture.key_file, undefined);
    const session = vault.session("notes");
    const utf8 = new TextDecoder("utf-8", { fatal: true });
    const r = { open: [], parse: [], batch: [], raw: [], bytes: sync.length };
    for (let round = 0; round < ROUNDS; round++) {
      // The app's route: verify and decrypt in one call, then read the JSON.
      let t = performance.now();
      const list = await session.accept(sync, true, undefined, undefined);
      r.open.push(performance.now() - t);
      t = performance.now();
      for (const rec of list) JSON.parse(utf8.decode(rec.plaintext));
      r.parse.push(performance.now() - t);
      // Decryption alone over the same envelopes, beside raw WebCrypto over as many bodies.
      t = performance.now();
      await session.open_all(envelopes);
      r.batch.push(performance.now() - t);
      r.raw.push(await rawWebCrypto(n, size + 32));
    }
    let t = performance.now();
    await Promise.all(envelopes.map((e) => session.open(e)));
    r.single = performance.now() - t;
    t = performance.now();
    for (const e of envelopes) session.open_in_wasm(e);
    r.wasm = performance.now() - t;
    session.free();
    vault.free();
    return r;
  }

  async function run() {
    out.textContent = "";
    const n = Number(new URLSearchParams(location.search).get("n") || 10000);
    log(`Open a vault of ${n} notes (verify the manifest and every record, decrypt all); medians of ${ROUNDS} runs:`);
    for (const size of [2048, 16384]) {
      const r = await measure(n, size);
      const [batch, raw] = [median(r.batch), median(r.raw)];
      log(`  ${String(size / 1024).padStart(2)} KiB notes: open ${ms(median(r.open))} (verify and decrypt) + read the JSON ${ms(median(r.parse))}; ` +
        `decryption alone: batched ${ms(batch)}, one call per record ${ms(r.single)}, in wasm ${ms(r.wasm)}; ` +
        `raw WebCrypto AES-GCM over the same bodies ${ms(raw)}; throughput vs raw WebCrypto ${(raw / batch).toFixed(2)}; ` +
        `sync response ${(r.bytes / 1e6).toFixed(1)} MB`);
    }
    log("done");
  }

  const guarded = () => run().catch((e) => log(`error: ${e.message ?? e}`));
  document.getElementById("run").addEventListener("click", guarded);
  const wasm = document.querySelector('meta[name="kluis-wasm"]');
  wasm_bindgen({ module_or_path: fetch(wasm.content, { integrity: wasm.dataset.integrity }) }).then(() => {
    if (new URLSearchParams(location.search).has("auto")) guarded();
  });
})();
