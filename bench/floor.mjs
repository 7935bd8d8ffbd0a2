// The floor of the stack: a bare Node https server in front of http-proxy with a keep-alive
// agent, nothing else. Everything the gateway adds is measured against this. Own process.
import https from 'node:https';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import httpProxy from 'http-proxy';

const target = process.env.UPSTREAM_URL;
const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });
const proxy = httpProxy.createProxyServer({ target, agent });
// http-proxy answers a client error with nothing; the floor answers 502 and moves on.
proxy.on('error', (_err, _req, res) => {
  if (res && 'writeHead' in res && !res.headersSent) res.writeHead(502).end();
  else res?.destroy?.();
});
const server = https.createServer({ cert: readFileSync(process.env.TLS_CERT_FILE), key: readFileSync(process.env.TLS_KEY_FILE), minVersion: 'TLSv1.2' }, (req, res) => proxy.web(req, res));
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ ready: true, port: server.address().port })}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
