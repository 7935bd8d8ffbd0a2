import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTestGateway, rawTlsExchange, firstStatus, type TestGateway } from '../helpers/harness.js';

/**
 * Slow clients against the listeners' timeouts (src/server): from the adversarial review of the
 * core, where each test failed before its fix.
 */

const ROUTES = `
  - name: api
    host: api.test.local
    upstream: UPSTREAM
    auth: none
`;

/** Short limits, so a slow-client test takes seconds. */
const SLOW_YAML = 'server: { headersTimeout: 1s, requestTimeout: 3s, shutdownTimeout: 1s }';

/** Long enough past a 1 s headersTimeout (sweep and idle slack included) to judge a close. */
const CLOSE_WITHIN_MS = 5_000;

async function gateway(t: TestContext, routes = ROUTES, env: Record<string, string> = {}, extraYaml = SLOW_YAML): Promise<TestGateway> {
  const gw = await startTestGateway(routes, env, extraYaml);
  t.after(() => gw.close());
  return gw;
}

/** Milliseconds until the gateway closes `socket`, or undefined when it is still open after `ms`. */
function closedWithin(socket: net.Socket, ms: number): Promise<number | undefined> {
  const started = Date.now();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(undefined);
    }, ms);
    socket.on('error', () => undefined);
    // Read whatever comes (a 408, a TLS alert): a paused socket never sees the server's FIN.
    socket.resume();
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(Date.now() - started);
    });
  });
}

function tcpConnect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => resolve(socket));
    socket.once('error', reject);
  });
}

function tlsConnect(port: number, ca: string): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca, servername: 'api.test.local', checkServerIdentity: () => undefined }, () => resolve(socket));
    socket.once('error', reject);
  });
}

// ---------------------------------------------------------------------------------------------
// Slow clients. Node's headersTimeout covers a connection from the end of its TLS handshake, but
// the handshake itself had Node's default handshakeTimeout of 120 s: a client that opens TCP
// connections and never sends (or never finishes) a ClientHello held each one for two minutes.

test('slowloris: a TLS handshake that never completes is closed after headersTimeout, not 120 s', async (t) => {
  const gw = await gateway(t);

  await t.test('TCP open, no ClientHello', async () => {
    const ms = await closedWithin(await tcpConnect(gw.port), CLOSE_WITHIN_MS);
    assert.ok(ms !== undefined, 'a connection stuck before its TLS handshake was still open');
  });

  await t.test('half a ClientHello', async () => {
    const socket = await tcpConnect(gw.port);
    // A TLS record header announcing a 512-byte handshake message, then one byte and silence.
    socket.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]));
    const ms = await closedWithin(socket, CLOSE_WITHIN_MS);
    assert.ok(ms !== undefined, 'a half handshake was still open');
  });
  assert.deepEqual(gw.upstream.seen, []);
});

test('already correct (guards): idle connections and stalled headers end at headersTimeout, stalled headers with 408', async (t) => {
  const gw = await gateway(t);

  await t.test('plain HTTP listener, no bytes at all', async () => {
    assert.ok((await closedWithin(await tcpConnect(gw.running.ports.http), CLOSE_WITHIN_MS)) !== undefined);
  });

  await t.test('HTTPS listener, handshake done, no request', async () => {
    assert.ok((await closedWithin(await tlsConnect(gw.port, gw.ca), CLOSE_WITHIN_MS)) !== undefined);
  });

  await t.test('half the headers, then silence: 408 REQUEST_TIMEOUT', async () => {
    const raw = await rawTlsExchange(gw.port, gw.ca, 'GET /x HTTP/1.1\r\nHost: api.test.local\r\nX-Slow: a', { waitMs: CLOSE_WITHIN_MS });
    assert.equal(firstStatus(raw), 408, raw);
    assert.match(raw, /"code":"REQUEST_TIMEOUT"/);
  });
  await sleep(150);
  assert.deepEqual(gw.upstream.seen, []);
});
