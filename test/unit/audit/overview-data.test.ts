import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SecurityOverview } from '../../../src/audit/overview-data.js';

const now = Date.parse('2026-12-03T12:30:00Z');
const at = (min: number): string => new Date(now - min * 60_000).toISOString();

test('sampled rate-limit events count with the refusals they stood for', () => {
  const o = new SecurityOverview(() => now);
  // A flood from one client: the first refusal is logged, 41 more are left out and reported by the next event.
  o.observe({ time: at(10), event: 'ratelimit.rejected', clientIp: '203.0.113.7', suppressedSinceLast: 0 });
  o.observe({ time: at(9), event: 'ratelimit.rejected', clientIp: '203.0.113.7', suppressedSinceLast: 41 });
  o.observe({ time: at(8), event: 'request.denied', code: 'IP_DENIED', clientIp: '198.51.100.2' });
  const s = o.snapshot();
  assert.deepEqual(s.denialsByReason, [
    { reason: 'RATE_LIMITED', count: 43 },
    { reason: 'IP_DENIED', count: 1 },
  ]);
  assert.equal(s.totalDenials, 44);
  assert.deepEqual(s.topDeniedIps[0], { ip: '203.0.113.7', count: 43 });
});

test('a malformed suppressed count is not trusted', () => {
  const o = new SecurityOverview(() => now);
  o.observe({ time: at(1), event: 'ratelimit.rejected', clientIp: '203.0.113.7', suppressedSinceLast: '1e9' });
  o.observe({ time: at(1), event: 'ratelimit.rejected', clientIp: '203.0.113.7', suppressedSinceLast: -5 });
  assert.equal(o.snapshot().totalDenials, 2);
});
