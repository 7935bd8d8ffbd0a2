import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { RefreshTokens } from '../../src/auth/refresh.js';
import { createRedisKv, type Kv } from '../../src/stores/kv.js';
import { SHARED_REDIS_URL } from '../helpers/redis.js';

// Two gateway instances renewing one session at the same moment (two tabs after a laptop
// wakes, behind a load balancer): the second must find the first's "used" mark and get the
// grace answer, never "unknown token", which logs the user out. Real Redis; the second
// instance's view is slowed between its commands, as a network hop would.

let redis: Redis;
before(() => {
  redis = new Redis(SHARED_REDIS_URL);
});
after(() => redis.disconnect());

/** The Redis store with every plain write held back a little, like a slow network hop. */
function slowWrites(kv: Kv, ms: number): Kv {
  return { ...kv, set: async (key, value, ttl) => (await new Promise((r) => setTimeout(r, ms)), kv.set(key, value, ttl)) };
}

test('two instances renewing with one refresh token at once: one rotates, the other gets the grace answer', async () => {
  const kv = slowWrites(createRedisKv(redis), 50);
  const a = new RefreshTokens(kv, 60_000, async () => undefined, 10_000);
  const b = new RefreshTokens(kv, 60_000, async () => undefined, 10_000);
  const start = await a.start('race-user', ['staff']);
  const [ra, rb] = await Promise.allSettled([a.rotate(start.token), b.rotate(start.token)]);
  assert.equal(ra.status, 'fulfilled', ra.status === 'rejected' ? String(ra.reason) : '');
  assert.equal(rb.status, 'fulfilled', rb.status === 'rejected' ? String(rb.reason) : '');
  const tokens = [ra, rb].map((r) => (r.status === 'fulfilled' ? r.value.token : undefined));
  assert.equal(tokens.filter((t) => t !== undefined).length, 1, 'exactly one successor refresh token');
  await a.revokeFamily(start.record.family);
});
