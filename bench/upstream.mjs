// The benchmark's upstream: a keep-alive server answering every request with the same small
// body, in a process of its own. Prints its port on stdout. Plain HTTP, as the proxies under
// test reach it; with TLS_CERT_FILE and TLS_KEY_FILE it is the `bare` row instead: the same
// answer over https, proxying nothing, the ceiling of any Node proxy on this machine.
import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';

const BODY = Buffer.from('{"ok":true,"service":"bench-upstream"}\n');

const answer = (req, res) => {
  // A request body (none in the benchmark) is drained before answering.
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': BODY.length });
    res.end(BODY);
  });
};
const tls = process.env.TLS_CERT_FILE && process.env.TLS_KEY_FILE;
const server = tls
  ? https.createServer({ cert: readFileSync(process.env.TLS_CERT_FILE), key: readFileSync(process.env.TLS_KEY_FILE), minVersion: 'TLSv1.2' }, answer)
  : http.createServer(answer);
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ ready: true, port: server.address().port })}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
