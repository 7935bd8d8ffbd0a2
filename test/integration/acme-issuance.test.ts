import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPebble, type Pebble } from '../helpers/pebble.js';
import { plainGet, servedCertificate, startAcmeGateway, type AcmeGateway } from '../helpers/acme-gateway.js';
import { waitFor } from '../helpers/wait.js';
import { freePort } from '../helpers/ports.js';
import { readAcmeState } from '../../src/tls/acme/state.js';

// Issue 15, item 1: certificates from a real ACME server (Debian's pebble, validating through
// pebble-challtestsrv's DNS, which answers 127.0.0.1), served by the running gateway.

const ISSUE_MS = 30_000;

describe('ACME HTTP-01 against pebble', { timeout: 60_000 }, () => {
  let pebble: Pebble;
  let gw: AcmeGateway;
  let issuedInMs = 0;

  before(async () => {
    pebble = await startPebble();
    const started = performance.now();
    gw = await startAcmeGateway({ pebble, hosts: ['api.acme.test', 'nocodb.acme.test', 'app.localhost'] });
    await waitFor(() => gw.events('acme.certificate_issued').length > 0 || gw.events('acme.order_failed').length > 0, 'the first order', ISSUE_MS);
    issuedInMs = performance.now() - started;
  });
  after(async () => {
    await gw?.close();
    await pebble?.stop();
  });

  test('issues one certificate for every routed host and the running gateway serves it to a real TLS client', async () => {
    assert.deepEqual(gw.events('acme.order_failed'), [], JSON.stringify(gw.events('acme.order_failed')));
    const root = await pebble.issuingRoot();
    await waitFor(() => gw.events('tls.certificate_reloaded').length > 0, 'the reload', 5_000);
    for (const host of ['api.acme.test', 'nocodb.acme.test']) {
      const served = await servedCertificate(gw.running.ports.https, host, root);
      assert.equal(served.authorized, true, served.error);
      assert.ok(served.x509.checkHost(host), `covers ${host}`);
    }
    const issued = gw.events('acme.certificate_issued')[0] as Record<string, unknown>;
    assert.deepEqual(issued.hosts, ['api.acme.test', 'nocodb.acme.test'], 'loopback names are left out');
    // Every name was validated over the plain listener, each answer logged.
    assert.ok(gw.events('acme.challenge_answered').length >= 2);
    assert.ok(gw.log.accessEntries.some((e) => e.listener === 'http' && e.status === 200 && String(e.path).startsWith('/.well-known/acme-challenge/')));
    console.log(`issuance against pebble: ${Math.round(issuedInMs)} ms (order ${String(issued.tookMs)} ms)`);
  });

  test('key 0600 written atomically beside the certificate; account key 0600 under DATA_DIR; state says when it renews', () => {
    assert.equal(statSync(gw.config.tls.keyFile).mode & 0o777, 0o600);
    const acmeDir = join(gw.config.stores.dataDir, 'acme');
    const keys = readdirSync(acmeDir).filter((f) => f.startsWith('account-') && f.endsWith('.key'));
    assert.equal(keys.length, 1);
    assert.equal(statSync(join(acmeDir, keys[0] as string)).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(join(gw.dir, 'certs')).sort(), ['gateway.crt', 'gateway.key'], 'no temp file left behind');
    const state = readAcmeState(gw.config.stores.dataDir);
    assert.equal(state?.status, 'waiting');
    assert.equal(state?.failures, 0);
    assert.ok(state?.lastSuccess && state.nextAttempt && state.certificateValidTo);
    assert.ok(Date.parse(state.nextAttempt) < Date.parse(state.certificateValidTo));
  });

  test('the challenge path is not redirected; an unknown token is a 404 with its code and event; other paths still 308', async () => {
    const port = gw.running.ports.http;
    const before = gw.upstream.seen.length;
    const unknown = await plainGet(port, '/.well-known/acme-challenge/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', 'api.acme.test');
    assert.equal(unknown.status, 404);
    assert.equal(JSON.parse(unknown.body).error.code, 'ACME_CHALLENGE_UNKNOWN');
    assert.equal(unknown.headers.location, undefined);
    for (const [path, method] of [['/.well-known/acme-challenge/../../etc/passwd', 'GET'], ['/.well-known/acme-challenge/bad%20token', 'GET'], ['/.well-known/acme-challenge/AAAAAAAAAAAAAAAAAAAAAAAA', 'POST']] as const) {
      const r = await plainGet(port, path, 'api.acme.test', method);
      assert.ok(r.status === 404 || r.status === 400, `${method} ${path}: ${r.status}`);
      assert.equal(r.headers.location, undefined);
    }
    const denied = gw.events('request.denied').filter((e) => e.code === 'ACME_CHALLENGE_UNKNOWN' && e.listener === 'http');
    assert.ok(denied.length >= 1, JSON.stringify(gw.events('request.denied')));
    for (const path of ['/', '/.well-known/acme-challenge', '/.well-known/acme-challengeX/abc', '/.well-known/other']) {
      const r = await plainGet(port, path, 'api.acme.test');
      assert.equal(r.status, 308, path);
      assert.match(String(r.headers.location), /^https:\/\/api\.acme\.test/);
    }
    assert.equal(gw.upstream.seen.length, before, 'the upstream received nothing');
  });

  test('a pending token is answered only for a Host the certificate covers: another Host gets the 404 or 308 it would get without ACME', async () => {
    const port = gw.running.ports.http;
    const before = gw.upstream.seen.length;
    const token = `T${'x'.repeat(30)}`;
    const keyAuthorization = `${token}.thumbprint-of-this-test`;
    await gw.acme.challenges.putHttp(token, keyAuthorization);
    try {
      const path = `/.well-known/acme-challenge/${token}`;
      const ok = await plainGet(port, path, 'api.acme.test');
      assert.equal(ok.status, 200);
      assert.equal(ok.body, keyAuthorization);
      // A Host the gateway does not serve: the listener's 404 for unknown hosts (not an open redirect either).
      const evil = await plainGet(port, path, 'evil.example');
      assert.equal(evil.status, 404);
      assert.equal(JSON.parse(evil.body).error.code, 'ROUTE_NOT_FOUND');
      assert.ok(!evil.body.includes(keyAuthorization));
      assert.equal(evil.headers.location, undefined);
      assert.ok(gw.events('request.denied').some((e) => e.code === 'ROUTE_NOT_FOUND' && e.listener === 'http'));
      // A routed host left out of the certificate (a loopback name): redirected like every other path.
      const loopback = await plainGet(port, path, 'app.localhost');
      assert.equal(loopback.status, 308);
      assert.equal(String(loopback.headers.location).split('/.well-known')[0], `https://app.localhost:${gw.running.ports.https}`);
      assert.ok(!loopback.body.includes(keyAuthorization));
      const answered = gw.events('acme.challenge_answered').filter((e) => e.type === 'http-01' && e.host !== 'api.acme.test' && e.host !== 'nocodb.acme.test');
      assert.deepEqual(answered, []);
    } finally {
      await gw.acme.challenges.removeHttp(token);
    }
    assert.equal(gw.upstream.seen.length, before, 'the upstream received nothing');
  });
});

describe('ACME renewal forced by a short lifetime (pebble certificateValidityPeriod)', { timeout: 60_000 }, () => {
  test('renews at two thirds of the lifetime and the listener serves the new certificate without a restart', async () => {
    const pebble = await startPebble({ validitySeconds: 15 });
    const gw = await startAcmeGateway({ pebble, hosts: ['api.acme.test'] });
    try {
      await waitFor(() => gw.events('acme.certificate_issued').length >= 1, 'the first certificate', ISSUE_MS);
      const root = await pebble.issuingRoot();
      const first = await servedCertificate(gw.running.ports.https, 'api.acme.test', root);
      const firstAt = performance.now();
      await waitFor(() => gw.events('acme.certificate_issued').length >= 2, 'the renewal', 30_000, 100);
      const renewedAfterMs = performance.now() - firstAt;
      await waitFor(async () => (await servedCertificate(gw.running.ports.https, 'api.acme.test', root)).x509.fingerprint256 !== first.x509.fingerprint256, 'the renewed certificate served', 5_000, 100);
      const second = await servedCertificate(gw.running.ports.https, 'api.acme.test', root);
      assert.equal(second.authorized, true, second.error);
      const lifetime = Date.parse(first.x509.validTo) - Date.parse(first.x509.validFrom);
      // Due at 2/3 of the lifetime from notBefore; the order itself takes a moment more.
      const due = Date.parse(first.x509.validFrom) + (lifetime * 2) / 3;
      const renewed = gw.events('acme.certificate_issued')[1] as Record<string, unknown>;
      assert.ok(Date.parse(String(renewed.validFrom)) >= due - 2_000, `renewed ${String(renewed.validFrom)}, due ${new Date(due).toISOString()}`);
      assert.ok(Date.parse(second.x509.validTo) > Date.parse(first.x509.validTo));
      assert.deepEqual(gw.events('acme.order_failed'), []);
      console.log(`renewal against pebble (15 s lifetime): ${Math.round(renewedAfterMs)} ms after the first was served; order ${String(renewed.tookMs)} ms`);
    } finally {
      await gw.close();
      await pebble.stop();
    }
  });
});

describe('ACME failures: the served certificate stays, an alert and an event, backoff', { timeout: 60_000 }, () => {
  test('a failing challenge (a name that resolves where nothing listens) keeps the old certificate and backs off', async () => {
    const pebble = await startPebble();
    const dir = mkdtempSync(join(tmpdir(), 'crm-gw-acme-'));
    const gw = await startAcmeGateway({ pebble, hosts: ['api.acme.test'], dir });
    let second: AcmeGateway | undefined;
    try {
      await waitFor(() => gw.events('acme.certificate_issued').length >= 1, 'the first certificate', ISSUE_MS);
      await gw.close();
      // The same files, one more route host: the certificate no longer covers every host, so it orders.
      await pebble.setAddress('broken.acme.test', '127.0.0.2');
      second = await startAcmeGateway({ pebble, hosts: ['api.acme.test', 'broken.acme.test'], dir: gw.dir });
      const root = await pebble.issuingRoot();
      const served = await servedCertificate(second.running.ports.https, 'api.acme.test', root);
      assert.equal(served.authorized, true);
      const g = second;
      await waitFor(() => g.events('acme.order_failed').length >= 2, 'two failed orders', 30_000, 50);
      const [f1, f2] = g.events('acme.order_failed') as Record<string, unknown>[];
      assert.match(String(f1?.error), /broken\.acme\.test: http-01 challenge failed/);
      assert.equal(f1?.failures, 1);
      assert.equal(f2?.failures, 2);
      assert.ok(Number(f2?.retryInMs) > Number(f1?.retryInMs), 'exponential backoff');
      assert.equal(f1?.servedFingerprint256, served.x509.fingerprint256);
      assert.ok(g.alerts.some((a) => a.type === 'acme_failed' && a.message.includes('broken.acme.test')));
      const still = await servedCertificate(g.running.ports.https, 'api.acme.test', root);
      assert.equal(still.x509.fingerprint256, served.x509.fingerprint256, 'the old certificate keeps serving');
      assert.equal(readAcmeState(g.config.stores.dataDir)?.status, 'failing');
      assert.equal(g.upstream.seen.length, 0);
    } finally {
      await second?.close();
      await pebble.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the directory down: the placeholder keeps serving, an alert, an event and a growing wait', async () => {
    const pebble = await startPebble();
    const down = `https://127.0.0.1:${await freePort()}/dir`;
    const gw = await startAcmeGateway({ pebble, hosts: ['api.acme.test'], directoryUrl: down });
    try {
      await waitFor(() => gw.events('acme.order_failed').length >= 2, 'two failed attempts', 30_000, 50);
      const [f1, f2] = gw.events('acme.order_failed') as Record<string, unknown>[];
      assert.match(String(f1?.error), /ECONNREFUSED/);
      assert.ok(Number(f2?.retryInMs) > Number(f1?.retryInMs));
      assert.ok(gw.alerts.some((a) => a.type === 'acme_failed' && a.subject === down));
      const served = await servedCertificate(gw.running.ports.https, 'api.acme.test', await pebble.issuingRoot());
      assert.equal(served.authorized, false, 'the placeholder is self-signed');
      assert.equal(gw.running.certificates.current.fingerprint256, served.x509.fingerprint256);
    } finally {
      await gw.close();
      await pebble.stop();
    }
  });
});
