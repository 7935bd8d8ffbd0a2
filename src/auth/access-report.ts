import type { LogActivity } from '../audit/offline/access-activity.js';
import { printable } from '../audit/redact/printable.js';
import { ADMIN_ROLE } from '../admin/signin.js';
import { CLIENT_SUBJECT_PREFIX, type ClientRecord, type UserRecord } from './store/types.js';

/** The review period the architecture asks for: quarterly. */
export const DEFAULT_REVIEW_DAYS = 90;
const DAY_MS = 86_400_000;

/**
 * Sign-in factors a user can have: the password, and the second factors of src/auth/mfa/ (TOTP,
 * passkeys; recovery codes come with either and are not listed). Admins with one are not flagged.
 */
export type Factor = 'password' | 'totp' | 'passkey';
const FACTORS_AVAILABLE: readonly Factor[] = ['password', 'totp', 'passkey'];

export type Flag = 'unused' | 'admin_without_second_factor' | 'never_used';

export interface UserAccess {
  readonly name: string;
  readonly roles: readonly string[];
  readonly disabled: boolean;
  readonly factors: readonly Factor[];
  readonly createdAt: string;
  readonly lastSignIn: string | null;
  /** Last request in the logs read (a session outlives its sign-in). */
  readonly lastSeen: string | null;
  readonly flags: readonly Flag[];
}

export interface LiveToken {
  readonly tokenId: string;
  readonly client: string;
  readonly roles: readonly string[];
  readonly via: string;
  readonly issuedAt: string;
  readonly expiresAt: string;
  readonly lastUse: string | null;
}

export interface ClientAccess {
  readonly name: string;
  readonly roles: readonly string[];
  readonly disabled: boolean;
  readonly createdAt: string;
  /** Last request or token issue in the logs read. */
  readonly lastUse: string | null;
  readonly liveTokens: number;
  readonly flags: readonly Flag[];
}

export interface AccessReport {
  readonly generatedAt: string;
  readonly days: number;
  readonly store: 'postgres' | 'file';
  /** What the report could see: activity older than `logsFrom` is unknown. */
  readonly logs: { readonly dir: string; readonly from: string | null; readonly files: number; readonly unreadable: readonly string[] };
  readonly factorsAvailable: readonly Factor[];
  readonly users: readonly UserAccess[];
  readonly clients: readonly ClientAccess[];
  readonly liveTokens: readonly LiveToken[];
  readonly summary: { readonly users: number; readonly clients: number; readonly liveTokens: number; readonly flagged: number };
}

export interface AccessInputs {
  readonly users: readonly UserRecord[];
  readonly clients: readonly ClientRecord[];
  readonly activity: LogActivity;
  /** Whether a token is revoked now (the gateway's revocation list). */
  readonly isRevoked: (tokenId: string) => boolean | Promise<boolean>;
  readonly store: 'postgres' | 'file';
  readonly logDir: string;
  readonly now: Date;
  readonly days: number;
  /** A user's second factors (the factor store); absent: none known. */
  readonly secondFactors?: (user: string) => Promise<readonly ('totp' | 'passkey')[]>;
}

const iso = (d: Date | undefined): string | null => (d ? d.toISOString() : null);
const latest = (...ds: (Date | undefined)[]): Date | undefined => ds.filter((d): d is Date => d !== undefined).sort((a, b) => b.getTime() - a.getTime())[0];

/**
 * An account is unused when nothing shows it active within the period: neither a sign-in nor
 * a request (or, for clients, a token issued). One created within the period and never used is
 * `never_used`, not yet `unused`. Disabled accounts are listed but not flagged: they are off.
 */
function usageFlag(disabled: boolean, lastActive: Date | undefined, createdAt: Date, cutoff: Date): Flag[] {
  if (disabled) return [];
  if (lastActive) return lastActive < cutoff ? ['unused'] : [];
  return createdAt < cutoff ? ['unused'] : ['never_used'];
}

/** The quarterly access review: who can get in, how, and who has not for `days`. */
export async function buildAccessReport(i: AccessInputs): Promise<AccessReport> {
  const cutoff = new Date(i.now.getTime() - i.days * DAY_MS);
  const second = new Map<string, readonly ('totp' | 'passkey')[]>();
  for (const u of i.users) second.set(u.name, (await i.secondFactors?.(u.name)) ?? []);
  const users: UserAccess[] = i.users
    .map((u) => {
      const factors: Factor[] = ['password', ...(second.get(u.name) ?? [])];
      const lastSeen = i.activity.lastSeen.get(u.name);
      const flags = usageFlag(u.disabled, latest(u.lastLoginAt, lastSeen), u.createdAt, cutoff);
      if (!u.disabled && u.roles.includes(ADMIN_ROLE) && factors.length < 2) flags.push('admin_without_second_factor');
      return { name: u.name, roles: u.roles, disabled: u.disabled, factors, createdAt: u.createdAt.toISOString(), lastSignIn: iso(u.lastLoginAt), lastSeen: iso(lastSeen), flags };
    })
    .sort((a, b) => a.name.localeCompare(b.name));

  const live: LiveToken[] = [];
  for (const t of i.activity.tokens) {
    if (t.expiresAt <= i.now || i.activity.revoked.has(t.tokenId) || (await i.isRevoked(t.tokenId))) continue;
    live.push({ tokenId: t.tokenId, client: t.client, roles: t.roles, via: t.via, issuedAt: t.issuedAt.toISOString(), expiresAt: t.expiresAt.toISOString(), lastUse: iso(i.activity.tokenLastUse.get(t.tokenId)) });
  }
  live.sort((a, b) => a.client.localeCompare(b.client) || a.issuedAt.localeCompare(b.issuedAt));

  const issuedLast = new Map<string, Date>();
  for (const t of i.activity.tokens) if (!issuedLast.has(t.client) || (issuedLast.get(t.client) as Date) < t.issuedAt) issuedLast.set(t.client, t.issuedAt);
  const clients: ClientAccess[] = i.clients
    .map((c) => {
      const lastUse = latest(i.activity.lastSeen.get(`${CLIENT_SUBJECT_PREFIX}${c.name}`), issuedLast.get(c.name));
      return {
        name: c.name,
        roles: c.roles,
        disabled: c.disabled,
        createdAt: c.createdAt.toISOString(),
        lastUse: iso(lastUse),
        liveTokens: live.filter((t) => t.client === c.name).length,
        flags: usageFlag(c.disabled, lastUse, c.createdAt, cutoff),
      };
    })
    .sort((a, b) => a.name.localeCompare(b.name));

  const flagged = [...users, ...clients].filter((x) => x.flags.some((f) => f !== 'never_used')).length;
  return {
    generatedAt: i.now.toISOString(),
    days: i.days,
    store: i.store,
    logs: { dir: i.logDir, from: i.activity.firstDay ?? null, files: i.activity.filesRead, unreadable: i.activity.unreadableFiles },
    factorsAvailable: FACTORS_AVAILABLE,
    users,
    clients,
    liveTokens: live,
    summary: { users: users.length, clients: clients.length, liveTokens: live.length, flagged },
  };
}

const FLAG_TEXT: Readonly<Record<Flag, (days: number) => string>> = {
  unused: (d) => `UNUSED ${d}d`,
  never_used: () => 'never used',
  admin_without_second_factor: () => 'ADMIN WITHOUT SECOND FACTOR',
};

const periodStart = (r: AccessReport): string => new Date(Date.parse(r.generatedAt) - r.days * DAY_MS).toISOString().slice(0, 10);
const when = (t: string | null): string => (t ? t.replace(/\.\d{3}Z$/, 'Z') : 'never');

export function formatAccessReport(r: AccessReport): string {
  const flags = (fs: readonly Flag[]): string => (fs.length > 0 ? `  [${fs.map((f) => FLAG_TEXT[f](r.days)).join(', ')}]` : '');
  const lines = [
    `crm-gateway access review, ${when(r.generatedAt)} (period ${r.days} days; ${r.store === 'postgres' ? 'PostgreSQL' : 'embedded file'} store)`,
    `activity from the logs in ${r.logs.dir}: ${r.logs.from ? `since ${r.logs.from} (${r.logs.files} files)` : 'no log files: last use is known only from the sign-in the store records'}`,
    ...(r.logs.from && r.logs.from > periodStart(r) ? [`note: the logs start after the period does (${periodStart(r)}): use before ${r.logs.from} is not seen (LOG_RETENTION_DAYS)`] : []),
    `sign-in factors: password, then a second factor: ${r.users.filter((u) => u.factors.length > 1).length} of ${r.users.length} users have TOTP or a passkey`,
    '',
    `users (${r.users.length}):`,
    ...(r.users.length > 0
      ? r.users.map((u) => `  ${u.name}  roles ${u.roles.join(',') || '-'}  ${u.disabled ? 'disabled' : 'enabled'}  factors ${u.factors.join('+')}  last sign-in ${when(u.lastSignIn)}  last seen ${when(u.lastSeen)}${flags(u.flags)}`)
      : ['  (none)']),
    '',
    `API clients (${r.clients.length}):`,
    ...(r.clients.length > 0
      ? r.clients.map((c) => `  ${c.name}  roles ${c.roles.join(',') || '-'}  ${c.disabled ? 'disabled' : 'enabled'}  last use ${when(c.lastUse)}  live tokens ${c.liveTokens}${flags(c.flags)}`)
      : ['  (none)']),
    '',
    `live tokens (${r.liveTokens.length}):`,
    ...(r.liveTokens.length > 0
      ? r.liveTokens.map((t) => `  ${t.tokenId}  client ${t.client}  roles ${t.roles.join(',') || '-'}  issued ${when(t.issuedAt)} (${t.via})  expires ${when(t.expiresAt)}  last use ${when(t.lastUse)}`)
      : ['  (none)']),
    '',
    `${r.summary.flagged} flagged: accounts and clients unused for ${r.days} days, admins without a second factor`,
  ];
  if (r.logs.unreadable.length > 0) lines.push(`WARNING: unreadable or truncated log files: ${r.logs.unreadable.join(', ')}`);
  // Names come from operators and clients: escaped so each stays on its own line.
  return `${lines.map(printable).join('\n')}\n`;
}
