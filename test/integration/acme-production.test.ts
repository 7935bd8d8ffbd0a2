import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPebble } from '../helpers/pebble.js';
import { acmeCertificateServed, productionDeployment, spawnBuiltGateway } from '../helpers/acme-gateway.js';
import { freePort } from '../helpers/ports.js';
import { runDoctor } from '../../src/doctor/run.js';
import type { CheckResult } from '../../src/doctor/types.js';
import { notBuilt } from '../helpers/built.js';

// Issue 15, "Done when": a production setup with ACME configured starts on a fresh machine (no
// certificate file), obtains its certificate with no hand work, and doctor --production does not
// fail it, before or after. The built gateway (dist/main.js), as operators run it.

const NOT_BUILT = notBuilt('dist/tls/acme/service.js', 'dist/ is missing or old: run `npm run build` first');

/** The results doctor gives about the certificate and ACME (the other items judge files this test does not make). */
function certificateResults(results: CheckResult[]): CheckResult[] {
  return results.filter((r) => r.id === 'certificate' || r.id === 'certificate-key-mode' || r.id === 'acme' || r.id.startsWith('policy:'));
}

function metrics(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve(body));
      })
      .once('error', reject);
  });
}

describe('ACME in production, on a fresh machine', { timeout: 60_000 }, () => {
  test('starts without a certificate, obtains one, serves it; doctor --production passes before and after', { skip: NOT_BUILT }, async (t) => {
    const pebble = await startPebble();
    const dir = mkdtempSync(join(tmpdir(), 'crm-gw-acme-prod-'));
    t.after(async () => {
      await pebble.stop();
      rmSync(dir, { recursive: true, force: true });
    });
    const [httpsPort, adminPort] = [await freePort(), await freePort()];
    const env = productionDeployment(dir, { https: httpsPort, http: pebble.httpPort, admin: adminPort }, pebble);

    const before = certificateResults(await runDoctor({ cwd: dir, env, production: true }));
    assert.deepEqual(before.filter((r) => r.status === 'FAIL'), [], JSON.stringify(before));
    assert.match(before.find((r) => r.id === 'acme')?.message ?? '', /no certificate yet; the gateway orders one when it starts/);

    const gateway = await spawnBuiltGateway(t, dir, env);
    const { tookMs, served } = await acmeCertificateServed(gateway, httpsPort, pebble, 30_000);
    assert.equal(served.authorized, true, served.error);
    assert.equal(statSync(env.TLS_KEY_FILE as string).mode & 0o777, 0o600);

    const scrape = await metrics(adminPort);
    const expiry = /^crmgw_tls_certificate_expiry_timestamp_seconds (\S+)$/m.exec(scrape)?.[1];
    assert.equal(Number(expiry), Math.floor(Date.parse(served.x509.validTo) / 1000), 'the expiry metric follows the served certificate');
    assert.match(scrape, /^crmgw_acme_last_success_timestamp_seconds \d/m);
    assert.match(scrape, /^crmgw_acme_consecutive_failures 0$/m);
    const promtool = spawnSync('promtool', ['check', 'metrics'], { input: scrape, encoding: 'utf8' });
    assert.equal(`${promtool.stdout}${promtool.stderr}`, '', 'promtool has no complaint about the ACME metrics');

    const after = certificateResults(await runDoctor({ cwd: dir, env, production: true }));
    assert.deepEqual(after.filter((r) => r.status !== 'PASS'), [], JSON.stringify(after));
    assert.match(after.find((r) => r.id === 'acme')?.message ?? '', /last success .*; certificate valid until .*; next check /);
    console.log(`production start to ACME certificate served (built gateway, pebble): ${Math.round(tookMs)} ms`);

    gateway.child.kill('SIGTERM');
    assert.equal(await gateway.exited, 0, gateway.stderr());
  });
});
