import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { startTestGateway } from '../helpers/harness.js';
import { waitFor } from '../helpers/wait.js';

/**
 * An upstream that stalls in the middle of its body: the client has the 200 head and part of
 * the body, then the connection is cut at the route timeout. The access line must say what the
 * client got (200, aborted), with the timeout as the reason; it said 504 `failed`, a status
 * the client never saw (a reset mid-body was already logged 200 `aborted`).
 */
test('regression: an upstream that stalls mid-body is logged with the status the client got, cut off at the route timeout', async (t) => {
  const received: string[] = [];
  let upstreamClosed = false;
  const upstream = net.createServer((sock) => {
    sock.on('error', () => undefined);
    sock.once('data', (d) => {
      received.push(d.toString('latin1'));
      sock.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc');
    });
    sock.on('close', () => (upstreamClosed = true));
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  t.after(() => upstream.close());
  const gw = await startTestGateway(`
  - name: api
    host: api.test.local
    upstream: http://127.0.0.1:${(upstream.address() as net.AddressInfo).port}
    auth: none
    timeout: 300ms
`);
  t.after(() => gw.close());

  const client = tls.connect({ host: '127.0.0.1', port: gw.port, ca: gw.ca, servername: 'api.test.local', checkServerIdentity: () => undefined });
  t.after(() => client.destroy());
  const chunks: Buffer[] = [];
  client.on('data', (c: Buffer) => chunks.push(c));
  client.on('error', () => undefined);
  const closed = new Promise<void>((r) => client.once('close', () => r()));
  await new Promise<void>((r) => client.once('secureConnect', () => r()));
  const started = Date.now();
  client.write('GET /slow HTTP/1.1\r\nHost: api.test.local\r\n\r\n');
  await closed;
  const raw = Buffer.concat(chunks).toString('latin1');
  assert.match(raw, /^HTTP\/1\.1 200 OK\r\n/);
  assert.ok(raw.endsWith('\r\n\r\nabc'), 'the body is cut where the upstream stopped, nothing appended');
  assert.ok(Date.now() - started >= 250, 'cut at the route timeout');
  assert.equal(received.length, 1);
  assert.match(received[0] ?? '', /^GET \/slow HTTP\/1\.1\r\n/);
  await waitFor(() => upstreamClosed, 'the upstream request is torn down', 3_000);
  await waitFor(() => gw.log.accessEntries.length > 0, 'access line written', 2_000);
  const entry = gw.log.accessEntries[0];
  assert.equal(entry?.status, 200);
  assert.equal(entry?.outcome, 'aborted');
  assert.equal(entry?.code, 'UPSTREAM_TIMEOUT');
});
