import { BlockList } from 'node:net';
import type { ContainmentConfig } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import type { IpSet, ParsedIp } from '../net/ip.js';
import { normalizeIp } from '../net/ip.js';
import { ALERT_IPV6_PREFIX } from '../audit/alerts/rules.js';
import { ipGroup } from '../ratelimit/keys.js';
import type { BlockSet } from './blocks.js';
import { blockFields, blockReason, canonicalTarget, type Block } from './model.js';
import type { BlockStore } from './store.js';

type Rule = ContainmentConfig['rules'][number];

/** The actor of automatic blocks in the audit log and in `block list`. */
export const AUTO_ACTOR = 'auto';
const MINUTE_MS = 60_000;

/** `15m`, `2h`, `1d`: a rule's duration as the config would say it. */
export function shortDuration(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1_000]] as const) if (ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}

export function ruleName(r: Rule): string {
  return `${r.on} -> ${r.block} for ${shortDuration(r.for)}`;
}

/**
 * Automatic containment (opt-in, `containment.rules`): an alert of a configured type (the
 * audit logger's, src/audit/alerts/rules.ts) blocks its address or user for the rule's time, stored
 * and announced like a block from the CLI and written to the audit log the same way
 * (`containment.blocked`, actor `auto`, the rule and the alert). Which alert may block what is
 * checked at startup (src/config/schema.ts): a block falls on whoever caused the alert, never
 * on a name or address an attacker can choose. An IPv6 offender is blocked as its /64 (the
 * alerts count it so: one host holds the whole /64). It never blocks an address or network
 * that holds or touches TRUSTED_PROXIES (that would block everyone behind the proxy) or
 * `containment.neverBlock` (the administrators' own networks), and each rule makes at most
 * `maxPerMinute` blocks a minute, so a flood of alerts (or a forged burst of failures) cannot
 * block half the Internet. The reason is built from the rule, the alert type, its count and
 * the target, never from the alert's message (which may quote what a client typed).
 */
export class AutoContainment {
  private readonly made = new Map<Rule, number[]>();
  private readonly suppressedAt = new Map<Rule, number>();

  constructor(
    private readonly rules: readonly Rule[],
    private readonly spared: { readonly trustedProxies: IpSet; readonly neverBlock: IpSet },
    private readonly store: BlockStore,
    private readonly blocks: BlockSet,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** A security record of the audit log (after redaction); only `alert.*` events matter. */
  security(r: Record<string, unknown>): void {
    const event = typeof r.event === 'string' ? r.event : '';
    if (!event.startsWith('alert.')) return;
    const alert = event.slice('alert.'.length);
    for (const rule of this.rules) if (rule.on === alert) this.apply(rule, r);
  }

  private apply(rule: Rule, r: Record<string, unknown>): void {
    const raw = rule.block === 'ip' ? r.clientIp : r.user;
    if (typeof raw !== 'string' || raw === '') return;
    const name = ruleName(rule);
    // An IPv6 offender's block is its /64 (cidr).
    let kind: 'ip' | 'cidr' | 'user' = rule.block;
    let target: string;
    try {
      if (rule.block === 'ip') {
        const ip = normalizeIp(raw);
        if (!ip) return;
        if (ip.family === 'ipv6') kind = 'cidr';
        target = ip.family === 'ipv6' ? canonicalTarget('cidr', ipGroup(ip, ALERT_IPV6_PREFIX)) : canonicalTarget('ip', ip.address);
      } else {
        target = canonicalTarget(rule.block, raw);
      }
    } catch {
      return;
    }
    if (kind === 'user') {
      if (this.blocks.subject(target)) return;
    } else {
      const why = this.sparedBy(kind, target);
      if (why) {
        this.log.security('containment.auto_skipped', { rule: name, alert: rule.on, kind, target, why: `${target} ${kind === 'cidr' ? 'overlaps' : 'is in'} ${why}` });
        return;
      }
      if (this.alreadyBlocked(kind, target)) return;
    }
    if (!this.withinBudget(rule, name)) return;
    const now = this.now();
    let reason: string;
    try {
      reason = blockReason(`automatic: alert ${rule.on}${counted(r)} for ${kind} ${target}`);
    } catch {
      return;
    }
    const block: Block = { kind, target, reason, until: now + rule.for, createdAt: now, by: AUTO_ACTOR, source: 'auto', rule: name };
    this.store.add(block).then(
      () => this.log.security('containment.blocked', { actor: AUTO_ACTOR, ...blockFields(block), alert: rule.on }),
      (err: Error) => this.log.security('containment.auto_failed', { rule: name, kind: block.kind, target, error: err.message }),
    );
  }

  /** Which protected list an address (or any address of a network) is in, if any. */
  private sparedBy(kind: 'ip' | 'cidr', target: string): string | undefined {
    const touches = (set: IpSet): boolean => {
      if (kind === 'ip') {
        const ip = normalizeIp(target);
        return ip === undefined || set.has(ip);
      }
      return overlaps(set, target);
    };
    if (touches(this.spared.trustedProxies)) return 'TRUSTED_PROXIES';
    if (touches(this.spared.neverBlock)) return 'containment.neverBlock';
    return undefined;
  }

  /** True when the address, or the whole network, is blocked already. */
  private alreadyBlocked(kind: 'ip' | 'cidr', target: string): boolean {
    const [address = '', prefix] = target.split('/');
    const ip = normalizeIp(address);
    const held = ip ? this.blocks.address(ip) : undefined;
    if (!held) return false;
    if (kind === 'ip') return true;
    return held.kind === 'cidr' && Number(held.target.split('/')[1]) <= Number(prefix);
  }

  /** At most `maxPerMinute` blocks per rule in any minute; the first refusal of a minute is logged. */
  private withinBudget(rule: Rule, name: string): boolean {
    const now = this.now();
    const recent = (this.made.get(rule) ?? []).filter((t) => t > now - MINUTE_MS);
    if (recent.length >= rule.maxPerMinute) {
      this.made.set(rule, recent);
      const last = this.suppressedAt.get(rule);
      if (last === undefined || now - last >= MINUTE_MS) {
        this.suppressedAt.set(rule, now);
        this.log.security('containment.auto_suppressed', { rule: name, maxPerMinute: rule.maxPerMinute, message: `rule ${name} made ${rule.maxPerMinute} blocks within a minute; further alerts are not turned into blocks until the minute has passed` });
      }
      return false;
    }
    recent.push(now);
    this.made.set(rule, recent);
    return true;
  }
}

/** ` (20 within 10m)` from the alert's count and window, when they are numbers. */
function counted(r: Record<string, unknown>): string {
  const n = r.count;
  const w = r.windowMs;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n <= 0) return '';
  return typeof w === 'number' && Number.isSafeInteger(w) && w > 0 ? ` (${n} within ${shortDuration(w)})` : ` (${n})`;
}

/** True when `network` (`addr/prefix`) and any entry of `set` share an address. */
function overlaps(set: IpSet, network: string): boolean {
  const [address = '', prefix = ''] = network.split('/');
  const net = normalizeIp(address);
  if (!net) return true; // not understood: spared rather than blocked
  // An entry holding the network's first address holds it (or lies inside it).
  if (set.has(net)) return true;
  // Otherwise an entry overlaps only if it lies inside the network: its own address is in it.
  const list = new BlockList();
  list.addSubnet(net.address, Number(prefix), net.family);
  return set.entries.some((entry) => {
    const first: ParsedIp | undefined = normalizeIp(entry.trim().split('/')[0]);
    return first !== undefined && first.family === net.family && list.check(first.address, first.family);
  });
}
