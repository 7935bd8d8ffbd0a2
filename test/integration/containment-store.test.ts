import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { BlockSet } from '../../src/containment/blocks.js';
import type { Block } from '../../src/containment/model.js';
import { BLOCKS_CHANNEL, createRedisBlockStore } from '../../src/containment/store.js';
import { createMemoryLogger } from '../../src/log/logger.js';
import { RedisSubscription } from '../../src/stores/subscriber.js';
import { RedisServerProcess, gatewayRedis, listKeys, waitFor } from '../helpers/redis.js';

/**
 * The Redis block store against a real redis-server of the test's own: announcements reach a
 * follower at once, a follower whose subscription was cut catches up on what it missed
 * (unblocks included) before it counts as live again, and keys expire with their blocks.
 */

const LIMITS = { maxMs: 90 * 86_400_000 };
let server: RedisServerProcess;
let gatewayClient: Redis;
let cliClient: Redis;
let subscription: RedisSubscription;
const set = new BlockSet();
const log = createMemoryLogger();

before(async () => {
  server = await RedisServerProcess.start();
  gatewayClient = await gatewayRedis(server.url, log);
  cliClient = await gatewayRedis(server.url, log);
  subscription = new RedisSubscription(gatewayClient, log, 200, 200);
  createRedisBlockStore(gatewayClient, LIMITS, { set, subscription });
  assert.equal(await subscription.start(5_000), true);
});

after(async () => {
  await subscription?.close();
  gatewayClient?.disconnect();
  cliClient?.disconnect();
  await server?.stop();
});

function block(kind: Block['kind'], target: string, ms = 60_000): Block {
  const now = Date.now();
  return { kind, target, reason: 'store test', until: now + ms, createdAt: now, by: 'test', source: 'manual' };
}

test('a block written by another process reaches the follower through the announcement', async () => {
  const cli = createRedisBlockStore(cliClient, LIMITS);
  await cli.add(block('ip', '203.0.113.7'));
  await waitFor(() => set.address({ address: '203.0.113.7', family: 'ipv4' }) !== undefined, 1_000, 'the announced block');
  assert.equal(await cli.remove('ip', '203.0.113.7'), true);
  await waitFor(() => set.address({ address: '203.0.113.7', family: 'ipv4' }) === undefined, 1_000, 'the announced unblock');
  assert.equal(await cli.remove('ip', '203.0.113.7'), false, 'nothing left to lift');
});

test('a follower cut off from Redis catches up on blocks and unblocks it missed before it is live again', async () => {
  const cli = createRedisBlockStore(cliClient, LIMITS);
  await cli.add(block('user', 'alice'));
  await waitFor(() => set.subject('alice') !== undefined, 1_000, 'alice blocked');
  // Cut the subscriber connection, then change the store while it is away.
  let lost = false;
  subscription.onChange((live) => {
    if (!live) lost = true;
  });
  await cliClient.client('KILL', 'TYPE', 'pubsub');
  await cli.remove('user', 'alice');
  await cli.add(block('route', 'shop'));
  await waitFor(() => lost, 2_000, 'the subscription to notice');
  await waitFor(() => subscription.live, 5_000, 'the subscription live again');
  assert.equal(set.subject('alice'), undefined, 'the unblock missed while away is applied');
  assert.ok(set.route('shop'), 'the block missed while away is applied');
  await cli.remove('route', 'shop');
});

test('keys carry the block\'s remaining time as TTL and disappear with it', async () => {
  const cli = createRedisBlockStore(cliClient, LIMITS);
  await cli.add(block('cidr', '198.51.100.0/24', 1_500));
  const [key] = await listKeys(cliClient, 'crmgw:block:*');
  assert.equal(key, 'crmgw:block:cidr:198.51.100.0/24');
  const ttl = await cliClient.pttl(key as string);
  assert.ok(ttl > 0 && ttl <= 1_500, `pttl ${ttl}`);
  await waitFor(async () => (await listKeys(cliClient, 'crmgw:block:*')).length === 0, 3_000, 'the key to expire');
  assert.equal(set.address({ address: '198.51.100.1', family: 'ipv4' }), undefined);
  assert.deepEqual(await cli.list(), []);
});

/** A real change announced after `forged`: once the follower has applied it, it has handled the forged messages (one channel, one connection, in order). */
async function afterMarker(forged: () => Promise<unknown>): Promise<void> {
  await forged();
  const cli = createRedisBlockStore(cliClient, LIMITS);
  await cli.add(block('route', 'marker'));
  await waitFor(() => set.route('marker') !== undefined, 1_000, 'the marker block');
  await cli.remove('route', 'marker');
  await waitFor(() => set.route('marker') === undefined, 1_000, 'the marker lifted');
}

const v4 = (address: string) => ({ address, family: 'ipv4' as const });

test('regression: a forged announcement neither blocks nor lifts: the follower applies what the store holds', async () => {
  const cli = createRedisBlockStore(cliClient, LIMITS);
  const stored = block('ip', '203.0.113.77');
  await cli.add(stored);
  await waitFor(() => set.address(v4('203.0.113.77')) !== undefined, 1_000, 'the stored block');
  const now = Date.now();
  const forged = { kind: 'cidr', target: '0.0.0.0/0', reason: 'forged', until: now + 60_000, createdAt: now, by: 'mallory', source: 'manual' };
  await afterMarker(async () => {
    await cliClient.publish(BLOCKS_CHANNEL, JSON.stringify({ op: 'add', block: forged }));
    await cliClient.publish(BLOCKS_CHANNEL, JSON.stringify({ op: 'add', kind: 'user', target: 'victim' }));
    await cliClient.publish(BLOCKS_CHANNEL, JSON.stringify({ op: 'add', block: { ...stored, until: now + 30 * 86_400_000, reason: 'forged longer' } }));
    await cliClient.publish(BLOCKS_CHANNEL, JSON.stringify({ op: 'remove', kind: 'ip', target: '203.0.113.77' }));
  });
  assert.equal(set.address(v4('198.51.100.1')), undefined, 'no block of everyone');
  assert.equal(set.subject('victim'), undefined);
  const held = set.address(v4('203.0.113.77'));
  assert.equal(held?.reason, 'store test', 'the stored block, unchanged and not lifted');
  assert.equal(held?.until, stored.until);
  assert.equal(await cli.remove('ip', '203.0.113.77'), true);
  await waitFor(() => set.address(v4('203.0.113.77')) === undefined, 1_000, 'the real unblock');
});

test('regression: a stored block longer than maxDuration, or filed under another key, is ignored (notice, catch-up, list)', async () => {
  const now = Date.now();
  const base = { reason: 'written by hand', createdAt: now, by: 'mallory', source: 'manual' };
  await cliClient.set('crmgw:block:cidr:0.0.0.0/0', JSON.stringify({ ...base, kind: 'cidr', target: '0.0.0.0/0', until: now + 10 * 365 * 86_400_000 }), 'PX', 60_000);
  await cliClient.set('crmgw:block:user:carol', JSON.stringify({ ...base, kind: 'user', target: 'dave', until: now + 60_000 }), 'PX', 60_000);
  try {
    await afterMarker(async () => {
      await cliClient.publish(BLOCKS_CHANNEL, JSON.stringify({ op: 'add', kind: 'cidr', target: '0.0.0.0/0' }));
      await cliClient.publish(BLOCKS_CHANNEL, JSON.stringify({ op: 'add', kind: 'user', target: 'carol' }));
    });
    assert.equal(set.address(v4('198.51.100.1')), undefined);
    assert.equal(set.subject('carol'), undefined);
    assert.equal(set.subject('dave'), undefined);
    assert.deepEqual(await createRedisBlockStore(cliClient, LIMITS).list(), []);
    // A catch-up (what a restart or reconnection does) reads them the same way.
    let lost = false;
    subscription.onChange((live) => {
      if (!live) lost = true;
    });
    await cliClient.client('KILL', 'TYPE', 'pubsub');
    await waitFor(() => lost, 2_000, 'the subscription to notice');
    await waitFor(() => subscription.live, 5_000, 'the subscription live again');
    assert.equal(set.address(v4('198.51.100.1')), undefined);
    assert.equal(set.subject('dave'), undefined);
  } finally {
    await cliClient.del('crmgw:block:cidr:0.0.0.0/0', 'crmgw:block:user:carol');
  }
});
