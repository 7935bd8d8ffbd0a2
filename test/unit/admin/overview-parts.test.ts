import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { readdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startTestAudit, tempDir } from '../../helpers/audit.js';
import { testCertificate, testConfig } from '../../helpers/harness.js';
import { searchCommand, shellQuote } from '../../../src/admin/overview-page.js';
import { localTime } from '../../../src/admin/local-time.js';
import { createHostCheck, sameOriginForm } from '../../../src/admin/origin.js';
import { safeReturn } from '../../../src/admin/signin.js';
import { CHAIN_CHECK_INTERVAL_MS, ChainStatusCache, backupStatus, certificateStatus } from '../../../src/admin/status.js';
import { readiness } from '../../../src/admin/readiness.js';
import { parseConfig } from '../../../src/config/load.js';

function req(headers: Record<string, string>): IncomingMessage {
  return { headers } as unknown as IncomingMessage;
}

test('audit search commands quote what a shell would read otherwise', () => {
  assert.equal(shellQuote('127.0.0.1'), '127.0.0.1');
  assert.equal(shellQuote('client:ops'), 'client:ops');
  assert.equal(shellQuote("o'brien; rm -rf /"), "'o'\\''brien; rm -rf /'");
  assert.equal(shellQuote('$(id)'), "'$(id)'");
  assert.equal(searchCommand('7d', [['user', 'a b']]), "npx crm-gateway audit search --since 7d --user 'a b'");
});

test('local time: the configured zone, formatted on the server', () => {
  const bogota = localTime('America/Bogota');
  assert.equal(bogota.dateTime('2026-12-06T11:00:00.000Z'), '2026-12-06 06:00');
  assert.equal(bogota.zoneName('2026-12-06T11:00:00.000Z'), 'GMT-5');
  const madrid = localTime('Europe/Madrid');
  assert.equal(madrid.dateTime('2026-07-01T22:30:00.000Z'), '2026-07-02 00:30', 'summer time');
  assert.equal(madrid.bucket('2026-07-01T22:00:00.000Z', 60), '00:00');
  assert.equal(madrid.bucket('2026-07-01T22:00:00.000Z', 1440), '02 Jul');
});

test('admin.timeZone must name a real zone; admin.sessionTtl is bounded', () => {
  const routes = `\nroutes:\n  - { name: x, host: x.test, upstream: "http://127.0.0.1:9", auth: none }\n`;
  assert.equal(parseConfig(`admin: { timeZone: Europe/Madrid }${routes}`, {}).admin.timeZone, 'Europe/Madrid');
  assert.throws(() => parseConfig(`admin: { timeZone: Mars/Olympus }${routes}`, {}), /admin\.timeZone/);
  assert.throws(() => parseConfig(`admin: { sessionTtl: 5s }${routes}`, {}), /admin\.sessionTtl/);
  assert.equal(parseConfig(routes, {}).admin.sessionTtl, 30 * 60_000);
});

test('the overview answers only to loopback names and admin.hosts (DNS rebinding)', () => {
  const check = createHostCheck(['ops.internal']);
  for (const host of ['127.0.0.1:9090', 'localhost:9090', '[::1]:9090', 'LOCALHOST', 'ops.internal:9090']) assert.equal(check(req({ host })), true, host);
  for (const host of ['evil.example:9090', '127.0.0.1.evil.example', '', 'localhost.evil', '127.0.0.1:9090@x']) assert.equal(check(req({ host })), false, host);
});

test('forms count as same-origin only with a matching Origin or Referer, and no cross-site Sec-Fetch-Site', () => {
  const host = '127.0.0.1:9090';
  assert.equal(sameOriginForm(req({ host, origin: 'http://127.0.0.1:9090', 'sec-fetch-site': 'same-origin' })), true);
  assert.equal(sameOriginForm(req({ host, referer: 'http://127.0.0.1:9090/security/login' })), true);
  assert.equal(sameOriginForm(req({ host })), false, 'neither header');
  assert.equal(sameOriginForm(req({ host, origin: 'null' })), false);
  assert.equal(sameOriginForm(req({ host, origin: 'http://127.0.0.1:8080' })), false, 'another port is another origin');
  assert.equal(sameOriginForm(req({ host, origin: 'http://127.0.0.1:9090', 'sec-fetch-site': 'same-site' })), false);
  assert.equal(sameOriginForm(req({ host, origin: 'http://127.0.0.1:9090', 'sec-fetch-site': 'cross-site' })), false);
});

test('a sign-in returns only to the overview, never to another page or site', () => {
  assert.equal(safeReturn('/security?range=30d'), '/security?range=30d');
  for (const rd of ['https://evil.example/', '//evil.example', '/security/../metrics', '/security?range=1y', '/metrics', null]) assert.equal(safeReturn(rd), '/security', String(rd));
});

test('certificate status: the test certificate, and a file that cannot be read shown as a failure', async () => {
  const cert = await testCertificate();
  const ok = certificateStatus(cert.cert);
  assert.equal(ok.state, 'ok');
  assert.ok((ok.daysLeft ?? 0) > 21);
  const soon = certificateStatus(cert.cert, Date.parse(ok.validTo as string) - 3 * 86_400_000);
  assert.equal(soon.state, 'fail');
  assert.equal(soon.text, 'expires in 3 days');
  assert.equal(certificateStatus(cert.cert, Date.parse(ok.validTo as string) - 10 * 86_400_000).state, 'warn');
  const missing = certificateStatus('/nonexistent/cert.pem');
  assert.equal(missing.state, 'fail');
});

test('today’s audit chains: intact, then a changed line found at the next check (cached in between)', async () => {
  const audit = await startTestAudit({}, { keep: true });
  try {
    for (let i = 0; i < 5; i++) audit.log.access({ requestId: `r-${i}`, method: 'GET', path: `/p/${i}`, status: 200 });
    await audit.log.close();
    let now = Date.now();
    const cache = new ChainStatusCache(audit.dir, () => now);
    const first = await cache.get();
    assert.equal(first.state, 'ok', JSON.stringify(first));
    const file = join(audit.dir, readdirSync(audit.dir).find((n) => n.startsWith('access-')) as string);
    writeFileSync(file, readFileSync(file, 'utf8').replace('/p/2', '/p/9'));
    assert.equal((await cache.get()).state, 'ok', 'cached: no re-read within the interval');
    now += CHAIN_CHECK_INTERVAL_MS + 1;
    const second = await cache.get();
    assert.equal(second.state, 'fail');
    assert.match(second.detail ?? '', /changed/);
  } finally {
    rmSync(audit.dir, { recursive: true, force: true });
  }
});

test('backup status: off when backups are off, a failure with none verified', async () => {
  const routes = `\nroutes:\n  - { name: x, host: x.test, upstream: "http://127.0.0.1:9", auth: none }\n`;
  assert.equal((await backupStatus(parseConfig(routes, {}).backup)).state, 'off');
  const dir = tempDir('crm-gw-backups-');
  try {
    assert.equal((await backupStatus({ ...parseConfig(routes, {}).backup, enabled: true, dir })).state, 'fail');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('readiness: draining is not ready; a closed listener is not ready; upstreams never decide it', async () => {
  const cert = await testCertificate();
  const cfg = testConfig('  - { name: gone, host: gone.test, upstream: "http://127.0.0.1:9", auth: none }\n', 'http://127.0.0.1:9', cert);
  const ready = await readiness(cfg, { draining: () => false, listening: () => true });
  assert.equal(ready.status, 'ready');
  assert.equal(ready.upstreams.gone?.ok, false);
  assert.equal((await readiness(cfg, { draining: () => true, listening: () => true })).status, 'draining');
  const closed = await readiness(cfg, { draining: () => false, listening: () => false });
  assert.equal(closed.ready, false);
  assert.equal(closed.checks.listener?.ok, false);
  const refusing = await readiness(cfg, { draining: () => false, listening: () => true, log: { accepting: () => false } });
  assert.equal(refusing.ready, false);
  assert.equal(refusing.checks['audit-log']?.ok, false);
});
