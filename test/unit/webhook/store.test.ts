import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { WebhookStore } from '../../../src/webhook/store.js';
import { createMemoryLogger } from '../../../src/log/logger.js';
import { deleteKeys, gatewayRedis, runId, SHARED_REDIS_URL } from '../../helpers/redis.js';

const DAY = 86_400_000;
let redis: Redis;
const routes: string[] = [];

before(async () => {
  redis = await gatewayRedis(SHARED_REDIS_URL, createMemoryLogger());
});
after(async () => {
  for (const r of routes) await deleteKeys(SHARED_REDIS_URL, `crmgw:{wa:${r}}:*`);
  redis.disconnect();
});

function store(): WebhookStore {
  const name = runId('wa-');
  routes.push(name);
  return new WebhookStore(redis, name);
}

const opts = (token: string, maxQueued = 100) => ({ seenTtlMs: 8 * DAY, maxQueued, token, leaseMs: 30_000 });

test('accept stores once per set of events; all seen again is a duplicate, one new event is not', async () => {
  const s = store();
  const first = await s.accept(['message:a'], Buffer.from('one'), opts('w1'));
  assert.equal(first.kind, 'queued');
  assert.equal(first.kind === 'queued' && first.leaseIsOurs, true);
  assert.deepEqual(await s.accept(['message:a'], Buffer.from('one again'), opts('w2')), { kind: 'duplicate' });
  const partly = await s.accept(['message:a', 'status:a:read'], Buffer.from('two'), opts('w2'));
  assert.equal(partly.kind, 'queued');
  // The lease is w1's: w2's payload is queued behind, for w1 to deliver.
  assert.equal(partly.kind === 'queued' && partly.leaseIsOurs, false);
  assert.equal(await s.depth(), 2);
  const ttl = await redis.pttl(s.seenKey('message:a'));
  assert.ok(ttl > 7 * DAY && ttl <= 8 * DAY, `seen TTL ${ttl}`);
});

test('entries come back oldest first, sealed bytes intact, and leave only when removed', async () => {
  const s = store();
  const ids: string[] = [];
  for (const n of [1, 2, 3]) {
    const r = await s.accept([`message:${n}`], Buffer.from([n, 0xff]), opts('w'));
    assert.equal(r.kind, 'queued');
    if (r.kind === 'queued') ids.push(r.id);
  }
  for (const [i, id] of ids.entries()) {
    const head = await s.head();
    assert.equal(head?.id, id);
    assert.deepEqual(head?.sealed, Buffer.from([i + 1, 0xff]));
    await s.remove(id);
  }
  assert.equal(await s.head(), undefined);
  assert.equal(await s.oldestAgeMs(), 0);
});

test('a full queue refuses (and claims nothing), never trims', async () => {
  const s = store();
  await s.accept(['message:1'], Buffer.from('1'), opts('w', 2));
  await s.accept(['message:2'], Buffer.from('2'), opts('w', 2));
  assert.deepEqual(await s.accept(['message:3'], Buffer.from('3'), opts('w', 2)), { kind: 'full' });
  assert.equal(await s.depth(), 2);
  assert.equal(await redis.exists(s.seenKey('message:3')), 0);
});

test('the lease: one holder, renewed by it only, released only when the queue is empty', async () => {
  const s = store();
  assert.equal(await s.acquire('a', 30_000), true);
  assert.equal(await s.acquire('b', 30_000), false);
  assert.equal(await s.renew('b', 30_000), false);
  assert.equal(await s.renew('a', 30_000), true);
  const r = await s.accept(['message:x'], Buffer.from('x'), opts('b'));
  assert.equal(r.kind === 'queued' && r.leaseIsOurs, false);
  assert.equal(await s.release('b'), -1);
  assert.equal(await s.release('a'), 0, 'not while an entry waits');
  if (r.kind === 'queued') await s.remove(r.id);
  assert.equal(await s.release('a'), 1);
  assert.equal(await s.acquire('b', 30_000), true);
  assert.equal(await s.release('b', true), 1);
});

test('a dead letter leaves the queue, keeps the sealed bytes, and expires', async () => {
  const s = store();
  const r = await s.accept(['message:d'], Buffer.from('sealed'), opts('w'));
  assert.equal(r.kind, 'queued');
  const head = await s.head();
  assert.ok(head);
  await s.deadLetter(head, 'refused');
  assert.equal(await s.depth(), 0);
  const deadKey = s.queueKey.replace(/queue$/, 'dead');
  const rows = await redis.xrangeBuffer(deadKey, '-', '+');
  assert.equal(rows.length, 1);
  assert.ok(rows[0]?.[1].some((f) => f.equals(Buffer.from('sealed'))));
  assert.ok((await redis.pttl(deadKey)) > 0);
});
