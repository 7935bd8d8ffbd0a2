// The fastest forwarding this runtime offers: a bare Node https server handing each request to
// an undici Pool (keep-alive connections to the upstream) and streaming the answer back. Only
// hop-by-hop headers are dropped, both ways; nothing else is checked or added. What the
// gateway's forwarder could cost at best if it moved from http-proxy to undici. Own process.
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { Pool } from 'undici';

// RFC 9110 §7.6.1, plus the ones undici refuses to be given (it frames the request itself).
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'expect', 'proxy-authorization', 'proxy-authenticate']);

function without(headers) {
  const out = {};
  for (const name in headers) if (!HOP.has(name)) out[name] = headers[name];
  return out;
}

// As many connections as the floor's agent allows (maxSockets 512); each used for one request at a time.
const pool = new Pool(process.env.UPSTREAM_URL, { connections: 512, pipelining: 1, keepAliveTimeout: 60_000 });

const server = https.createServer({ cert: readFileSync(process.env.TLS_CERT_FILE), key: readFileSync(process.env.TLS_KEY_FILE), minVersion: 'TLSv1.2' }, (req, res) => {
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  pool.stream(
    { method: req.method, path: req.url, headers: without(req.headers), body: hasBody ? req : null, opaque: res },
    ({ statusCode, headers, opaque }) => {
      opaque.writeHead(statusCode, without(headers));
      return opaque;
    },
    (err) => {
      if (!err) return;
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    },
  );
});
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ ready: true, port: server.address().port })}\n`);
});
process.on('SIGTERM', () => server.close(() => pool.close().finally(() => process.exit(0))));
