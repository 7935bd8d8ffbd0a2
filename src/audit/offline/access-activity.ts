import { listLogFiles, readLogLines } from '../writer/files.js';
import type { SecurityEvent } from '../../log/events.js';

/** A bearer token an API client was given, as the security log recorded its issue. */
export interface IssuedToken {
  readonly tokenId: string;
  readonly client: string;
  readonly roles: readonly string[];
  readonly issuedAt: Date;
  readonly expiresAt: Date;
  /** `cli` (tokens issue) or `client_credentials` (POST /auth/token). */
  readonly via: string;
}

/** What the logs say about who used the gateway since a day. */
export interface LogActivity {
  /** Last request of each principal (`alice`, `client:reports`), from the access log. */
  readonly lastSeen: ReadonlyMap<string, Date>;
  /** Last request made with each token. */
  readonly tokenLastUse: ReadonlyMap<string, Date>;
  readonly tokens: readonly IssuedToken[];
  /** Tokens the logs show revoked (`admin.token_revoked`). */
  readonly revoked: ReadonlySet<string>;
  /** The first day of log files read (undefined: none): activity before it is not known. */
  readonly firstDay: string | undefined;
  readonly filesRead: number;
  readonly unreadableFiles: readonly string[];
}

const later = (m: Map<string, Date>, key: string, t: Date): void => {
  const seen = m.get(key);
  if (!seen || seen < t) m.set(key, t);
};

/**
 * Reads the access and security logs of every chain (gateway, workers, CLI; gzipped too) from
 * `sinceDay` (YYYY-MM-DD, UTC) on, streaming. Only lines that can matter are parsed: the access
 * lines of an authenticated principal and the token events.
 */
export async function collectLogActivity(dir: string, sinceDay: string): Promise<LogActivity> {
  const lastSeen = new Map<string, Date>();
  const tokenLastUse = new Map<string, Date>();
  const tokens = new Map<string, IssuedToken>();
  const revoked = new Set<string>();
  const unreadable: string[] = [];
  let firstDay: string | undefined;
  let filesRead = 0;
  for (const files of listLogFiles(dir).values()) {
    for (const f of files) {
      if (f.day < sinceDay || (f.stream !== 'access' && f.stream !== 'security')) continue;
      filesRead++;
      if (firstDay === undefined || f.day < firstDay) firstDay = f.day;
      const result = await readLogLines(f.path, f.gzipped, (text) => {
        if (f.stream === 'access' ? !text.includes('"user":') : !text.includes('token_')) return;
        let r: Record<string, unknown>;
        try {
          r = JSON.parse(text) as Record<string, unknown>;
        } catch {
          return;
        }
        const time = typeof r.time === 'string' ? new Date(r.time) : undefined;
        if (!time || Number.isNaN(time.getTime())) return;
        if (f.stream === 'access') {
          if (typeof r.user === 'string') later(lastSeen, r.user, time);
          if (typeof r.tokenId === 'string') later(tokenLastUse, r.tokenId, time);
          return;
        }
        if ((r.event === ('admin.token_issued' satisfies SecurityEvent) || r.event === ('auth.token_issued' satisfies SecurityEvent)) && typeof r.tokenId === 'string' && typeof r.client === 'string') {
          const expiresAt = new Date(String(r.expiresAt));
          if (Number.isNaN(expiresAt.getTime())) return;
          tokens.set(r.tokenId, {
            tokenId: r.tokenId,
            client: r.client,
            roles: Array.isArray(r.roles) ? r.roles.map(String) : [],
            issuedAt: time,
            expiresAt,
            via: r.event === ('admin.token_issued' satisfies SecurityEvent) ? 'cli' : String(r.via ?? 'client_credentials'),
          });
        } else if (r.event === ('admin.token_revoked' satisfies SecurityEvent) && typeof r.tokenId === 'string') revoked.add(r.tokenId);
      });
      if (result.truncated || result.error) unreadable.push(f.name);
    }
  }
  return { lastSeen, tokenLastUse, tokens: [...tokens.values()], revoked, firstDay, filesRead, unreadableFiles: unreadable };
}
