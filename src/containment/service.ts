import type { Redis } from 'ioredis';
import type { GatewayConfig } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import { IpSet } from '../net/ip.js';
import { RedisSubscription } from '../stores/subscriber.js';
import { AutoContainment } from './auto.js';
import { BlockSet } from './blocks.js';
import { ContainedSockets } from './sockets.js';
import { createFileBlockStore, createRedisBlockStore, type BlockStore } from './store.js';

/** How long startup waits for the blocks to be read from Redis (as for revocations). */
const SUBSCRIPTION_START_WAIT_MS = 3_000;

/** Blocks as one gateway process holds and enforces them. */
export interface Containment {
  /** What the pipeline's `blocks` and `account-blocks` steps check (memory; kept current by the store). */
  readonly blocks: BlockSet;
  readonly store: BlockStore;
  /** Open websockets, closed when their party is blocked. */
  readonly sockets: ContainedSockets;
  /** With `containment.rules`: the audit logger's observer that turns alerts into blocks. */
  readonly auto: AutoContainment | undefined;
  close(): Promise<void>;
}

/**
 * The blocks of a running gateway. With Redis they come through a pub/sub subscription of
 * their own (the revocations' RedisSubscription, heartbeat and catch-up included): ip and route
 * blocks apply on gateways without an auth service too, so they cannot ride on its
 * subscription. Redis down at startup: the gateway starts, enforces no block until it has read
 * them once, and says so (a block is a restriction added on top of every other check; refusing
 * all traffic because Redis is down would turn an outage of the store into one of the site).
 */
export async function createContainment(cfg: GatewayConfig, deps: { log: Logger; redis?: Redis | undefined }): Promise<Containment> {
  const { log, redis } = deps;
  const blocks = new BlockSet();
  const sockets = new ContainedSockets(blocks);
  let subscription: RedisSubscription | undefined;
  let store: BlockStore;
  const limits = { maxMs: cfg.containment.maxDuration };
  if (redis) {
    subscription = new RedisSubscription(redis, log);
    store = createRedisBlockStore(redis, limits, { set: blocks, subscription });
    if (!(await subscription.start(SUBSCRIPTION_START_WAIT_MS))) {
      log.security('containment.blocks_unknown', { waitedMs: SUBSCRIPTION_START_WAIT_MS, effect: 'Redis not reachable at startup: no block is enforced until the blocks have been read once' });
    }
  } else {
    store = createFileBlockStore(cfg.stores.dataDir, limits, log, blocks);
  }
  const rules = cfg.containment.rules;
  const auto =
    rules.length > 0 ? new AutoContainment(rules, { trustedProxies: new IpSet(cfg.trustedProxies), neverBlock: new IpSet(cfg.containment.neverBlock) }, store, blocks, log) : undefined;
  return {
    blocks,
    store,
    sockets,
    auto,
    async close() {
      await store.close();
      await subscription?.close();
    },
  };
}
