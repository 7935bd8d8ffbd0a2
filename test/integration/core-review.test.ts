import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { X509Certificate, randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import selfsigned from 'selfsigned';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTestGateway, rawTlsExchange, firstStatus, testCertificate, type TestGateway } from '../helpers/harness.js';

/**
 * Adversarial review of the core (listeners, TLS, redirect, config policy, admin): each test
 * here failed before its fix.
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

// ---------------------------------------------------------------------------------------------
// Certificate reload in production: startup refuses a self-signed or expired certificate and a
// key others can read, but a reload (file change or SIGHUP) took any pair OpenSSL accepted.

const SNI = 'api.test.local';

function tempDir(t: TestContext, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A leaf for api.test.local issued by a throwaway CA (so not self-signed). */
async function caIssuedPair(opts: { expired?: boolean } = {}): Promise<{ cert: string; key: string }> {
  const ca = await selfsigned.generate([{ name: 'commonName', value: 'crm-gateway review CA' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    ],
  });
  const now = Date.now();
  const validity = opts.expired ? { notBeforeDate: new Date(now - 10 * 86_400_000), notAfterDate: new Date(now - 86_400_000) } : {};
  const leaf = await selfsigned.generate([{ name: 'commonName', value: SNI }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    ca: { key: ca.private, cert: ca.cert },
    ...validity,
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: SNI }] }],
  });
  return { cert: leaf.cert, key: leaf.private };
}

/** Writes a temporary file beside `dest` with `mode`, then renames it over `dest` (as renewal tools do). */
function replaceByRename(content: string, dest: string, mode: number): void {
  const tmp = `${dest}.tmp-${randomBytes(4).toString('hex')}`;
  writeFileSync(tmp, content, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, dest);
}

function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: SNI, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.end();
    });
    socket.once('error', reject);
  });
}

async function until<T>(what: string, probe: () => T | undefined, ms = 5_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}

test('production: a certificate reload applies the startup policy (self-signed, expired, key readable by others)', async (t) => {
  const dir = tempDir(t, 'crm-gw-review-reload-');
  const certFile = join(dir, 'gateway.crt');
  const keyFile = join(dir, 'gateway.key');
  const good = await caIssuedPair();
  writeFileSync(certFile, good.cert);
  writeFileSync(keyFile, good.key, { mode: 0o600 });
  const goodFingerprint = new X509Certificate(good.cert).fingerprint256;
  const gw = await gateway(t, ROUTES, { GATEWAY_ENV: 'production', TLS_CERT_FILE: certFile, TLS_KEY_FILE: keyFile }, 'tls: { watch: false }\nserver: { shutdownTimeout: 1s }');
  const failures = (): Record<string, unknown>[] => gw.log.securityEvents.filter((e) => e.event === 'tls.certificate_reload_failed');

  const refused = async (what: string, cert: string, key: string, keyMode: number, finding: RegExp): Promise<void> => {
    const before = failures().length;
    replaceByRename(key, keyFile, keyMode);
    replaceByRename(cert, certFile, 0o644);
    assert.equal(gw.running.certificates.reload(`review: ${what}`), false, `${what} must be refused`);
    const failure = await until(`the reload failure for ${what}`, () => failures()[before]);
    assert.match(String(failure.error), finding);
    assert.equal(failure.keptFingerprint256, goodFingerprint);
    assert.equal(gw.running.certificates.current.fingerprint256, goodFingerprint);
    assert.equal(await servedFingerprint(gw.port), goodFingerprint, `${what}: the old certificate keeps serving`);
  };

  await t.test('a self-signed pair', async () => {
    const dev = await testCertificate();
    await refused('self-signed', readFileSync(dev.cert, 'utf8'), readFileSync(dev.key, 'utf8'), 0o600, /certificate-self-signed/);
  });

  await t.test('an expired CA-issued pair', async () => {
    const expired = await caIssuedPair({ expired: true });
    await refused('expired', expired.cert, expired.key, 0o600, /certificate-expired/);
  });

  await t.test('a good pair whose key is readable by others (0644)', async () => {
    const next = await caIssuedPair();
    await refused('key mode 0644', next.cert, next.key, 0o644, /key-mode/);
  });

  await t.test('the same kind of pair with its key at 0600 is taken (control)', async () => {
    const next = await caIssuedPair();
    replaceByRename(next.key, keyFile, 0o600);
    replaceByRename(next.cert, certFile, 0o644);
    assert.equal(gw.running.certificates.reload('review: good pair'), true);
    assert.equal(await servedFingerprint(gw.port), new X509Certificate(next.cert).fingerprint256);
  });
});
