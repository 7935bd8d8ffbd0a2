import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { SecurityOverview } from '../../../src/audit/overview/overview-data.js';
import { LatencyHistogram } from '../../../src/audit/overview/latency-histogram.js';
import { TopCounts } from '../../../src/audit/overview/top-counts.js';
import { plainAddress } from '../../../src/audit/overview/tally.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** 12:30 UTC: the 24 h range starts at 13:00 the day before, the 7 d range at 18:00 seven days before. */
const NOW = Date.parse('2026-12-03T12:30:00Z');
const ago = (ms: number, now = NOW): string => new Date(now - ms).toISOString();

function access(time: string, fields: Record<string, unknown> = {}): Record<string, unknown> {
  return { time, requestId: `r-${Math.random()}`, clientIp: '192.0.2.1', method: 'GET', path: '/x', route: 'crm', status: 200, outcome: 'forwarded', durationMs: 12, ...fields };
}
const refused = (time: string, code: string, status: number, fields: Record<string, unknown> = {}): Record<string, unknown> =>
  access(time, { status, code, outcome: 'denied', durationMs: 1, ...fields });

test('rate-limit refusals count from the access records as they happen; sampled events and request.denied add nothing', () => {
  const o = new SecurityOverview(() => NOW);
  // A flood from one client: 43 refusals answered, of which the sampler logged one event (and a second one, late, standing for 41).
  for (let i = 0; i < 43; i++) o.observeAccess(refused(ago(10 * 60_000), 'RATE_LIMITED', 429, { clientIp: '203.0.113.7' }));
  o.observe({ time: ago(10 * 60_000), event: 'ratelimit.rejected', clientIp: '203.0.113.7', suppressedSinceLast: 0 });
  o.observe({ time: ago(9 * 60_000), event: 'ratelimit.rejected', clientIp: '203.0.113.7', suppressedSinceLast: 41 });
  // A denial has its access record and its request.denied event: one denial.
  o.observeAccess(refused(ago(8 * 60_000), 'IP_DENIED', 403, { requestId: 'ip-1', clientIp: '198.51.100.2' }));
  o.observe({ time: ago(8 * 60_000), event: 'request.denied', requestId: 'ip-1', code: 'IP_DENIED', clientIp: '198.51.100.2' });
  for (let i = 0; i < 5; i++) o.observeAccess(access(ago(7 * 60_000)));
  const s = o.snapshot();
  assert.equal(s.rateLimited, 43);
  assert.deepEqual(s.denialsByReason, [
    { reason: 'RATE_LIMITED', count: 43 },
    { reason: 'IP_DENIED', count: 1 },
  ]);
  assert.equal(s.totalDenials, 44);
  assert.equal(s.totalRequests, 49);
  assert.deepEqual(s.top.addresses[0], { value: '203.0.113.7', count: 43, denied: 43 });
  // A burst that has ended is counted all the same: no later event of its bucket is needed.
  assert.equal(o.snapshot('30d').rateLimited, 43);
});

test("a denial is what the denial metric counts: by the code's own status, whatever the line says", () => {
  const o = new SecurityOverview(() => NOW);
  const t = ago(60_000);
  // Refused after the answer's head went out: logged `aborted` with the 200 the client got.
  o.observeAccess(access(t, { status: 200, outcome: 'aborted', code: 'BODY_TOO_LARGE' }));
  // An upstream that stalled mid-answer is an upstream error, not a denial.
  o.observeAccess(access(t, { status: 200, outcome: 'aborted', code: 'UPSTREAM_TIMEOUT' }));
  o.observeAccess(refused(t, 'UPSTREAM_UNAVAILABLE', 502, { outcome: 'failed' }));
  o.observeAccess(refused(t, 'INTERNAL', 500, { outcome: 'failed' }));
  // A code this version does not know (an older log): the line's status decides.
  o.observeAccess(refused(t, 'RETIRED_CODE', 403, { outcome: undefined }));
  // The log's own records in the access stream are no requests.
  o.observeAccess({ time: t, event: 'log.lines_dropped', dropped: 12 });
  const s = o.snapshot();
  assert.equal(s.totalRequests, 5);
  assert.deepEqual(s.denialsByReason, [
    { reason: 'BODY_TOO_LARGE', count: 1 },
    { reason: 'RETIRED_CODE', count: 1 },
  ]);
  assert.equal(s.upstreamErrors, 2);
});

test('sign-ins, lockouts, rejected tokens and refused client secrets are separate figures', () => {
  const o = new SecurityOverview(() => NOW);
  const t = ago(30 * 60_000);
  o.observe({ time: t, event: 'auth.login_succeeded', requestId: 'ok-1', user: 'alice', clientIp: '192.0.2.1', method: 'password' });
  // Failed form sign-ins, under the old (`ip:`) and the fixed spelling of the address; each with its AUTH_FAILED access line.
  for (const [i, ip] of ['ip:203.0.113.9', '203.0.113.9', 'ip:203.0.113.9'].entries()) {
    o.observe({ time: t, event: 'auth.login_failed', requestId: `lf-${i}`, user: 'mallory', clientIp: ip, reason: 'wrong password' });
    o.observeAccess(refused(t, 'AUTH_FAILED', 401, { requestId: `lf-${i}`, path: '/auth/login', route: undefined }));
  }
  o.observe({ time: t, event: 'auth.login_locked', requestId: 'lk-1', user: 'mallory', clientIp: 'ip:203.0.113.9' });
  o.observeAccess(refused(t, 'AUTH_LOCKED', 429, { requestId: 'lk-1', path: '/auth/login', route: undefined }));
  // An API client's wrong secret writes auth.login_failed for `client:<name>`: not a person's sign-in.
  o.observe({ time: t, event: 'auth.login_failed', requestId: 'cf-1', user: 'client:reports', clientIp: 'ip:203.0.113.10', reason: 'wrong secret' });
  o.observeAccess(refused(t, 'AUTH_FAILED', 401, { requestId: 'cf-1', path: '/auth/token', route: undefined }));
  // Tokens refused: each code once, plus a session the lockout is unrelated to.
  for (const code of ['AUTH_INVALID', 'AUTH_EXPIRED', 'AUTH_REVOKED', 'AUTH_AMBIGUOUS', 'AUTH_DISABLED', 'AUTH_INVALID']) o.observeAccess(refused(t, code, 401));
  o.observeAccess(refused(t, 'AUTH_REQUIRED', 401));
  const s = o.snapshot();
  assert.deepEqual({ ...s.signIns, overTime: undefined }, { succeeded: 1, failed: 3, locked: 1, rejectedTokens: 6, clientCredentialsFailed: 1, overTime: undefined });
  const point = s.signIns.overTime.find((p) => p.start === '2026-12-03T12:00:00.000Z');
  assert.deepEqual(point, { start: '2026-12-03T12:00:00.000Z', succeeded: 1, failed: 3, locked: 1 });
  assert.equal(s.signIns.overTime.length, 24);
  assert.equal(s.totalDenials, 3 + 1 + 1 + 6 + 1);
  assert.equal(plainAddress('ip:2001:db8::/64'), '2001:db8::/64');
  assert.equal(plainAddress('198.51.100.4'), '198.51.100.4');
});

test('ranges: 24 hourly, 28 six-hour and 30 daily buckets, each record in the bucket of its time', () => {
  let now = NOW;
  const o = new SecurityOverview(() => now);
  const ages = { m30: 30 * 60_000, h5: 5 * HOUR, h23: 23 * HOUR, h26: 26 * HOUR, d3: 3 * DAY, d6: 6 * DAY + HOUR, d8: 8 * DAY, d29: 29 * DAY, d31: 31 * DAY };
  for (const age of Object.values(ages)) o.observeAccess(access(ago(age)));
  o.observeAccess(refused(ago(ages.h5), 'IP_DENIED', 403));
  o.observeAccess(access(new Date(NOW + DAY).toISOString()));

  const day = o.snapshot('24h');
  assert.equal(day.range, '24h');
  assert.equal(day.bucketMinutes, 60);
  assert.equal(day.overTime.length, 24);
  assert.equal(day.from, '2026-12-02T13:00:00.000Z');
  assert.equal(day.to, '2026-12-03T12:30:00.000Z');
  assert.equal(day.overTime[23]?.start, '2026-12-03T12:00:00.000Z');
  assert.equal(day.totalRequests, 4, '30 min, 5 h (twice) and 23 h ago; 26 h is out, and so is a line stamped a day ahead');
  assert.deepEqual(day.overTime.find((p) => p.start === '2026-12-03T07:00:00.000Z'), { start: '2026-12-03T07:00:00.000Z', requests: 2, denied: 1 });
  assert.equal(day.overTime.reduce((n, p) => n + p.requests, 0), day.totalRequests);

  const week = o.snapshot('7d');
  assert.equal(week.bucketMinutes, 360);
  assert.equal(week.overTime.length, 28);
  assert.equal(week.from, '2026-11-26T18:00:00.000Z');
  assert.equal(week.totalRequests, 7, 'adds 26 h, 3 d and 6 d 1 h ago');

  const month = o.snapshot('30d');
  assert.equal(month.bucketMinutes, 1440);
  assert.equal(month.overTime.length, 30);
  assert.equal(month.from, '2026-11-04T00:00:00.000Z');
  assert.equal(month.totalRequests, 9, 'adds 8 d and 29 d ago; 31 d is out');
  assert.equal(month.routes[0]?.overTime.length, 30);

  // Two hours later the record of 23 h ago has left the 24 h range, and its bucket is gone.
  now = NOW + 2 * HOUR;
  assert.equal(o.snapshot('24h').totalRequests, 3);
  assert.equal(o.snapshot('30d').totalRequests, 9);
});

test('per route: requests, denials, denial ratio over time, and upstream percentiles of forwarded requests only', () => {
  const o = new SecurityOverview(() => NOW);
  // 1..1000 ms, shuffled, on route crm; plus refusals (1 ms) that must not pull the percentiles down.
  const order = Array.from({ length: 1000 }, (_, i) => ((i * 7919) % 1000) + 1);
  for (const ms of order) o.observeAccess(access(ago(HOUR), { durationMs: ms + 3, upstreamMs: ms }));
  for (let i = 0; i < 250; i++) o.observeAccess(refused(ago(HOUR), 'ROLE_FORBIDDEN', 403));
  for (let i = 0; i < 4; i++) o.observeAccess(refused(ago(HOUR), 'HOST_UNKNOWN', 404, { route: undefined }));
  // Without upstreamMs (a websocket session, a line from before it was logged) there is no upstream time: a
  // 40 ms request or a 30 s long-poll is not the upstream's latency.
  for (let i = 0; i < 10; i++) o.observeAccess(access(ago(2 * HOUR), { route: 'metabase', durationMs: 40 }));
  const s = o.snapshot();
  const crm = s.routes.find((r) => r.route === 'crm');
  assert.ok(crm);
  assert.equal(crm.requests, 1250);
  assert.equal(crm.denied, 250);
  assert.equal(crm.denialRatio, 0.2);
  const near = (actual: number | undefined, expected: number): void => assert.ok(actual !== undefined && Math.abs(actual - expected) / expected <= 0.05, `${actual} ≈ ${expected}`);
  near(crm.upstreamMs?.p50, 500);
  near(crm.upstreamMs?.p95, 950);
  near(crm.upstreamMs?.p99, 990);
  const hour = crm.overTime.find((p) => p.start === '2026-12-03T11:00:00.000Z');
  assert.deepEqual(hour, { start: '2026-12-03T11:00:00.000Z', requests: 1250, denied: 250 });
  assert.equal(s.routes.find((r) => r.route === 'metabase')?.upstreamMs, undefined);
  const none = s.routes.find((r) => r.route === '(none)');
  assert.deepEqual({ ...none, overTime: undefined }, { route: '(none)', requests: 4, denied: 4, denialRatio: 1, upstreamMs: undefined, overTime: undefined });
  assert.deepEqual(s.routes.map((r) => r.route), ['crm', 'metabase', '(none)']);
});

test('top users, clients, addresses and paths, with their denials', () => {
  const o = new SecurityOverview(() => NOW);
  const t = ago(HOUR);
  for (let i = 0; i < 5; i++) o.observeAccess(access(t, { user: 'alice', authMethod: 'session', path: '/contacts' }));
  for (let i = 0; i < 3; i++) o.observeAccess(access(t, { user: 'client:reports', authMethod: 'jwt', clientIp: '198.51.100.20', path: '/reports' }));
  o.observeAccess(refused(t, 'ROLE_FORBIDDEN', 403, { user: 'bob', path: '/admin' }));
  for (let i = 0; i < 2; i++) o.observeAccess(access(t, { user: 'whatsapp-webhook', authMethod: 'whatsapp', clientIp: '198.51.100.30', path: '/webhook' }));
  const s = o.snapshot();
  assert.deepEqual(s.top.users, [
    { value: 'alice', count: 5, denied: 0 },
    { value: 'bob', count: 1, denied: 1 },
  ]);
  assert.deepEqual(s.top.clients, [
    { value: 'client:reports', count: 3, denied: 0 },
    { value: 'whatsapp-webhook', count: 2, denied: 0 },
  ]);
  assert.deepEqual(s.top.addresses, [
    { value: '192.0.2.1', count: 6, denied: 1 },
    { value: '198.51.100.20', count: 3, denied: 0 },
    { value: '198.51.100.30', count: 2, denied: 0 },
  ]);
  assert.deepEqual(s.top.paths[0], { value: '/contacts', count: 5, denied: 0 });
});

test('a flood of distinct addresses and paths over 30 days stays within the bound, and the flooding address stays on top', () => {
  // A real collection before each reading, so the figure is what the overview holds, not garbage.
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  const before = process.memoryUsage().heapUsed;
  const o = new SecurityOverview(() => NOW);
  const DISTINCT = 300_000;
  for (let i = 0; i < DISTINCT; i++) {
    const time = ago(Math.floor((i / DISTINCT) * 29 * DAY));
    o.observeAccess(refused(time, 'RATE_LIMITED', 429, { clientIp: `2001:db8:${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}::1`, path: `/x/${i}/${'p'.repeat(300)}`, user: `u${i}` }));
    // One address that keeps coming, spread over the whole flood.
    if (i % 50 === 0) o.observeAccess(refused(time, 'RATE_LIMITED', 429, { clientIp: '203.0.113.66' }));
  }
  // 82 buckets × (1 route + 1 reason + 1 status class + 200 users + 500 addresses + 500 paths).
  const bound = 82 * (1 + 1 + 1 + 200 + 500 + 500);
  assert.ok(o.trackedEntries() <= bound, `${o.trackedEntries()} entries > ${bound}`);
  gc();
  const grown = (process.memoryUsage().heapUsed - before) / 1024 / 1024;
  assert.ok(grown < 64, `heap grew ${grown.toFixed(1)} MB`);
  const month = o.snapshot('30d');
  assert.equal(month.totalRequests, DISTINCT + DISTINCT / 50);
  assert.equal(month.rateLimited, month.totalRequests);
  assert.equal(month.top.addresses[0]?.value, '203.0.113.66');
  assert.ok((month.top.paths[0]?.value.length ?? 0) <= 256, 'paths are cut');
  const day = o.snapshot('24h');
  assert.equal(day.top.addresses[0]?.value, '203.0.113.66');
});

test('the latency histogram and the top counts are bounded and add up', () => {
  const h = new LatencyHistogram();
  assert.equal(h.percentile(0.5), undefined);
  for (const ms of [0, 0.01, 5, 5, 5, 1e9, -1, Number.NaN]) h.add(ms);
  assert.equal(h.count, 6, 'negative and non-numbers are ignored');
  const g = new LatencyHistogram();
  g.add(5);
  h.addAll(g);
  assert.equal(h.count, 7);
  assert.ok(Math.abs((h.percentile(0.5) as number) - 5) <= 0.25);
  assert.ok((h.percentile(1) as number) > 1e6, 'the top bin holds everything slower');

  const c = new TopCounts(10);
  for (let i = 0; i < 1000; i++) {
    c.add(`one-off-${i}`, false);
    c.add('steady', i % 2 === 0);
  }
  assert.ok(c.size <= 10);
  assert.deepEqual(c.top(1), [{ value: 'steady', count: 1000, denied: 500 }]);
  assert.deepEqual(c.top(1, 'denied'), [{ value: 'steady', count: 1000, denied: 500 }]);
});
