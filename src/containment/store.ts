import { mkdirSync, readFileSync, renameSync, statSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Redis } from 'ioredis';
import { REDIS_PREFIX } from '../stores/redis.js';
import type { RedisSubscription } from '../stores/subscriber.js';
import type { Logger } from '../log/logger.js';
import type { BlockSet } from './blocks.js';
import { blockKey, isBlockKind, parseBlock, type Block, type BlockKind } from './model.js';

/**
 * Where blocks live, shared by the CLI and every gateway. The design is the revocation list's
 * (src/auth/revocation.ts), not a second one:
 * - Redis: one key per block (TTL = until the block ends, so an expired block is gone from the
 *   store without a command), written in one transaction with its announcement on
 *   BLOCKS_CHANNEL. Each gateway's subscription (src/stores/subscriber.ts) applies
 *   announcements to its BlockSet and, on every (re)subscription, reads all the keys again
 *   (unblocks missed while away included) before it counts as live.
 * - Embedded (no REDIS_URL): a JSON file of mode 0600 in DATA_DIR, written whole and renamed
 *   into place; the gateway watches the folder and reads the file again every RELOAD_MS, for
 *   the file systems where watching says nothing (network mounts, some containers).
 */
export interface BlockStore {
  /** Stores and announces a block (replacing one of the same kind and target). */
  add(block: Block): Promise<void>;
  /** True when there was such a block. */
  remove(kind: BlockKind, target: string): Promise<boolean>;
  /** The blocks in force, as the store holds them now. */
  list(): Promise<Block[]>;
  close(): Promise<void>;
}

export const BLOCKS_CHANNEL = `${REDIS_PREFIX}blocks`;
const KEY_PREFIX = `${REDIS_PREFIX}block:`;
const SCAN_COUNT = 500;
/** Embedded mode: how often the file is looked at again besides what fs.watch reports. */
export const RELOAD_MS = 1_000;
export const BLOCKS_FILE = 'blocks.json';

type Message = { op: 'add'; block: Block } | { op: 'remove'; kind: BlockKind; target: string };

function parseMessage(text: string): Message | undefined {
  try {
    const m = JSON.parse(text) as Record<string, unknown>;
    if (m.op === 'add') {
      const block = parseBlock(m.block);
      return block ? { op: 'add', block } : undefined;
    }
    const kind = typeof m.kind === 'string' ? m.kind : undefined;
    if (m.op === 'remove' && isBlockKind(kind) && typeof m.target === 'string') return { op: 'remove', kind, target: m.target };
  } catch {
    // not ours
  }
  return undefined;
}

async function scanBlocks(redis: Redis): Promise<Block[]> {
  const out: Block[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${KEY_PREFIX}*`, 'COUNT', SCAN_COUNT);
    cursor = next;
    if (keys.length === 0) continue;
    const values = await redis.mget(...keys);
    const now = Date.now();
    for (const v of values) {
      if (v === null) continue;
      let block: Block | undefined;
      try {
        block = parseBlock(JSON.parse(v));
      } catch {
        block = undefined;
      }
      if (block && block.until > now) out.push(block);
    }
  } while (cursor !== '0');
  return out;
}

/**
 * The Redis store. With `follow` (a gateway), `set` is kept current through `subscription`
 * (which it adds its channel to; the caller starts and closes the subscription); without (the
 * CLI), it only reads and writes.
 */
export function createRedisBlockStore(redis: Redis, follow?: { set: BlockSet; subscription: RedisSubscription }): BlockStore {
  if (follow) {
    const { set, subscription } = follow;
    // Announcements that arrive while a catch-up reads the keys are applied again after it, so
    // an unblock published mid-scan is not undone by a key read just before it was deleted.
    let during: Message[] | undefined;
    const apply = (m: Message): void => {
      if (m.op === 'add') set.add(m.block);
      else set.remove(m.kind, m.target);
    };
    subscription.add(BLOCKS_CHANNEL, {
      message(text) {
        const m = parseMessage(text);
        if (!m) return;
        during?.push(m);
        apply(m);
      },
      async catchUp() {
        during = [];
        try {
          const blocks = await scanBlocks(redis);
          set.replace(blocks);
          for (const m of during) apply(m);
        } finally {
          during = undefined;
        }
      },
    });
  }
  return {
    async add(block) {
      const ttl = block.until - Date.now();
      if (ttl <= 0) return;
      // One transaction: a block stored is always announced, or a live gateway (which no longer
      // reads the store) would never apply it.
      const replies = await redis
        .multi()
        .set(`${KEY_PREFIX}${blockKey(block.kind, block.target)}`, JSON.stringify(block), 'PX', ttl)
        .publish(BLOCKS_CHANNEL, JSON.stringify({ op: 'add', block }))
        .exec();
      if (!replies) throw new Error('block transaction aborted');
      for (const [err] of replies) if (err) throw err;
      follow?.set.add(block);
    },
    async remove(kind, target) {
      const replies = await redis
        .multi()
        .del(`${KEY_PREFIX}${blockKey(kind, target)}`)
        .publish(BLOCKS_CHANNEL, JSON.stringify({ op: 'remove', kind, target }))
        .exec();
      if (!replies) throw new Error('unblock transaction aborted');
      for (const [err] of replies) if (err) throw err;
      follow?.set.remove(kind, target);
      return replies[0]?.[1] === 1;
    },
    list: () => scanBlocks(redis),
    async close() {
      // The subscription belongs to the containment service, which closes it.
    },
  };
}

/** Embedded mode: DATA_DIR/blocks.json, mode 0600, a JSON object of key → block. */
export function createFileBlockStore(dataDir: string, log: Logger, set?: BlockSet): BlockStore {
  const file = join(dataDir, BLOCKS_FILE);
  const read = (): Block[] => {
    let data: Record<string, unknown>;
    try {
      data = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return [];
      throw new Error(`cannot read ${file}: ${(err as Error).message}`);
    }
    const now = Date.now();
    return Object.values(data).flatMap((v) => {
      const b = parseBlock(v);
      return b && b.until > now ? [b] : [];
    });
  };
  const write = (blocks: readonly Block[]): void => {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(Object.fromEntries(blocks.map((b) => [blockKey(b.kind, b.target), b])), null, 1)}\n`, { mode: 0o600 });
    renameSync(tmp, file);
  };

  let watcher: FSWatcher | undefined;
  let timer: NodeJS.Timeout | undefined;
  if (set) {
    let seen = '';
    let warned = false;
    // Read when the file changed (inode, size or time): a rename-into-place changes the inode.
    const reload = (): void => {
      let stamp: string;
      try {
        const st = statSync(file);
        stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
      } catch {
        stamp = 'absent';
      }
      if (stamp === seen) return;
      try {
        set.replace(read());
        seen = stamp;
        warned = false;
      } catch (err) {
        // Kept as they were: a half-written or damaged file must not lift every block.
        if (!warned) log.app('warn', 'cannot read the blocks file; the blocks read before stay in force', { file, error: (err as Error).message });
        warned = true;
      }
    };
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    reload();
    try {
      watcher = watch(dirname(file), { persistent: false }, (_e, name) => {
        if (name === null || String(name) === BLOCKS_FILE) reload();
      });
    } catch {
      watcher = undefined;
    }
    timer = setInterval(reload, RELOAD_MS);
    timer.unref();
  }

  return {
    async add(block) {
      const others = read().filter((b) => !(b.kind === block.kind && b.target === block.target));
      write([...others, block]);
      set?.add(block);
    },
    async remove(kind, target) {
      const blocks = read();
      const rest = blocks.filter((b) => !(b.kind === kind && b.target === target));
      if (rest.length !== blocks.length) write(rest);
      set?.remove(kind, target);
      return rest.length !== blocks.length;
    },
    list: async () => read().sort((a, b) => a.until - b.until),
    async close() {
      watcher?.close();
      clearInterval(timer);
    },
  };
}
