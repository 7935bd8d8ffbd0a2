import { test, type TestContext, describe } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { randomBytes, X509Certificate, createPrivateKey } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import selfsigned from 'selfsigned';
import { httpsRequest, startTestGateway, testCertificate, type TestGateway } from '../helpers/harness.js';
import { describe as describeCertificate, devCaPaths, ensureDevCertificate, loadCertificatePair } from '../../src/tls/certificates.js';
import { TLS13_CIPHERSUITES } from '../../src/tls/options.js';
import { insecureSettings } from '../../src/config/policy.js';

const ROUTES = `
  - name: public
    host: api.test.local
    upstream: UPSTREAM
    auth: none
`;
const SNI = 'api.test.local';
const HANDSHAKE_TIMEOUT_MS = 5000;
/** Longer than the reloader's debounce (250 ms) plus fs.watch latency, with room for a slow CI box. */
const RELOAD_TIMEOUT_MS = 5000;

function tempDir(t: { after(fn: () => void): void }, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

interface Handshake {
  protocol: string | null;
  cipher: tls.CipherNameAndProtocol;
  ephemeral: tls.EphemeralKeyInfo | object | null;
  fingerprint256: string;
}

/** One TLS handshake with the gateway; resolves with what was negotiated or rejects with the client's error. */
function handshake(port: number, opts: tls.ConnectionOptions = {}): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: SNI, rejectUnauthorized: false, ...opts });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('handshake timed out'));
    }, HANDSHAKE_TIMEOUT_MS);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      const result = {
        protocol: socket.getProtocol(),
        cipher: socket.getCipher(),
        ephemeral: socket.getEphemeralKeyInfo(),
        fingerprint256: socket.getPeerCertificate().fingerprint256,
      };
      socket.end();
      resolve(result);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    });
  });
}

/** The handshake must fail because the server sent an alert (not because the client declined to try). */
async function assertServerRefuses(gw: TestGateway, opts: tls.ConnectionOptions, serverReason: RegExp, alert: RegExp): Promise<void> {
  const before = gw.log.securityEvents.length;
  await assert.rejects(handshake(gw.port, opts), (err: NodeJS.ErrnoException) => {
    assert.match(`${err.code} ${err.message}`, alert);
    return true;
  });
  const event = await until('tls.handshake_failed event', () =>
    gw.log.securityEvents.slice(before).find((e) => e.event === 'tls.handshake_failed'),
  );
  assert.match(String(event.error), serverReason);
}

/** Polls `probe` every 50 ms until it yields a value; fails after `timeoutMs`. */
async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = RELOAD_TIMEOUT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function servedFingerprint(port: number): Promise<string> {
  return (await handshake(port)).fingerprint256;
}

function fingerprintOf(certFile: string): string {
  return new X509Certificate(readFileSync(certFile)).fingerprint256;
}

/** Replaces `dest` the way renewal tools do: write a temporary file beside it, then rename over it. */
function replaceByRename(src: string | Buffer, dest: string): void {
  const tmp = `${dest}.tmp-${randomBytes(4).toString('hex')}`;
  if (typeof src === 'string') copyFileSync(src, tmp);
  else writeFileSync(tmp, src, { mode: 0o600 });
  renameSync(tmp, dest);
}

/** The shared test pair copied to a folder of its own, so the test can replace the files. */
async function watchedCopy(t: { after(fn: () => void): void }): Promise<{ cert: string; key: string }> {
  const source = await testCertificate();
  const dir = tempDir(t, 'crm-gw-tls-live-');
  const cert = join(dir, 'gateway.crt');
  const key = join(dir, 'gateway.key');
  copyFileSync(source.cert, cert);
  copyFileSync(source.key, key);
  return { cert, key };
}

/** A second, different development pair for the same names. */
async function newPair(t: { after(fn: () => void): void }): Promise<{ cert: string; key: string; fingerprint256: string }> {
  const dir = tempDir(t, 'crm-gw-tls-new-');
  const cert = join(dir, 'gateway.crt');
  const key = join(dir, 'gateway.key');
  assert.equal(await ensureDevCertificate(cert, key, 'test.local'), true);
  return { cert, key, fingerprint256: fingerprintOf(cert) };
}

// ---------------------------------------------------------------------------------------------
// Protocol and cipher policy
// ---------------------------------------------------------------------------------------------

test('TLS 1.3 is negotiated by default, with an AEAD suite and an ECDHE group from the policy', async (t) => {
  const gw = await startTestGateway(ROUTES);
  t.after(() => gw.close());
  const hs = await handshake(gw.port, { ca: gw.ca, rejectUnauthorized: true });
  assert.equal(hs.protocol, 'TLSv1.3');
  assert.ok(TLS13_CIPHERSUITES.split(':').includes(hs.cipher.standardName), `cipher ${hs.cipher.standardName}`);
  assert.deepEqual(hs.ephemeral, { type: 'ECDH', name: 'X25519', size: 253 });
  t.diagnostic(`default: ${hs.protocol} ${hs.cipher.standardName} ${JSON.stringify(hs.ephemeral)}`);
  const res = await gw.request({ path: '/tls' });
  assert.equal(res.status, 200);
});

test('TLS 1.2 is accepted with ECDHE and an AEAD cipher (ECDSA certificate)', async (t) => {
  const gw = await startTestGateway(ROUTES);
  t.after(() => gw.close());
  const hs = await handshake(gw.port, { maxVersion: 'TLSv1.2', ca: gw.ca, rejectUnauthorized: true });
  assert.equal(hs.protocol, 'TLSv1.2');
  assert.match(hs.cipher.name, /^ECDHE-ECDSA-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$/);
  assert.equal((hs.ephemeral as tls.EphemeralKeyInfo).type, 'ECDH');
  t.diagnostic(`TLS 1.2: ${hs.cipher.name} ${JSON.stringify(hs.ephemeral)}`);
  for (const cipher of ['ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305']) {
    const each = await handshake(gw.port, { maxVersion: 'TLSv1.2', ciphers: cipher });
    assert.equal(each.cipher.name, cipher);
  }
});

test('TLS 1.2 without ECDHE or without AEAD fails the handshake (ECDSA certificate)', async (t) => {
  const gw = await startTestGateway(ROUTES);
  t.after(() => gw.close());
  // @SECLEVEL=0 so the client itself is willing to offer these; the refusal must come from the server.
  for (const ciphers of ['AES128-SHA', 'AES256-GCM-SHA384', 'ECDHE-ECDSA-AES128-SHA', 'ECDHE-ECDSA-AES256-SHA384', 'DHE-RSA-AES128-GCM-SHA256', 'DHE-RSA-AES256-GCM-SHA384']) {
    await t.test(ciphers, () => assertServerRefuses(gw, { maxVersion: 'TLSv1.2', ciphers: `${ciphers}:@SECLEVEL=0` }, /no shared cipher/, /HANDSHAKE_FAILURE|handshake failure/i));
  }
});

test('TLS 1.2 policy with an RSA certificate: ECDHE-RSA + AEAD works; RSA key exchange, DHE and CBC fail', async (t) => {
  // With an RSA key the RSA-kx and DHE-RSA suites would be usable, so a refusal here is the policy's doing.
  const dir = tempDir(t, 'crm-gw-tls-rsa-');
  const pems = await selfsigned.generate([{ name: 'commonName', value: SNI }], {
    keyType: 'rsa',
    keySize: 2048,
    algorithm: 'sha256',
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: SNI }] }],
  });
  writeFileSync(join(dir, 'rsa.crt'), pems.cert);
  writeFileSync(join(dir, 'rsa.key'), pems.private, { mode: 0o600 });
  const gw = await startTestGateway(ROUTES, { TLS_CERT_FILE: join(dir, 'rsa.crt'), TLS_KEY_FILE: join(dir, 'rsa.key') });
  t.after(() => gw.close());

  const ok = await handshake(gw.port, { maxVersion: 'TLSv1.2', ca: pems.cert, rejectUnauthorized: true });
  assert.equal(ok.protocol, 'TLSv1.2');
  assert.match(ok.cipher.name, /^ECDHE-RSA-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$/);
  for (const ciphers of ['AES128-SHA', 'AES256-GCM-SHA384', 'AES128-GCM-SHA256', 'ECDHE-RSA-AES128-SHA', 'ECDHE-RSA-AES256-SHA384', 'DHE-RSA-AES128-GCM-SHA256', 'DHE-RSA-AES256-GCM-SHA384', 'DHE-RSA-CHACHA20-POLY1305']) {
    await t.test(ciphers, () => assertServerRefuses(gw, { maxVersion: 'TLSv1.2', ciphers: `${ciphers}:@SECLEVEL=0` }, /no shared cipher/, /HANDSHAKE_FAILURE|handshake failure/i));
  }
});

test('a client offering only ECDH groups outside the policy (P-521) fails the handshake', async (t) => {
  const gw = await startTestGateway(ROUTES);
  t.after(() => gw.close());
  await assert.rejects(handshake(gw.port, { ecdhCurve: 'P-521' }));
  await assert.rejects(handshake(gw.port, { ecdhCurve: 'P-521', maxVersion: 'TLSv1.2' }));
});

test('TLS 1.0 and 1.1 are refused by the server', async (t) => {
  const gw = await startTestGateway(ROUTES);
  t.after(() => gw.close());
  for (const version of ['TLSv1', 'TLSv1.1'] as const) {
    await t.test(version, () =>
      assertServerRefuses(
        gw,
        { minVersion: version, maxVersion: version, ciphers: 'DEFAULT@SECLEVEL=0' },
        /unsupported protocol/,
        /PROTOCOL_VERSION|protocol version/i,
      ),
    );
  }
  // A client that offers 1.0-1.1 and 1.2 ends up on 1.2, never lower.
  const hs = await handshake(gw.port, { minVersion: 'TLSv1', maxVersion: 'TLSv1.2', ciphers: 'DEFAULT@SECLEVEL=0' });
  assert.equal(hs.protocol, 'TLSv1.2');
});

test('renegotiation is refused on a TLS 1.2 connection', async (t) => {
  const gw = await startTestGateway(ROUTES);
  t.after(() => gw.close());
  const socket = tls.connect({ host: '127.0.0.1', port: gw.port, servername: SNI, ca: gw.ca, maxVersion: 'TLSv1.2' });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve);
      socket.once('error', reject);
    });
    assert.equal(socket.getProtocol(), 'TLSv1.2');
    // Node calls the renegotiate callback only on success; a refusal arrives as a socket error,
    // and only once the socket is read (the server's alert must be processed).
    const outcome = await new Promise<{ renegotiated: true } | { error: NodeJS.ErrnoException } | { closed: true }>((resolve) => {
      const timer = setTimeout(() => resolve({ error: Object.assign(new Error('no answer to the renegotiation within 5 s'), { code: 'TIMEOUT' }) }), HANDSHAKE_TIMEOUT_MS);
      const settle = (v: { renegotiated: true } | { error: NodeJS.ErrnoException } | { closed: true }): void => {
        clearTimeout(timer);
        resolve(v);
      };
      socket.once('error', (error) => settle({ error }));
      socket.once('close', () => settle({ closed: true }));
      socket.resume();
      const started = socket.renegotiate({ rejectUnauthorized: false }, (e) => settle(e ? { error: e } : { renegotiated: true }));
      assert.equal(started, true, 'the client must at least try');
    });
    assert.ok(!('renegotiated' in outcome), 'renegotiation must not succeed');
    if ('error' in outcome) {
      t.diagnostic(`renegotiation: ${outcome.error.code} ${outcome.error.message}`);
      assert.match(`${outcome.error.code} ${outcome.error.message}`, /NO_RENEGOTIATION|no renegotiation/i);
    }
  } finally {
    socket.destroy();
  }
  // Regression: the gateway answered the TLS error with an HTTP 400 through `end()` on the
  // broken session, which never finished; the connection stayed open until shutdown.
  await until('the gateway to drop the connection', () =>
    new Promise<true | undefined>((resolve) => gw.running.httpsServer.getConnections((_e, n) => resolve(n === 0 ? true : undefined))),
  );
  assert.ok(gw.log.securityEvents.some((e) => e.event === 'tls.connection_failed'));
});

// ---------------------------------------------------------------------------------------------
// Compression: checked on the wire with a hand-made TLS 1.2 ClientHello, since no client
// library offers DEFLATE any more.
// ---------------------------------------------------------------------------------------------

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}
function vec16(...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([u16(body.length), body]);
}
function vec8(...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([body.length]), body]);
}
function extension(type: number, body: Buffer): Buffer {
  return Buffer.concat([u16(type), vec16(body)]);
}

function clientHello12(compressionMethods: number[]): Buffer {
  const suites = [0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8]; // ECDHE-{ECDSA,RSA} AES-GCM and CHACHA20
  const host = Buffer.from(SNI);
  const extensions = Buffer.concat([
    extension(0x0000, vec16(Buffer.from([0]), vec16(host))), // server_name
    extension(0x000a, vec16(u16(0x001d), u16(0x0017))), // supported_groups: x25519, secp256r1
    extension(0x000b, vec8(Buffer.from([0]))), // ec_point_formats: uncompressed
    extension(0x000d, vec16(u16(0x0403), u16(0x0804), u16(0x0401))), // signature_algorithms
    extension(0xff01, vec8()), // renegotiation_info (empty: initial handshake)
  ]);
  const body = Buffer.concat([
    u16(0x0303),
    randomBytes(32),
    vec8(), // session id
    vec16(...suites.map(u16)),
    vec8(Buffer.from(compressionMethods)),
    vec16(extensions),
  ]);
  const handshakeMsg = Buffer.concat([Buffer.from([1, (body.length >> 16) & 0xff, (body.length >> 8) & 0xff, body.length & 0xff]), body]);
  return Buffer.concat([Buffer.from([22, 0x03, 0x01]), u16(handshakeMsg.length), handshakeMsg]);
}

type HelloAnswer = { kind: 'serverHello'; version: number; cipherSuite: number; compression: number } | { kind: 'alert'; level: number; description: number };

/** Sends a raw ClientHello and reads the first record the server answers with. */
function rawHello(port: number, hello: Buffer): Promise<HelloAnswer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(hello));
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('no TLS record from the server within 5 s'));
    }, HANDSHAKE_TIMEOUT_MS);
    const done = (answer: HelloAnswer): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length < 5) return;
      const type = buf[0];
      const length = buf.readUInt16BE(3);
      if (buf.length < 5 + length) return;
      const record = buf.subarray(5, 5 + length);
      if (type === 21) return done({ kind: 'alert', level: record[0] ?? -1, description: record[1] ?? -1 });
      if (type !== 22 || record[0] !== 2) {
        clearTimeout(timer);
        socket.destroy();
        return reject(new Error(`unexpected record type ${type} / handshake ${record[0]}`));
      }
      const sh = record.subarray(4);
      const sidLength = sh[34] ?? 0;
      const at = 35 + sidLength;
      done({ kind: 'serverHello', version: sh.readUInt16BE(0), cipherSuite: sh.readUInt16BE(at), compression: sh[at + 2] ?? -1 });
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

test('TLS compression is off: a ClientHello offering DEFLATE gets the null method, and DEFLATE alone is refused', async (t) => {
  const gw = await startTestGateway(ROUTES);
  t.after(() => gw.close());
  const both = await rawHello(gw.port, clientHello12([1, 0]));
  assert.equal(both.kind, 'serverHello');
  if (both.kind !== 'serverHello') return;
  assert.equal(both.version, 0x0303);
  assert.equal(both.compression, 0, 'the server must choose the null compression method');
  assert.ok([0xc02b, 0xc02c, 0xcca9].includes(both.cipherSuite), `ECDHE-ECDSA AEAD suite, got 0x${both.cipherSuite.toString(16)}`);

  const deflateOnly = await rawHello(gw.port, clientHello12([1]));
  assert.equal(deflateOnly.kind, 'alert');
  if (deflateOnly.kind === 'alert') assert.equal(deflateOnly.level, 2, 'a fatal alert');
});

// ---------------------------------------------------------------------------------------------
// Certificate reload without restart
// ---------------------------------------------------------------------------------------------

interface AgentResponse {
  status: number;
  body: string;
  reusedSocket: boolean;
  socket: tls.TLSSocket;
}

function agentGet(port: number, agent: https.Agent, path: string): Promise<AgentResponse> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path, servername: SNI, headers: { host: SNI }, agent }, (res) => {
      const socket = res.socket as tls.TLSSocket; // detached (null) once the agent takes it back
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), reusedSocket: req.reusedSocket, socket }));
      res.on('error', reject);
    });
    req.setTimeout(HANDSHAKE_TIMEOUT_MS, () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end();
  });
}

test('a certificate replaced by rename is served to new handshakes while an open keep-alive connection keeps working', async (t) => {
  const live = await watchedCopy(t);
  const next = await newPair(t);
  const oldFingerprint = fingerprintOf(live.cert);
  assert.notEqual(next.fingerprint256, oldFingerprint);
  // A long keep-alive timeout so the idle connection outlives the reload however slow the box is.
  const gw = await startTestGateway(ROUTES, { TLS_CERT_FILE: live.cert, TLS_KEY_FILE: live.key }, 'server: { keepAliveTimeout: 60s }');
  t.after(() => gw.close());

  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: [readFileSync(live.cert, 'utf8'), readFileSync(next.cert, 'utf8')] });
  t.after(() => agent.destroy());
  const first = await agentGet(gw.port, agent, '/before');
  assert.equal(first.status, 200);
  assert.equal(first.reusedSocket, false);
  assert.equal(first.socket.getPeerCertificate().fingerprint256, oldFingerprint);

  // Renewal tools write a temporary file and rename it over the old one: key first, then cert.
  replaceByRename(next.key, live.key);
  replaceByRename(next.cert, live.cert);
  await until('the new certificate on a new handshake', async () => ((await servedFingerprint(gw.port)) === next.fingerprint256 ? true : undefined));

  assert.equal(gw.running.certificates.current.fingerprint256, next.fingerprint256);
  const reloaded = gw.log.securityEvents.filter((e) => e.event === 'tls.certificate_reloaded');
  assert.ok(reloaded.length >= 1);
  assert.equal(reloaded.at(-1)?.fingerprint256, next.fingerprint256);
  assert.match(String(reloaded.at(-1)?.reason), /^file change: gateway\.(crt|key)$/);

  const second = await agentGet(gw.port, agent, '/after');
  assert.equal(second.status, 200);
  assert.equal(second.reusedSocket, true, 'the keep-alive connection is reused');
  assert.equal(second.socket, first.socket);
  assert.equal(second.socket.getPeerCertificate().fingerprint256, oldFingerprint, 'the open connection keeps the certificate it was made with');
  assert.deepEqual(
    gw.upstream.seen.map((s) => s.url),
    ['/before', '/after'],
  );
});

test('with watching off, replaced files are ignored until SIGHUP, which serves the new certificate', async (t) => {
  const live = await watchedCopy(t);
  const next = await newPair(t);
  const oldFingerprint = fingerprintOf(live.cert);
  const gw = await startTestGateway(ROUTES, { TLS_CERT_FILE: live.cert, TLS_KEY_FILE: live.key }, 'tls: { watch: false }');
  t.after(() => gw.close());
  assert.equal(gw.config.tls.watch, false);

  replaceByRename(next.key, live.key);
  replaceByRename(next.cert, live.cert);
  await sleep(1000); // four debounce periods: a watcher, had there been one, would have fired
  assert.equal(await servedFingerprint(gw.port), oldFingerprint, 'no reload without a signal');

  process.kill(process.pid, 'SIGHUP');
  await until('the new certificate after SIGHUP', async () => ((await servedFingerprint(gw.port)) === next.fingerprint256 ? true : undefined));
  const event = gw.log.securityEvents.find((e) => e.event === 'tls.certificate_reloaded');
  assert.equal(event?.reason, 'SIGHUP');
  const res = await httpsRequest(gw.port, readFileSync(next.cert, 'utf8'), { path: '/after-hup' });
  assert.equal(res.status, 200);
});

test('a broken new certificate is refused: the old one keeps serving and the failure is a security event', async (t) => {
  const live = await watchedCopy(t);
  const next = await newPair(t);
  const oldFingerprint = fingerprintOf(live.cert);
  const gw = await startTestGateway(ROUTES, { TLS_CERT_FILE: live.cert, TLS_KEY_FILE: live.key });
  t.after(() => gw.close());
  const failures = (): Record<string, unknown>[] => gw.log.securityEvents.filter((e) => e.event === 'tls.certificate_reload_failed');

  await t.test('garbage PEM', async () => {
    replaceByRename(Buffer.from('-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n'), live.cert);
    const failure = await until('a reload failure', () => failures()[0]);
    assert.equal(failure.keptFingerprint256, oldFingerprint);
    assert.match(String(failure.error), /not a PEM certificate/);
    assert.equal(await servedFingerprint(gw.port), oldFingerprint);
    assert.equal((await gw.request({ path: '/still-up' })).status, 200);
  });

  await t.test('a key that does not match the certificate', async () => {
    const before = failures().length;
    replaceByRename(next.cert, live.cert); // the key is still the old one
    const failure = await until('a second reload failure', () => failures()[before]);
    assert.equal(failure.keptFingerprint256, oldFingerprint);
    assert.match(String(failure.error), /rejected by OpenSSL.*key values mismatch/);
    assert.equal(await servedFingerprint(gw.port), oldFingerprint);
    assert.equal(gw.running.certificates.current.fingerprint256, oldFingerprint);
    assert.equal((await gw.request({ path: '/still-up-2' })).status, 200);
  });

  await t.test('the matching key arrives and the pair is taken', async () => {
    replaceByRename(next.key, live.key);
    await until('the new certificate', async () => ((await servedFingerprint(gw.port)) === next.fingerprint256 ? true : undefined));
  });

  assert.equal(gw.log.securityEvents.filter((e) => e.event === 'tls.certificate_reloaded').length, 1);
});

// ---------------------------------------------------------------------------------------------
// Development certificate
// ---------------------------------------------------------------------------------------------

test('ensureDevCertificate: key mode 0600 even with umask 0, EC P-256, the expected names, issued by the folder\'s development CA', async (t) => {
  const dir = join(tempDir(t, 'crm-gw-devcert-'), 'certs');
  const cert = join(dir, 'gateway.crt');
  const key = join(dir, 'gateway.key');
  const umask = process.umask(0);
  let generated: boolean;
  try {
    generated = await ensureDevCertificate(cert, key, 'crm.example');
  } finally {
    process.umask(umask);
  }
  assert.equal(generated, true);
  assert.equal(statSync(key).mode & 0o777, 0o600);
  assert.equal(statSync(dir).mode & 0o777, 0o700);

  const privateKey = createPrivateKey(readFileSync(key));
  assert.equal(privateKey.asymmetricKeyType, 'ec');
  assert.equal(privateKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');

  const x509 = new X509Certificate(readFileSync(cert));
  assert.equal(x509.checkPrivateKey(privateKey), true);
  const sans = (x509.subjectAltName ?? '').split(',').map((s) => s.trim());
  for (const name of ['DNS:localhost', 'DNS:*.localhost', 'DNS:crm.example', 'DNS:*.crm.example', 'IP Address:127.0.0.1']) {
    assert.ok(sans.includes(name), `${name} in ${sans.join(', ')}`);
  }
  assert.ok(x509.checkHost('api.crm.example'));
  assert.ok(x509.checkHost('localhost'));
  assert.ok(x509.checkIP('127.0.0.1'));
  assert.ok(new Date(x509.validTo).getTime() > Date.now() + 30 * 86_400_000, 'valid for a while');

  const info = describeCertificate(x509, statSync(key).mode & 0o777);
  assert.equal(info.selfSigned, false);
  assert.equal(info.developmentCa, true);
  assert.equal(info.keyMode, 0o600);
  const loaded = loadCertificatePair(cert, key);
  assert.equal(loaded.info.developmentCa, true);

  // The CA beside it: its key as private as the leaf's, and it really signed the leaf.
  const ca = devCaPaths(cert);
  assert.equal(statSync(ca.key).mode & 0o777, 0o600);
  const caX509 = new X509Certificate(readFileSync(ca.cert));
  assert.equal(caX509.ca, true);
  assert.equal(x509.verify(caX509.publicKey), true);
  assert.equal(describeCertificate(caX509, 0o600).selfSigned, true);
  assert.equal(loaded.info.fingerprint256, x509.fingerprint256);
});

test('ensureDevCertificate never overwrites existing files', async (t) => {
  const dir = tempDir(t, 'crm-gw-devcert-keep-');
  const cert = join(dir, 'gateway.crt');
  const key = join(dir, 'gateway.key');
  assert.equal(await ensureDevCertificate(cert, key, 'crm.example'), true);
  const certBefore = readFileSync(cert);
  const keyBefore = readFileSync(key);

  assert.equal(await ensureDevCertificate(cert, key, 'other.example'), false);
  assert.deepEqual(readFileSync(cert), certBefore);
  assert.deepEqual(readFileSync(key), keyBefore);

  // Only one of the two present (an operator's key awaiting its certificate): left alone as well.
  unlinkSync(cert);
  assert.equal(await ensureDevCertificate(cert, key, 'other.example'), false);
  assert.equal(existsSync(cert), false);
  assert.deepEqual(readFileSync(key), keyBefore);
});

test('regression: the development certificate for the default domain verifies for api/nocodb/metabase.localhost', async (t) => {
  // `*.localhost` alone matched nothing: OpenSSL, Node and browsers ignore a wildcard directly
  // under a one-label name, so a client trusting the dev certificate still failed on api.localhost.
  const dir = tempDir(t, 'crm-gw-devcert-localhost-');
  const cert = join(dir, 'gateway.crt');
  const key = join(dir, 'gateway.key');
  assert.equal(await ensureDevCertificate(cert, key, 'localhost'), true);
  const x509 = new X509Certificate(readFileSync(cert));
  assert.equal(x509.checkHost('api.localhost', { wildcards: true }), 'api.localhost');
  for (const host of ['localhost', 'api.localhost', 'nocodb.localhost', 'metabase.localhost']) {
    assert.equal(tls.checkServerIdentity(host, { subjectaltname: x509.subjectAltName ?? '', subject: {} } as unknown as tls.PeerCertificate), undefined, host);
  }

  const gw = await startTestGateway(ROUTES.replace('api.test.local', 'api.localhost'), { GATEWAY_DOMAIN: 'localhost', TLS_CERT_FILE: cert, TLS_KEY_FILE: key });
  t.after(() => gw.close());
  // Full verification (chain and name) against the dev certificate as the only trust anchor.
  const res = await new Promise<number>((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port: gw.port, path: '/verified', servername: 'api.localhost', headers: { host: 'api.localhost' }, ca: readFileSync(cert), agent: false }, (r) => {
      r.resume();
      resolve(r.statusCode ?? 0);
    });
    req.setTimeout(HANDSHAKE_TIMEOUT_MS, () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
  });
  assert.equal(res, 200);
});

test('regression: the development certificate (development CA) counts as self-signed (production refuses it); a CA-issued one does not', async (t) => {
  // describe() used X509Certificate.checkIssued(), which OpenSSL answers "no" for a certificate
  // whose keyUsage lacks keyCertSign: our own dev certificate passed as not self-signed.
  const dir = tempDir(t, 'crm-gw-devcert-policy-');
  const cert = join(dir, 'gateway.crt');
  const key = join(dir, 'gateway.key');
  assert.equal(await ensureDevCertificate(cert, key, 'crm.example'), true);
  const dev = loadCertificatePair(cert, key).info;
  assert.equal(dev.developmentCa, true);
  const gw = await startTestGateway(ROUTES);
  t.after(() => gw.close());
  assert.ok(insecureSettings(gw.config, dev).some((f) => f.id === 'certificate-self-signed'));

  const ca = await selfsigned.generate([{ name: 'commonName', value: 'crm-gateway test CA' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    ],
  });
  const leaf = await selfsigned.generate([{ name: 'commonName', value: SNI }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    ca: { key: ca.private, cert: ca.cert },
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: SNI }] }],
  });
  const issued = new X509Certificate(leaf.cert);
  assert.equal(issued.verify(new X509Certificate(ca.cert).publicKey), true, 'the leaf is signed by the CA');
  assert.equal(describeCertificate(issued, 0o600).selfSigned, false);
  assert.equal(describeCertificate(issued, 0o600).developmentCa, false, 'another CA is not ours');
  assert.equal(describeCertificate(new X509Certificate(ca.cert), 0o600).selfSigned, true, 'a root is self-signed');
});

describe('certificate reload in production (from the adversarial review of the core)', () => {
  const ROUTES = `
  - name: api
    host: api.test.local
    upstream: UPSTREAM
    auth: none
`;

  async function gateway(t: TestContext, routes = ROUTES, env: Record<string, string> = {}, extraYaml = ''): Promise<TestGateway> {
    const gw = await startTestGateway(routes, env, extraYaml);
    t.after(() => gw.close());
    return gw;
  }

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
});
