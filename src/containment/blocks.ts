import { BlockList } from 'node:net';
import type { ParsedIp } from '../net/ip.js';
import { CLIENT_SUBJECT_PREFIX } from '../auth/store/types.js';
import { blockKey, type Block, type BlockKind } from './model.js';

interface NetworkBlock {
  readonly block: Block;
  readonly list: BlockList;
}

/**
 * The blocks this process enforces, in memory so a request never waits on the network for
 * them. Kept current by the store (src/containment/store.ts): announcements and catch-ups with
 * Redis, the watched file without. A block past its `until` is treated as gone at once, at
 * every lookup, whether or not the store has dropped it yet.
 */
export class BlockSet {
  private readonly byKey = new Map<string, Block>();
  private networks: NetworkBlock[] = [];
  private readonly listeners: ((b: Block) => void)[] = [];

  constructor(private readonly now: () => number = Date.now) {}

  /** Adds or replaces one block; listeners hear of it when it is new or changed. */
  add(block: Block): void {
    const key = blockKey(block.kind, block.target);
    const old = this.byKey.get(key);
    this.byKey.set(key, block);
    if (block.kind === 'cidr') this.rebuildNetworks();
    if (!old || old.until !== block.until || old.createdAt !== block.createdAt) this.announce(block);
  }

  remove(kind: BlockKind, target: string): void {
    if (this.byKey.delete(blockKey(kind, target)) && kind === 'cidr') this.rebuildNetworks();
  }

  /** Everything held is replaced by `blocks` (a catch-up, a file read): what is new is announced. */
  replace(blocks: readonly Block[]): void {
    const before = new Map(this.byKey);
    this.byKey.clear();
    for (const b of blocks) this.byKey.set(blockKey(b.kind, b.target), b);
    this.rebuildNetworks();
    for (const b of blocks) {
      const old = before.get(blockKey(b.kind, b.target));
      if (!old || old.until !== b.until || old.createdAt !== b.createdAt) this.announce(b);
    }
  }

  /** Called with every block learnt (added here, announced, read back), e.g. to close websockets. */
  onAdded(listener: (b: Block) => void): void {
    this.listeners.push(listener);
  }

  /** The block of this client address: its own, else the narrowest network holding it. */
  address(ip: ParsedIp): Block | undefined {
    const own = this.live(blockKey('ip', ip.address));
    if (own) return own;
    let found: Block | undefined;
    const now = this.now();
    for (const n of this.networks) {
      if (n.block.until <= now || !n.list.check(ip.address, ip.family)) continue;
      if (!found || prefixOf(n.block) > prefixOf(found)) found = n.block;
    }
    return found;
  }

  route(name: string): Block | undefined {
    return this.live(blockKey('route', name));
  }

  /** The block of a principal's subject: a user by name, an API client by its `client:` subject. */
  subject(subject: string): Block | undefined {
    return subject.startsWith(CLIENT_SUBJECT_PREFIX) ? this.live(blockKey('client', subject.slice(CLIENT_SUBJECT_PREFIX.length))) : this.live(blockKey('user', subject));
  }

  /** Blocks in force now, soonest to end first. */
  active(): Block[] {
    const now = this.now();
    return [...this.byKey.values()].filter((b) => b.until > now).sort((a, b) => a.until - b.until);
  }

  get size(): number {
    return this.byKey.size;
  }

  private live(key: string): Block | undefined {
    const b = this.byKey.get(key);
    if (!b) return undefined;
    if (b.until > this.now()) return b;
    this.byKey.delete(key);
    if (b.kind === 'cidr') this.rebuildNetworks();
    return undefined;
  }

  private rebuildNetworks(): void {
    this.networks = [...this.byKey.values()]
      .filter((b) => b.kind === 'cidr')
      .map((block) => {
        const [address = '', prefix = '0'] = block.target.split('/');
        const list = new BlockList();
        list.addSubnet(address, Number(prefix), address.includes(':') ? 'ipv6' : 'ipv4');
        return { block, list };
      });
  }

  private announce(b: Block): void {
    if (b.until <= this.now()) return;
    for (const l of this.listeners) l(b);
  }
}

function prefixOf(b: Block): number {
  return Number(b.target.split('/')[1] ?? 0);
}
