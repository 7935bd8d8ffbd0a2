import { mkdirSync, readFileSync, statSync, type FSWatcher } from 'node:fs';
import { dirname, join } from 'node:path';
import { watchPrivateFile, writeFileAtomic } from '../stores/private-file.js';
import type { Redis } from 'ioredis';
import { REDIS_PREFIX } from '../stores/redis.js';
import type { RedisSubscription } from '../stores/subscriber.js';
import type { Logger } from '../log/logger.js';
import type { BlockSet } from './blocks.js';
import { withFileLock } from './file-lock.js';
import { blockKey, canonicalTarget, isBlockKind, parseBlock, type Block, type BlockKind } from './model.js';

/**
 * Where blocks live, shared by the CLI and every gateway. The design is the revocation list's
 * (src/auth/revocation.ts), not a second one:
 * - Redis: one key per block (TTL = until the block ends, so an expired block is gone from the
 *   store without a command), written in one transaction with its announcement on
 *   BLOCKS_CHANNEL. An announcement is only a notification naming a kind and target: each
 *   gateway's subscription (src/stores/subscriber.ts) then reads that key and applies what the
 *   store holds (a live block, or none). Whoever can PUBLISH can make a gateway read a key
 *   again, nothing more: a forged message neither blocks anyone nor lifts a block. On every
 *   (re)subscription all the keys are read again (unblocks missed while away included) before
 *   the subscription counts as live.
 * - Embedded (no REDIS_URL): a JSON file of mode 0600 in DATA_DIR, written whole to a temp file
 *   of a random name (created exclusively, so no planted symlink is followed) and renamed into
 *   place, under a lock file (src/containment/file-lock.ts) so that the CLI and the gateway's
 *   automatic blocks never lose each other's writes; the gateway watches the folder and reads
 *   the file again every RELOAD_MS, for the file systems where watching says nothing (network
 *   mounts, some containers).
 * Every block read back is checked (parseBlock), longer than containment.maxDuration included.
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

/** What the store is told about the blocks it reads back. */
export interface StoreLimits {
  /** containment.maxDuration: a block lasting longer from now is not one this gateway made. */
  readonly maxMs: number;
}

/** An announcement: which key changed. Its other fields (the block, from older versions) are never read. */
interface Notice {
  readonly kind: BlockKind;
  readonly target: string;
}

function parseNotice(text: string): Notice | undefined {
  try {
    const m = JSON.parse(text) as Record<string, unknown>;
    // Older versions announced an add with the block inside: its kind and target are the notice.
    const named = m.op === 'add' && typeof m.block === 'object' && m.block !== null ? (m.block as Record<string, unknown>) : m;
    const kind = typeof named.kind === 'string' ? named.kind : undefined;
    if ((m.op !== 'add' && m.op !== 'remove') || !isBlockKind(kind) || typeof named.target !== 'string') return undefined;
    return { kind, target: canonicalTarget(kind, named.target, { force: true }) };
  } catch {
    return undefined; // not ours, or no target of its kind
  }
}

const keyOf = (kind: BlockKind, target: string): string => `${KEY_PREFIX}${blockKey(kind, target)}`;

/** A stored value, if it is a live block filed under its own key. */
function storedBlock(key: string, value: string | null, limits: StoreLimits): Block | undefined {
  if (value === null) return undefined;
  let block: Block | undefined;
  try {
    block = parseBlock(JSON.parse(value), limits);
  } catch {
    return undefined;
  }
  return block && block.until > Date.now() && keyOf(block.kind, block.target) === key ? block : undefined;
}

async function scanBlocks(redis: Redis, limits: StoreLimits): Promise<Block[]> {
  const out: Block[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${KEY_PREFIX}*`, 'COUNT', SCAN_COUNT);
    cursor = next;
    if (keys.length === 0) continue;
    const values = await redis.mget(...keys);
    values.forEach((v, i) => {
      const block = storedBlock(keys[i] ?? '', v, limits);
      if (block) out.push(block);
    });
  } while (cursor !== '0');
  return out;
}

/**
 * The Redis store. With `follow` (a gateway), `set` is kept current through `subscription`
 * (which it adds its channel to; the caller starts and closes the subscription); without (the
 * CLI), it only reads and writes.
 */
export function createRedisBlockStore(redis: Redis, limits: StoreLimits, follow?: { set: BlockSet; subscription: RedisSubscription }): BlockStore {
  if (follow) {
    const { set, subscription } = follow;
    // A notice reads its key; the GETs of one connection are answered in the order sent, so the
    // last notice's read is applied last. Notices that arrive while a catch-up reads the keys
    // are read again after it, so an unblock published mid-scan is not undone by a key read
    // just before it was deleted.
    let during: Notice[] | undefined;
    const refresh = async (n: Notice): Promise<void> => {
      const key = keyOf(n.kind, n.target);
      let value: string | null;
      try {
        value = await redis.get(key);
      } catch {
        return; // Redis away: the catch-up of the next (re)subscription reads it
      }
      const block = storedBlock(key, value, limits);
      if (block) set.add(block);
      else set.remove(n.kind, n.target);
    };
    subscription.add(BLOCKS_CHANNEL, {
      message(text) {
        const n = parseNotice(text);
        if (!n) return;
        during?.push(n);
        void refresh(n);
      },
      async catchUp() {
        during = [];
        try {
          const blocks = await scanBlocks(redis, limits);
          set.replace(blocks);
          await Promise.all(during.map(refresh));
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
        // PXAT (Redis >= 6.2): the key ends at the block's own end, not a transaction's latency after it.
        .set(keyOf(block.kind, block.target), JSON.stringify(block), 'PXAT', block.until)
        // The block rides along for gateways of the previous version during a rolling upgrade
        // (they applied it as given); this version reads the key instead.
        .publish(BLOCKS_CHANNEL, JSON.stringify({ op: 'add', kind: block.kind, target: block.target, block }))
        .exec();
      if (!replies) throw new Error('block transaction aborted');
      for (const [err] of replies) if (err) throw err;
      follow?.set.add(block);
    },
    async remove(kind, target) {
      const replies = await redis
        .multi()
        .del(keyOf(kind, target))
        .publish(BLOCKS_CHANNEL, JSON.stringify({ op: 'remove', kind, target }))
        .exec();
      if (!replies) throw new Error('unblock transaction aborted');
      for (const [err] of replies) if (err) throw err;
      follow?.set.remove(kind, target);
      return replies[0]?.[1] === 1;
    },
    list: () => scanBlocks(redis, limits),
    async close() {
      // The subscription belongs to the containment service, which closes it.
    },
  };
}

/** Embedded mode: DATA_DIR/blocks.json, mode 0600, a JSON object of key → block. */
export function createFileBlockStore(dataDir: string, limits: StoreLimits, log: Logger, set?: BlockSet): BlockStore {
  const file = join(dataDir, BLOCKS_FILE);
  const lockFile = `${file}.lock`;
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
      const b = parseBlock(v, { ...limits, now });
      return b && b.until > now ? [b] : [];
    });
  };
  /** Called under the lock only. */
  const write = (blocks: readonly Block[]): void => {
    // Atomic, 0600 from creation, never through a name planted in the folder (O_EXCL, no symlink).
    writeFileAtomic(file, `${JSON.stringify(Object.fromEntries(blocks.map((b) => [blockKey(b.kind, b.target), b])), null, 1)}\n`);
  };
  /** One read-modify-write of the file, with no other writer in between. */
  const update = (change: (blocks: Block[]) => Block[] | undefined): Promise<void> => {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    return withFileLock(lockFile, () => {
      const next = change(read());
      if (next) write(next);
    });
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
    watcher = watchPrivateFile(file, reload);
    timer = setInterval(reload, RELOAD_MS);
    timer.unref();
  }

  return {
    async add(block) {
      await update((blocks) => [...blocks.filter((b) => !(b.kind === block.kind && b.target === block.target)), block]);
      set?.add(block);
    },
    async remove(kind, target) {
      let existed = false;
      await update((blocks) => {
        const rest = blocks.filter((b) => !(b.kind === kind && b.target === target));
        existed = rest.length !== blocks.length;
        return existed ? rest : undefined;
      });
      set?.remove(kind, target);
      return existed;
    },
    list: async () => read().sort((a, b) => a.until - b.until),
    async close() {
      watcher?.close();
      clearInterval(timer);
    },
  };
}
