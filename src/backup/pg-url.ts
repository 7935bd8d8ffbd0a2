import { BackupError } from './errors.js';

/**
 * A PostgreSQL URL split for the tools: pg_dump and pg_restore get it without the password
 * (argv is visible to every user of the machine through ps and /proc), and the password
 * through PGPASSWORD in their environment, which only the same user can read.
 */
export interface PgTarget {
  /** The URL as given, for node-pg in this process. */
  readonly url: string;
  /** The URL without a password, for `--dbname`. */
  readonly libpqUrl: string;
  readonly password: string | undefined;
  /** Database name from the path. */
  readonly database: string;
  /** For messages and logs: user, host, port and database, never the password. */
  readonly display: string;
}

export function pgTarget(url: string, what = 'database URL'): PgTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new BackupError('BACKUP_CONFIG', `the ${what} is not a URL (use postgres://user@host:5432/database)`);
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw new BackupError('BACKUP_CONFIG', `the ${what} must start with postgres:// or postgresql://`);
  const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (!database) throw new BackupError('BACKUP_CONFIG', `the ${what} names no database (postgres://user@host:5432/<database>)`);
  // libpq also takes the password as a query parameter; it leaves argv the same way.
  const password = u.password ? decodeURIComponent(u.password) : (u.searchParams.get('password') ?? undefined);
  const bare = new URL(url);
  bare.password = '';
  bare.searchParams.delete('password');
  const display = `${u.username ? `${decodeURIComponent(u.username)}@` : ''}${u.host}/${database}`;
  return { url, libpqUrl: bare.toString(), password, database, display };
}

/** Seconds libpq waits for a connection: an unreachable host fails instead of hanging. */
export const PG_CONNECT_TIMEOUT_S = 10;

/** Environment for pg_dump / pg_restore: the caller's (PATH, PGSSL*, ~/.pgpass via HOME) plus the password. */
export function pgToolEnv(target: PgTarget, base: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) if (v !== undefined) env[k] = v;
  if (target.password !== undefined) env.PGPASSWORD = target.password;
  env.PGCONNECT_TIMEOUT = String(PG_CONNECT_TIMEOUT_S);
  return env;
}
