// A rewriting HTTPS proxy for the tampering tests: it sits between the browser and the real
// kluis server (which is never changed) and alters what the server sends, the way a malicious
// server or a network attacker past TLS would. Modes (set with `proxy.mode = ...`):
//   "pass"     forward unchanged;
//   "flip"     flip one bit in the last byte of every sync response (inside the last envelope);
//   "version"  answer a request for version N of a record with version 1 (a swapped version).
import { request as httpsRequest } from "node:https";
import { createServer } from "node:https";

export function startProxy({ target, cert, key }) {
  const proxy = { mode: "pass", port: 0, server: null };
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
