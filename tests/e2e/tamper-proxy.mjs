// A rewriting HTTPS proxy for the tampering tests: it sits between the browser and the real
// kluis server (which is never changed) and alters what the server sends, the way a malicious
// server or a network attacker past TLS would. Modes (set with `proxy.mode = ...`):
//   "pass"     forward unchanged;
//   "flip"     flip one bit in the last byte of every sync response (inside the last envelope);
//   "version"  answer a request for version N of a record with version 1 (a swapped version);
//   "drop"     leave the last record out of every sync response (FORMAT.md §10.2);
//   "inject"   put back into every sync response the records of the first sync response this
//              proxy saw for that vault that are no longer there (a deleted record, replayed).
import { request as httpsRequest } from "node:https";
import { createServer } from "node:https";

export function startProxy({ target, cert, key }) {
  const proxy = { mode: "pass", port: 0, server: null, seen: new Map() };
  proxy.server = createServer({ cert, key }, (req, res) => {
    let path = req.url;
    const versioned = path.match(/^(\/api\/vaults\/[0-9a-f]{32}\/records\/[0-9a-f]{32})\?version=(\d+)$/);
    if (proxy.mode === "version" && versioned && versioned[2] !== "1") path = `${versioned[1]}?version=1`;
    const upstream = httpsRequest({
      host: target.host, port: target.port, method: req.method, path, headers: req.headers,
      rejectUnauthorized: false,
    }, (up) => {
      const chunks = [];
      up.on("data", (c) => chunks.push(c));
      up.on("end", () => {
        let body = Buffer.concat(chunks);
        if (proxy.mode === "flip" && /\/sync\?/.test(req.url) && up.statusCode === 200 && body.length > 0) {
          body = Buffer.from(body);
          body[body.length - 1] ^= 0x01;
        }
        if (proxy.mode === "drop" && /\/sync\?/.test(req.url) && up.statusCode === 200) {
          body = dropLastRecord(body);
        }
        // The practice's audit trail: its last entry left out, or its first entry rewritten.
        if (/^\/api\/practice\/audit/.test(req.url) && up.statusCode === 200 && proxy.mode.startsWith("audit-")) {
          const doc = JSON.parse(body);
          if (proxy.mode === "audit-cut") doc.entries.pop();
          if (proxy.mode === "audit-rewrite" && doc.entries.length) doc.entries[0].kind = "password-reset";
          body = Buffer.from(JSON.stringify(doc));
        }
        const vault = req.url.match(/^\/api\/vaults\/([0-9a-f]{32})\/sync\?/)?.[1];
        if (vault && up.statusCode === 200) {
          if (!proxy.seen.has(vault)) proxy.seen.set(vault, parseSync(body).records);
          if (proxy.mode === "inject") body = injectRecords(body, proxy.seen.get(vault));
        }
        const headers = { ...up.headers, "content-length": String(body.length) };
        res.writeHead(up.statusCode, headers);
        res.end(body);
      });
    });
    upstream.on("error", () => { res.writeHead(502); res.end(); });
    req.pipe(upstream);
  });
  return new Promise((resolve) => proxy.server.listen(0, "127.0.0.1", () => {
    proxy.port = proxy.server.address().port;
    resolve(proxy);
  }));
}

// Just enough canonical CBOR for a sync response: {1: bstr, 2: [bstr...], 3: [[bstr, bstr]...]}.
function head(buf, at) {
  const b = buf[at], major = b >> 5, info = b & 31;
  if (info < 24) return { major, n: info, at: at + 1 };
  const size = { 24: 1, 25: 2, 26: 4, 27: 8 }[info];
  let n = 0;
  for (let i = 0; i < size; i++) n = n * 256 + buf[at + 1 + i];
  return { major, n, at: at + 1 + size };
}
function encodeHead(major, n) {
  const m = major << 5;
  if (n < 24) return Buffer.from([m | n]);
  if (n < 256) return Buffer.from([m | 24, n]);
  if (n < 65536) return Buffer.from([m | 25, n >> 8, n & 255]);
  const b = Buffer.alloc(5); b[0] = m | 26; b.writeUInt32BE(n, 1); return b;
}
function skipBytes(buf, at) { const h = head(buf, at); return h.at + h.n; }
function dropLastRecord(buf) {
  let at = head(buf, 0).at;                 // map(3)
  at = head(buf, at).at; at = skipBytes(buf, at); // 1: head
  at = head(buf, at).at;                    // key 2
  const ups = head(buf, at); at = ups.at;
  for (let i = 0; i < ups.n; i++) at = skipBytes(buf, at);
  at = head(buf, at).at;                    // key 3
  const recs = head(buf, at);
  if (recs.n === 0) return buf;
  let p = recs.at, lastStart = p;
  for (let i = 0; i < recs.n; i++) { lastStart = p; p = head(buf, p).at; p = skipBytes(buf, p); p = skipBytes(buf, p); }
  return Buffer.concat([buf.subarray(0, at), encodeHead(4, recs.n - 1), buf.subarray(recs.at, lastStart)]);
}

function parseSync(buf) {
  let at = head(buf, 0).at;
  at = head(buf, at).at;
  const headStart = at; at = skipBytes(buf, at);
  const headBytes = buf.subarray(headStart, at);
  at = head(buf, at).at;
  const updStart = at;
  const ups = head(buf, at); at = ups.at;
  for (let i = 0; i < ups.n; i++) at = skipBytes(buf, at);
  const updBytes = buf.subarray(updStart, at);
  at = head(buf, at).at;
  const recs = head(buf, at); at = recs.at;
  const records = [];
  for (let i = 0; i < recs.n; i++) {
    const start = at;
    at = head(buf, at).at;
    const idh = head(buf, at);
    const id = buf.subarray(idh.at, idh.at + idh.n).toString("hex");
    at = skipBytes(buf, at); at = skipBytes(buf, at);
    records.push({ id, bytes: Buffer.from(buf.subarray(start, at)) });
  }
  return { headBytes, updBytes, records };
}

function injectRecords(buf, earlier) {
  const now = parseSync(buf);
  const have = new Set(now.records.map((r) => r.id));
  const all = [...now.records, ...earlier.filter((r) => !have.has(r.id))].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return Buffer.concat([Buffer.from([0xa3, 0x01]), now.headBytes, Buffer.from([0x02]), now.updBytes,
    Buffer.from([0x03]), encodeHead(4, all.length), ...all.map((r) => r.bytes)]);
}
