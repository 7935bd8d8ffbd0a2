import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { BlockSet } from '../../src/containment/blocks.js';
import type { Block } from '../../src/containment/model.js';
import { createRedisBlockStore } from '../../src/containment/store.js';
import { createMemoryLogger } from '../../src/log/logger.js';
import { RedisSubscription } from '../../src/stores/subscriber.js';
import { RedisServerProcess, gatewayRedis, listKeys, waitFor } from '../helpers/redis.js';

/**
 * The Redis block store against a real redis-server of the test's own: announcements reach a
 * follower at once, a follower whose subscription was cut catches up on what it missed
 * (unblocks included) before it counts as live again, and keys expire with their blocks.
 */

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
  createRedisBlockStore(gatewayClient, { set, subscription });
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
  const cli = createRedisBlockStore(cliClient);
  await cli.add(block('ip', '203.0.113.7'));
  await waitFor(() => set.address({ address: '203.0.113.7', family: 'ipv4' }) !== undefined, 1_000, 'the announced block');
  assert.equal(await cli.remove('ip', '203.0.113.7'), true);
  await waitFor(() => set.address({ address: '203.0.113.7', family: 'ipv4' }) === undefined, 1_000, 'the announced unblock');
  assert.equal(await cli.remove('ip', '203.0.113.7'), false, 'nothing left to lift');
});

test('a follower cut off from Redis catches up on blocks and unblocks it missed before it is live again', async () => {
  const cli = createRedisBlockStore(cliClient);
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
  const cli = createRedisBlockStore(cliClient);
  await cli.add(block('cidr', '198.51.100.0/24', 1_500));
  const [key] = await listKeys(cliClient, 'crmgw:block:*');
  assert.equal(key, 'crmgw:block:cidr:198.51.100.0/24');
  const ttl = await cliClient.pttl(key as string);
  assert.ok(ttl > 0 && ttl <= 1_500, `pttl ${ttl}`);
  await waitFor(async () => (await listKeys(cliClient, 'crmgw:block:*')).length === 0, 3_000, 'the key to expire');
  assert.equal(set.address({ address: '198.51.100.1', family: 'ipv4' }), undefined);
  assert.deepEqual(await cli.list(), []);
});
