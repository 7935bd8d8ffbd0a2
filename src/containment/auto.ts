import type { ContainmentConfig } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import type { IpSet } from '../net/ip.js';
import { normalizeIp } from '../net/ip.js';
import type { BlockSet } from './blocks.js';
import { blockFields, canonicalTarget, type Block } from './model.js';
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
 * audit logger's, src/audit/alerts.ts) blocks its address or user for the rule's time, stored
 * and announced like a block from the CLI and written to the audit log the same way
 * (`containment.blocked`, actor `auto`, the rule and the alert). It never blocks an address in
 * TRUSTED_PROXIES (that would block everyone behind the proxy) or in `containment.neverBlock`
 * (the administrators' own networks), and each rule makes at most `maxPerMinute` blocks a
 * minute, so a flood of alerts (or a forged burst of failures) cannot block half the Internet.
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
    let target: string;
    try {
      target = canonicalTarget(rule.block, raw);
    } catch {
      return;
    }
    if (rule.block === 'ip') {
      const ip = normalizeIp(target);
      const why = ip && this.spared.trustedProxies.has(ip) ? 'TRUSTED_PROXIES' : ip && this.spared.neverBlock.has(ip) ? 'containment.neverBlock' : undefined;
      if (why) {
        this.log.security('containment.auto_skipped', { rule: name, alert: r.alert, kind: 'ip', target, why: `${target} is in ${why}` });
        return;
      }
      if (ip && this.blocks.address(ip)) return;
    } else if (this.blocks.subject(target)) {
      return;
    }
    if (!this.withinBudget(rule, name)) return;
    const now = this.now();
    const block: Block = {
      kind: rule.block,
      target,
      reason: `automatic: ${typeof r.message === 'string' ? r.message : String(r.alert)}`,
      until: now + rule.for,
      createdAt: now,
      by: AUTO_ACTOR,
      source: 'auto',
      rule: name,
    };
    this.store.add(block).then(
      () => this.log.security('containment.blocked', { actor: AUTO_ACTOR, ...blockFields(block), alert: r.alert }),
      (err: Error) => this.log.security('containment.auto_failed', { rule: name, kind: block.kind, target, error: err.message }),
    );
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
