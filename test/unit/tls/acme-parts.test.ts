import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { readClientHello } from '../../../src/tls/acme/tls-alpn.js';
import { acmeHosts } from '../../../src/tls/acme/hosts.js';
import { memoryChallenges, CHALLENGE_TTL_MS } from '../../../src/tls/acme/challenges.js';
import { parseConfig } from '../../../src/config/load.js';
import { ConfigError } from '../../../src/config/load.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { configureAcmeHttp } from '../../../src/tls/acme/account.js';
import { writeAcmeState } from '../../../src/tls/acme/state.js';
import { acmeCheck } from '../../../src/doctor/checks/acme.js';
import type { CheckResult, DoctorContext } from '../../../src/doctor/types.js';

const ROUTES = 'routes:\n  - name: api\n    host: api.example.com\n    upstream: http://127.0.0.1:1\n    auth: none\n';

/** The first bytes a real Node TLS client sends. */
function clientHello(servername: string, ALPNProtocols: string[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((s) => {
      s.once('data', (b: Buffer) => {
        resolve(b);
        s.destroy();
        server.close();
      });
    });
    server.listen(0, '127.0.0.1', () => {
      const c = tls.connect({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port, servername, ALPNProtocols });
      c.once('error', () => undefined);
    });
    server.once('error', reject);
  });
}

describe('TLS-ALPN-01: reading the ClientHello', () => {
  test('SNI and ALPN of a real ClientHello', async () => {
    const hello = readClientHello(await clientHello('api.acme.test', ['acme-tls/1']));
    assert.deepEqual(hello, { serverName: 'api.acme.test', alpn: ['acme-tls/1'] });
    assert.deepEqual(readClientHello(await clientHello('Other.Example', ['h2', 'http/1.1'])), { serverName: 'other.example', alpn: ['h2', 'http/1.1'] });
  });

  test('not a handshake, or cut short: no facts (the connection goes to the TLS server as it came)', async () => {
    const whole = await clientHello('api.acme.test', ['acme-tls/1']);
    assert.equal(readClientHello(Buffer.from('GET / HTTP/1.1\r\n\r\n')), undefined);
    assert.equal(readClientHello(whole.subarray(0, 40)), undefined);
    assert.equal(readClientHello(Buffer.alloc(0)), undefined);
    const garbage = Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x00, 0x30, 0x01]), Buffer.alloc(0x2f, 0xff)]);
    assert.doesNotThrow(() => readClientHello(garbage));
  });
});

describe('ACME hosts', () => {
  test('every route host, less IP literals and loopback names (said so)', () => {
    const cfg = parseConfig(`${ROUTES}  - name: b\n    host: b.example.com\n    upstream: http://127.0.0.1:1\n    auth: none\n  - name: l\n    host: app.localhost\n    upstream: http://127.0.0.1:1\n    auth: none\n  - name: c\n    host: api.example.com\n    path: /x\n    upstream: http://127.0.0.1:1\n    auth: none\n`, {});
    const hosts = acmeHosts(cfg);
    assert.deepEqual(hosts.names, ['api.example.com', 'b.example.com']);
    assert.deepEqual(hosts.skipped, [{ host: 'app.localhost', why: 'a loopback name' }]);
  });
});

describe('ACME settings', () => {
  test('ACME_* land in tls.acme, http-01 by default', () => {
    const cfg = parseConfig(ROUTES, { ACME_DIRECTORY_URL: 'https://acme.example/dir', ACME_EMAIL: 'ops@example.com', ACME_CA_FILE: '/etc/ca.pem' });
    assert.deepEqual(cfg.tls.acme, { directoryUrl: 'https://acme.example/dir', email: 'ops@example.com', caFile: '/etc/ca.pem', challenge: 'http-01' });
    assert.equal(parseConfig(ROUTES, {}).tls.acme, undefined);
    assert.equal(parseConfig(ROUTES, { ACME_DIRECTORY_URL: 'https://acme.example/dir', ACME_CHALLENGE: 'tls-alpn-01' }).tls.acme?.challenge, 'tls-alpn-01');
  });

  for (const [name, env, match] of [
    ['a plain-HTTP directory', { ACME_DIRECTORY_URL: 'http://acme.example/dir' }, /ACME_DIRECTORY_URL.*https:\/\//],
    ['settings without a directory', { ACME_EMAIL: 'ops@example.com' }, /ACME_EMAIL.*without ACME_DIRECTORY_URL/],
    ['an unknown challenge', { ACME_DIRECTORY_URL: 'https://acme.example/dir', ACME_CHALLENGE: 'dns-01' }, /ACME_CHALLENGE/],
    ['http-01 with FORCE_HTTPS=false', { ACME_DIRECTORY_URL: 'https://acme.example/dir', FORCE_HTTPS: 'false' }, /FORCE_HTTPS=false/],
  ] as const) {
    test(`refused: ${name}`, () => {
      assert.throws(
        () => parseConfig(ROUTES, env),
        (err: unknown) => err instanceof ConfigError && match.test(err.message),
      );
    });
  }
});

describe('ACME challenges in memory', () => {
  test('kept until removed or expired', async () => {
    let now = 1_000;
    const store = memoryChallenges(() => now);
    await store.putHttp('tok', 'tok.key');
    await store.putAlpn('api.acme.test', { cert: 'c', key: 'k' });
    assert.equal(await store.http('tok'), 'tok.key');
    assert.deepEqual(await store.alpn('api.acme.test'), { cert: 'c', key: 'k' });
    await store.removeHttp('tok');
    assert.equal(await store.http('tok'), undefined);
    now += CHALLENGE_TTL_MS + 1;
    assert.equal(await store.alpn('api.acme.test'), undefined);
  });
});

describe('ACME: startup and doctor', () => {
  test('a missing or broken ACME_CA_FILE stops startup with its reason', () => {
    const dir = mkdtempSync(join(tmpdir(), 'crm-gw-acme-ca-'));
    try {
      writeFileSync(join(dir, 'bad.pem'), 'not a certificate');
      for (const [file, why] of [[join(dir, 'missing.pem'), /ENOENT/], [join(dir, 'bad.pem'), /not a PEM certificate/]] as const) {
        assert.throws(
          () => configureAcmeHttp({ directoryUrl: 'https://acme.example/dir', caFile: file, email: undefined, challenge: 'http-01' }),
          (err: unknown) => err instanceof ConfigError && why.test(err.message) && err.message.includes('ACME_CA_FILE'),
        );
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('doctor: a fresh machine passes; failing orders are a WARN, a FAIL in production without a certificate', () => {
    const dir = mkdtempSync(join(tmpdir(), 'crm-gw-acme-doc-'));
    try {
      const config = parseConfig(ROUTES, { ACME_DIRECTORY_URL: 'https://acme.example/dir', DATA_DIR: join(dir, 'data') });
      const ctx = (production: boolean): DoctorContext => ({ config, production, now: new Date(), at: (p: string) => resolve(dir, p) }) as unknown as DoctorContext;
      const fresh = acmeCheck(ctx(true)) as CheckResult[];
      assert.equal(fresh[0]?.status, 'PASS');
      assert.match(fresh[0]?.message ?? '', /no certificate yet; the gateway orders one when it starts/);
      writeAcmeState(join(dir, 'data'), { directoryUrl: 'https://acme.example/dir', hosts: ['api.example.com'], status: 'failing', failures: 3, lastError: 'api.example.com: http-01 challenge failed: connection refused', nextAttempt: new Date().toISOString() });
      const failing = acmeCheck(ctx(true)) as CheckResult[];
      assert.equal(failing[0]?.status, 'FAIL');
      assert.match(failing[0]?.message ?? '', /3 in a row; last error: api\.example\.com: http-01 challenge failed/);
      assert.ok(failing[0]?.fix);
      assert.equal((acmeCheck(ctx(false)) as CheckResult[])[0]?.status, 'WARN');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
