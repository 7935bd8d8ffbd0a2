// Issue 17, part 3: no state outside the objects that own it. Metrics belong to the gateway that
// builds them (its registry, served on its admin listener), rate limits to the route's limiter,
// the identifier key to its hasher: two of each in one process share nothing.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestGateway, type TestGateway } from '../../helpers/harness.js';
import { createGatewayMetrics } from '../../../src/metrics/gateway.js';
import { IdentifierHasher } from '../../../src/audit/redact/identifiers.js';

const ROUTES = `
  - name: limited
    host: api.test.local
    path: /limited
    upstream: UPSTREAM
    auth: none
    rateLimit: { window: 1m, max: 1 }
`;

let a: TestGateway;
let b: TestGateway;

before(async () => {
  // The same config twice, in one process.
  [a, b] = await Promise.all([startTestGateway(ROUTES), startTestGateway(ROUTES)]);
});

after(async () => {
  await Promise.all([a?.close(), b?.close()]);
});

/** The sum of a counter's samples, optionally only those matching `labels`. */
async function total(metric: { get(): Promise<{ values: { labels: Record<string, unknown>; value: number }[] }> }, labels: Record<string, string> = {}): Promise<number> {
  return (await metric.get()).values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((n, v) => n + v.value, 0);
}

test('two gateways built in one process count apart: requests, denials and rate-limit refusals through one never move the other', async () => {
  assert.notEqual(a.running.metrics.registry, b.running.metrics.registry);
  assert.equal((await a.request({ host: 'api.test.local', path: '/limited/1' })).status, 200);
  assert.equal((await a.request({ host: 'api.test.local', path: '/limited/2' })).status, 429);
  const ma = a.running.metrics;
  const mb = b.running.metrics;
  assert.equal(await total(ma.requests.requestsTotal), 2);
  assert.equal(await total(ma.requests.denialsTotal, { reason: 'RATE_LIMITED' }), 1);
  assert.equal(await total(ma.rateLimit.rejectedTotal, { limit: 'limited' }), 1);
  assert.equal(await total(mb.requests.requestsTotal), 0, "b's requests counter did not move");
  assert.equal(await total(mb.requests.denialsTotal), 0);
  assert.equal(await total(mb.rateLimit.rejectedTotal), 0);

  // Nor their limits: b's limiter has its own buckets, so b's first request from the same address passes.
  assert.equal((await b.request({ host: 'api.test.local', path: '/limited/1' })).status, 200);
  assert.equal(await total(mb.requests.requestsTotal), 1);
  assert.equal(await total(ma.requests.requestsTotal), 2, "a's counter did not move");

  // Each admin listener serves its own registry.
  const scrape = async (gw: TestGateway): Promise<string> => (await fetch(`http://127.0.0.1:${gw.running.ports.admin}/metrics`)).text();
  const [ta, tb] = await Promise.all([scrape(a), scrape(b)]);
  assert.match(ta, /^crmgw_ratelimit_rejected_total\{limit="limited"\} 1$/m);
  assert.doesNotMatch(tb, /^crmgw_ratelimit_rejected_total\{/m);
});

test('every gateway metrics set has the same names, on a registry of its own', async () => {
  const names = async (): Promise<string[]> => [...(await createGatewayMetrics().registry.metrics()).matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1] as string).sort();
  const first = await names();
  assert.deepEqual(await names(), first, 'a second set registers without a clash, and the same names');
  for (const name of ['crmgw_build_info', 'crmgw_http_requests_total', 'crmgw_security_events_total', 'crmgw_ratelimit_rejected_total', 'crmgw_whatsapp_webhook_total', 'crmgw_tls_certificate_expiry_timestamp_seconds']) {
    assert.ok(first.includes(name), name);
  }
});

test('two identifier hashers with different keys, in one process, hash the same number differently', () => {
  const one = new IdentifierHasher('first-log-hash-key-0123456789abcdef');
  const two = new IdentifierHasher('second-log-hash-key-0123456789abcdef');
  const again = new IdentifierHasher('first-log-hash-key-0123456789abcdef');
  const phone = '+34 600 11 22 33';
  assert.notEqual(one.hash(phone), two.hash(phone));
  assert.equal(one.hash(phone), again.hash(phone), 'the same key gives the same hash');
  // A hasher built after another does not change it (no process-wide key).
  assert.equal(one.hash(phone), new IdentifierHasher('first-log-hash-key-0123456789abcdef').hash(phone));
});
