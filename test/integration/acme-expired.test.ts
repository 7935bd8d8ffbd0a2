import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPebble } from '../helpers/pebble.js';
import { acmeCertificateServed, productionDeployment, servedCertificate, spawnBuiltGateway } from '../helpers/acme-gateway.js';
import { makeClientCa } from '../helpers/client-certs.js';
import { freePort } from '../helpers/ports.js';
import { prepare, RefusedToStart } from '../../src/bootstrap.js';
import { createMemoryLogger } from '../../src/log/logger.js';
import { bindGateway } from '../../src/server/start.js';
import { runDoctor } from '../../src/doctor/run.js';
import { writeAcmeState } from '../../src/tls/acme/state.js';
import type { CheckResult } from '../../src/doctor/types.js';
import { notBuilt } from '../helpers/built.js';

// Issue 15 follow-up: with ACME configured, a certificate on disk that ACME would replace
// (expired, self-signed, not covering the hosts) no longer stops a production start, so a
// gateway that was off longer than its certificate's life renews itself. Without ACME the
// refusal stays. Real files from a real CA (openssl), real pebble, the built gateway.

const NOT_BUILT = notBuilt('dist/tls/acme/on-disk.js', 'dist/ is missing or old: run `npm run build` first');
const DAY = 86_400_000;
const HOSTS = ['api.acme.test', 'nocodb.acme.test'];

/** Puts a pair at TLS_CERT_FILE / TLS_KEY_FILE (key 0600), as an operator (or an old renewal) left it. */
function install(env: Record<string, string>, pair: { certFile: string; keyFile: string }): void {
  mkdirSync(join(env.DATA_DIR as string, 'tls'), { recursive: true });
  copyFileSync(pair.certFile, env.TLS_CERT_FILE as string);
  copyFileSync(pair.keyFile, env.TLS_KEY_FILE as string);
  chmodSync(env.TLS_KEY_FILE as string, 0o600);
}

function certResults(results: CheckResult[]): CheckResult[] {
  return results.filter((r) => r.id === 'certificate' || r.id === 'certificate-key-mode' || r.id === 'acme' || r.id.startsWith('policy:'));
}

const ca = makeClientCa('Old Public CA');
const expired = ca.issue('api.acme.test', { notBefore: new Date(Date.now() - 100 * DAY), notAfter: new Date(Date.now() - 10 * DAY), altNames: HOSTS, usage: 'serverAuth' });
const wrongHost = ca.issue('other.example', { altNames: ['other.example'], usage: 'serverAuth' });
const expiring = ca.issue('api.acme.test', { notBefore: new Date(Date.now() - 80 * DAY), notAfter: new Date(Date.now() + 5 * DAY), altNames: HOSTS, usage: 'serverAuth' });

describe('ACME replaces what is on disk instead of refusing to start', { timeout: 90_000 }, () => {
  test('production start: expired, wrong-host, self-signed certificates and a key that does not match pass with ACME, the expired one is refused without', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'crm-gw-acme-exp-'));
    try {
      const ports = { https: 0, http: 0, admin: 0 };
      const acme = { directoryUrl: 'https://acme.example/dir', caFile: ca.caFile };
      const selfSigned = { certFile: ca.caFile, keyFile: join(ca.dir, 'ca.key') };
      // A crash between ACME's two writes: the new key beside the old certificate.
      const mismatched = { certFile: expiring.certFile, keyFile: wrongHost.keyFile };
      for (const [pair, why] of [[expired, /expired on/], [wrongHost, /does not cover any of api\.acme\.test, nocodb\.acme\.test/], [selfSigned, /self-signed/], [mismatched, /does not load/]] as const) {
        const env = productionDeployment(dir, ports, acme);
        install(env, pair);
        const log = createMemoryLogger();
        const prepared = await prepare(env, log);
        assert.deepEqual(prepared.findings.filter((f) => f.id.startsWith('certificate')), []);
        assert.equal(prepared.certificate, undefined, 'a certificate ACME replaces is not judged as the served one');
        assert.ok(log.appMessages.some((m) => why.test(String(m.reason ?? ''))), JSON.stringify(log.appMessages));
        // The listener serves the in-memory placeholder, not the file.
        const bound = await bindGateway(prepared.config);
        try {
          const served = await servedCertificate(bound.ports.https, 'api.acme.test', readFileSync(ca.caFile, 'utf8'));
          assert.match(served.x509.subject, /waiting for ACME/);
        } finally {
          await bound.close();
        }
      }
      const strict = productionDeployment(dir, ports);
      install(strict, expired);
      await assert.rejects(prepare(strict, createMemoryLogger()), (e: unknown) => e instanceof RefusedToStart && e.findings.some((f) => f.id === 'certificate-expired'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('doctor --production: an expired certificate with ACME is a WARN naming ACME, a FAIL after repeated failed orders', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'crm-gw-acme-exp-doc-'));
    try {
      const env = productionDeployment(dir, { https: 8443, http: 8080, admin: 9090 }, { directoryUrl: 'https://acme.example/dir', caFile: ca.caFile });
      install(env, expired);
      let results = certResults(await runDoctor({ cwd: dir, env, production: true }));
      assert.deepEqual(results.filter((r) => r.status === 'FAIL'), [], JSON.stringify(results));
      const cert = results.find((r) => r.id === 'certificate');
      assert.equal(cert?.status, 'WARN');
      assert.match(cert?.message ?? '', /expired on .*: with ACME on, the gateway starts on a placeholder and ACME replaces it at once/);
      assert.doesNotMatch(`${cert?.fix}`, /certbot/);
      const state = { directoryUrl: 'https://acme.example/dir', hosts: HOSTS, status: 'failing' as const, lastError: 'api.acme.test: http-01 challenge failed', nextAttempt: new Date().toISOString() };
      writeAcmeState(join(dir, 'data'), { ...state, failures: 1 });
      results = certResults(await runDoctor({ cwd: dir, env, production: true }));
      assert.deepEqual(results.filter((r) => r.status === 'FAIL'), [], 'one failed order is not yet a FAIL');
      writeAcmeState(join(dir, 'data'), { ...state, failures: 2 });
      results = certResults(await runDoctor({ cwd: dir, env, production: true }));
      assert.equal(results.find((r) => r.id === 'certificate')?.status, 'FAIL');
      assert.match(results.find((r) => r.id === 'certificate')?.fix ?? '', /ACME state: failing, 2 failure\(s\) in a row, last error: api\.acme\.test: http-01 challenge failed/);
      assert.equal(results.find((r) => r.id === 'acme')?.status, 'FAIL');
      assert.match(results.find((r) => r.id === 'acme')?.message ?? '', /the certificate on disk expired on/);

      // Without ACME the expired certificate stays a FAIL with the hand-renewal advice.
      const plain = productionDeployment(dir, { https: 8443, http: 8080, admin: 9090 });
      const strict = certResults(await runDoctor({ cwd: dir, env: plain, production: true }));
      assert.ok(strict.some((r) => r.status === 'FAIL' && /expired/.test(r.message)), JSON.stringify(strict));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('doctor: the expiry advice names ACME and its state when ACME is on, certbot when it is off', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'crm-gw-acme-exp-adv-'));
    try {
      const ports = { https: 8443, http: 8080, admin: 9090 };
      const withAcme = productionDeployment(dir, ports, { directoryUrl: 'https://acme.example/dir', caFile: ca.caFile });
      install(withAcme, expiring);
      writeAcmeState(join(dir, 'data'), { directoryUrl: 'https://acme.example/dir', hosts: HOSTS, status: 'failing', failures: 4, lastError: 'connect ECONNREFUSED', nextAttempt: new Date().toISOString() });
      const acmeAdvice = (await runDoctor({ cwd: dir, env: withAcme, production: true })).find((r) => r.id === 'certificate' && /expires in/.test(r.message));
      assert.ok(acmeAdvice, 'the expiry is reported');
      assert.doesNotMatch(acmeAdvice.fix ?? '', /certbot/);
      assert.match(acmeAdvice.fix ?? '', /ACME renews at two thirds .*ACME state: failing, 4 failure\(s\) in a row, last error: connect ECONNREFUSED/);
      const plainAdvice = (await runDoctor({ cwd: dir, env: productionDeployment(dir, ports), production: true })).find((r) => r.id === 'certificate' && /expires in/.test(r.message));
      assert.match(plainAdvice?.fix ?? '', /certbot renew/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the built gateway in production with an expired certificate and ACME starts and serves a pebble certificate within seconds', { skip: NOT_BUILT }, async (t) => {
    const pebble = await startPebble();
    const dir = mkdtempSync(join(tmpdir(), 'crm-gw-acme-exp-run-'));
    t.after(async () => {
      await pebble.stop();
      rmSync(dir, { recursive: true, force: true });
    });
    const httpsPort = await freePort();
    const env = productionDeployment(dir, { https: httpsPort, http: pebble.httpPort, admin: await freePort() }, pebble);
    install(env, expired);
    const gateway = await spawnBuiltGateway(t, dir, env);
    assert.match(gateway.stderr(), /WARNING: the certificate on disk expired on .*not served; ACME orders a new certificate at start/);
    const { tookMs, served } = await acmeCertificateServed(gateway, httpsPort, pebble, 20_000);
    assert.equal(served.authorized, true, served.error);
    assert.ok(new Date(served.x509.validTo).getTime() > Date.now(), 'the served certificate is the new one');
    console.log(`production start with an expired certificate to ACME certificate served (built gateway, pebble): ${Math.round(tookMs)} ms`);
    gateway.child.kill('SIGTERM');
    assert.equal(await gateway.exited, 0, gateway.stderr());
  });
});
