import { isIP } from 'node:net';
import { parseDuration } from '../config/units.js';
import { NAME_PATTERN } from '../auth/store/types.js';
import { OIDC_SUBJECT_PATTERN } from '../auth/oidc/rules.js';
import { canonicalIpv6, normalizeIp } from '../net/ip.js';

/** What a block applies to. */
export const BLOCK_KINDS = ['ip', 'cidr', 'user', 'client', 'route'] as const;
export type BlockKind = (typeof BLOCK_KINDS)[number];

/**
 * One block: who or what is refused, until when, why, and who said so. The same record is
 * stored (Redis value or file entry), announced, listed and written to the audit log.
 */
export interface Block {
  readonly kind: BlockKind;
  /** Canonical form: an address as the client-IP resolver gives it, `addr/prefix`, a name. */
  readonly target: string;
  readonly reason: string;
  /** Milliseconds since the epoch; the block is gone from then on, with or without a command. */
  readonly until: number;
  readonly createdAt: number;
  /** The operating-system user who ran the command, or `auto` for automatic containment. */
  readonly by: string;
  readonly source: 'manual' | 'auto';
  /** The automatic rule that made it (`failed_logins_ip -> ip for 15m`). */
  readonly rule?: string | undefined;
}

/**
 * The widest CIDR accepted without --force: a /7 of IPv4 is 1/128 of the Internet, and an
 * IPv6 /31 more than every allocation a regional registry hands out. Wider is almost always a
 * typo (`10.0.0.0/1` for `/16`) that would lock out customers and operators alike.
 */
export const WIDEST_CIDR = { ipv4: 8, ipv6: 32 } as const;
/** A reason is for people reading the audit log: one line, bounded. */
export const MAX_REASON_LENGTH = 500;

/**
 * What must never reach a terminal or a log reader from a reason: C0/C1 controls (ESC starts
 * terminal escape sequences, BEL, CR rewrites the line), format characters (U+202E turns the
 * rest of the line around, zero-width ones hide text) and the Unicode line separators.
 */
export const UNPRINTABLE = /[\p{Cc}\p{Cf}\u2028\u2029]/u;
const UNPRINTABLE_ALL = new RegExp(UNPRINTABLE.source, 'gu');

/** `text` with every UNPRINTABLE character written as `\uXXXX` (UTF-16 units), for output to a terminal. */
export function escapeUnprintable(text: string): string {
  return text.replace(UNPRINTABLE_ALL, (c) => {
    let out = '';
    for (let i = 0; i < c.length; i++) out += `\\u${c.charCodeAt(i).toString(16).padStart(4, '0')}`;
    return out;
  });
}

/**
 * Tolerance for the clocks of the hosts sharing a store: a block made with the longest
 * duration on a host whose clock runs a little ahead is not dropped as too long elsewhere.
 */
const CLOCK_SKEW_MS = 60_000;

/** A block that cannot be made: the one line the CLI prints (exit 2). */
export class BlockInputError extends Error {
  override readonly name = 'BlockInputError';
}

export function isBlockKind(v: string | undefined): v is BlockKind {
  return (BLOCK_KINDS as readonly string[]).includes(v ?? '');
}

/** The key of a block in every store: one block per kind and target. */
export function blockKey(kind: BlockKind, target: string): string {
  return `${kind}:${target}`;
}

/**
 * `raw` in the canonical form of `kind`, or BlockInputError. An address takes the resolver's
 * form (IPv4-mapped IPv6 as IPv4, IPv6 lower case) so a block matches whatever spelling the
 * operator copied; a CIDR keeps its network address (host bits must be zero: `10.1.2.3/8` is
 * a typo, not a network).
 */
export function canonicalTarget(kind: BlockKind, raw: string, opts: { force?: boolean } = {}): string {
  const text = raw.trim();
  switch (kind) {
    case 'ip': {
      const ip = text.includes('/') ? undefined : normalizeIp(text);
      if (!ip) throw new BlockInputError(`not an IP address: ${JSON.stringify(raw)} (for a network use block cidr)`);
      return ip.address;
    }
    case 'cidr':
      return canonicalCidr(text, opts.force === true);
    case 'user':
    case 'client':
      // A person an identity provider signed in is `oidc:<tag>:<sub>` (src/auth/oidc/rules.ts).
      if (!NAME_PATTERN.test(text) && !(kind === 'user' && OIDC_SUBJECT_PATTERN.test(text))) throw new BlockInputError(`not a ${kind} name: ${JSON.stringify(raw)} (letters, digits, . _ @ -, at most 64)`);
      return text;
    case 'route':
      // The route names the config accepts (src/config/schema.ts).
      if (!/^[a-z0-9][a-z0-9_-]{0,62}$/.test(text)) throw new BlockInputError(`not a route name: ${JSON.stringify(raw)}`);
      return text;
  }
}

function canonicalCidr(text: string, force: boolean): string {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(text);
  const ip = m ? normalizeIp(m[1]) : undefined;
  if (!m || !ip) throw new BlockInputError(`not a CIDR: ${JSON.stringify(text)} (use e.g. 203.0.113.0/24 or 2001:db8::/48)`);
  let prefix = Number(m[2]);
  // `::ffff:10.0.0.0/104` names the IPv4 network 10.0.0.0/8, as normalizeIp names its address.
  if (ip.family === 'ipv4' && isIP(m[1] ?? '') === 6) prefix -= 96;
  const max = ip.family === 'ipv4' ? 32 : 128;
  if (prefix < 0 || prefix > max) throw new BlockInputError(`prefix /${m[2]} out of range for ${ip.family === 'ipv4' ? 'IPv4' : 'IPv6'} (0-${max})`);
  const widest = WIDEST_CIDR[ip.family];
  if (prefix < widest && !force) {
    throw new BlockInputError(`${text} is wider than /${widest}: it would block ${ip.family === 'ipv4' ? `${2 ** (32 - prefix)} addresses` : 'more than a registry allocation'}; add --force if that is meant`);
  }
  const network = networkAddress(ip.address, ip.family, prefix);
  const given = ip.address;
  if (network !== given) throw new BlockInputError(`${text} has host bits set: the network is ${network}/${prefix}`);
  return `${network}/${prefix}`;
}

/** The address with every bit past `prefix` cleared, in normal form. */
function networkAddress(address: string, family: 'ipv4' | 'ipv6', prefix: number): string {
  const bits = family === 'ipv4' ? 32 : 128;
  const value = family === 'ipv4' ? address.split('.').reduce((n, o) => (n << 8n) | BigInt(Number(o)), 0n) : ipv6ToBigInt(address);
  const mask = prefix === 0 ? 0n : ((1n << BigInt(prefix)) - 1n) << BigInt(bits - prefix);
  const net = value & mask;
  if (family === 'ipv4') return [24n, 16n, 8n, 0n].map((s) => String((net >> s) & 255n)).join('.');
  const groups: string[] = [];
  for (let i = 7; i >= 0; i--) groups.push(((net >> BigInt(i * 16)) & 0xffffn).toString(16));
  return canonicalIpv6(groups.join(':'));
}

function ipv6ToBigInt(address: string): bigint {
  const [head = '', tail] = address.split('::');
  const part = (s: string): string[] => (s === '' ? [] : s.split(':'));
  let h = part(head);
  let t = tail === undefined ? [] : part(tail);
  // An embedded IPv4 tail (`::ffff:1.2.3.4` already became IPv4; `64:ff9b::1.2.3.4` did not).
  const v4 = (list: string[]): string[] => {
    const last = list.at(-1);
    if (!last?.includes('.')) return list;
    const o = last.split('.').map(Number);
    return [...list.slice(0, -1), (((o[0] ?? 0) << 8) | (o[1] ?? 0)).toString(16), (((o[2] ?? 0) << 8) | (o[3] ?? 0)).toString(16)];
  };
  if (tail === undefined) h = v4(h);
  else t = v4(t);
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((n, g) => (n << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/** `--for`: a duration such as 30m, 12h or 7d, more than zero and at most `maxMs`. */
export function blockDuration(raw: string | undefined, maxMs: number): number {
  if (raw === undefined) throw new BlockInputError('--for is required: how long, e.g. 30m, 12h or 7d');
  const ms = /^\s*\d/.test(raw) ? parseDuration(raw) : undefined;
  if (ms === undefined || !/[a-z]\s*$/i.test(raw)) throw new BlockInputError(`--for ${JSON.stringify(raw)} is not a duration (use e.g. 30m, 12h or 7d)`);
  if (ms < 1_000) throw new BlockInputError(`--for ${raw} is shorter than a second`);
  if (ms > maxMs) throw new BlockInputError(`--for ${raw} is longer than the longest block (${Math.round(maxMs / 86_400_000)}d; containment.maxDuration)`);
  return ms;
}

/** `--reason` (and an automatic block's reason): one non-empty line of printable text, kept for the audit log. */
export function blockReason(raw: string | undefined): string {
  const reason = raw?.trim() ?? '';
  if (reason === '') throw new BlockInputError('--reason is required: say why, for whoever reads the audit log');
  if (reason.length > MAX_REASON_LENGTH) throw new BlockInputError(`--reason is longer than ${MAX_REASON_LENGTH} characters`);
  if (UNPRINTABLE.test(reason)) throw new BlockInputError('--reason must be one line without control, format or line-separator characters');
  return reason;
}

/**
 * A block as read back from a store: anything else is ignored, never trusted. A block that
 * would last beyond `maxMs` from `now` (containment.maxDuration) is dropped too: neither the
 * CLI nor a rule makes one, so it was written by someone else (and would outlive every review).
 * Wide networks are accepted (`force`): the CLI stores them with --force.
 */
export function parseBlock(value: unknown, limits: { readonly maxMs: number; readonly now?: number }): Block | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (typeof v.kind !== 'string' || !isBlockKind(v.kind) || typeof v.target !== 'string') return undefined;
  if (typeof v.until !== 'number' || !Number.isFinite(v.until)) return undefined;
  if (v.until > (limits.now ?? Date.now()) + limits.maxMs + CLOCK_SKEW_MS) return undefined;
  let target: string;
  try {
    target = canonicalTarget(v.kind, v.target, { force: true });
  } catch {
    return undefined;
  }
  return {
    kind: v.kind,
    target,
    reason: typeof v.reason === 'string' ? v.reason : '',
    until: v.until,
    createdAt: typeof v.createdAt === 'number' ? v.createdAt : 0,
    by: typeof v.by === 'string' ? v.by : 'unknown',
    source: v.source === 'auto' ? 'auto' : 'manual',
    rule: typeof v.rule === 'string' ? v.rule : undefined,
  };
}

/** A block as `blockFields` gives it: the `containment.blocked` event's fields (src/log/events.ts). */
export interface BlockFields {
  readonly kind: BlockKind;
  readonly target: string;
  readonly reason: string;
  readonly until: string;
  readonly createdAt: string;
  readonly by: string;
  readonly source: Block['source'];
  readonly rule?: string;
}

/** The fields of a block in audit events and `block list --json` (times as ISO strings). */
export function blockFields(b: Block): BlockFields {
  return {
    kind: b.kind,
    target: b.target,
    reason: b.reason,
    until: new Date(b.until).toISOString(),
    createdAt: new Date(b.createdAt).toISOString(),
    by: b.by,
    source: b.source,
    ...(b.rule ? { rule: b.rule } : {}),
  };
}
