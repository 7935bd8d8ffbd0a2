// The benchmark's upstream: a plain keep-alive HTTP server answering every request with the
// same small body, in a process of its own. Prints its port on stdout.
import http from 'node:http';

const BODY = Buffer.from('{"ok":true,"service":"bench-upstream"}\n');

const server = http.createServer((req, res) => {
  // A request body (none in the benchmark) is drained before answering.
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': BODY.length });
    res.end(BODY);
  });
});
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ ready: true, port: server.address().port })}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
