import type pg from 'pg';
import type { GatewayConfig } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import { redactUrl, withTimeout } from './redis.js';

/**
 * The PostgreSQL pool of a process, when DATABASE_URL is set. TLS follows the URL
 * (`sslmode=require` etc.). Queries are always parameterized. `pg` is loaded here, on first
 * use: a gateway without DATABASE_URL never loads it (about 5 MB of RSS; issue 13, item 5).
 */
export async function createPostgres(cfg: GatewayConfig, log: Logger): Promise<pg.Pool | undefined> {
  const url = cfg.stores.databaseUrl;
  if (!url) return undefined;
  const { Pool } = (await import('pg')).default;
  const pool = new Pool({ connectionString: url, max: 10, connectionTimeoutMillis: 3_000, idleTimeoutMillis: 30_000 });
  pool.on('error', (err) => log.security('store.postgres_error', { url: redactUrl(url), error: err.message }));
  pool.once('connect', () => log.security('store.postgres_connected', { url: redactUrl(url) }));
  return pool;
}

/** How often a PostgreSQL known down is asked whether it is back, so its return is reported without traffic. */
export const POSTGRES_PROBE_MS = 1_000;
/** A probe (or a request's lookup) that takes longer counts as unanswered. */
export const POSTGRES_LOOKUP_TIMEOUT_MS = 2_000;

/**
 * Whether PostgreSQL answers, as the queries that need it find out, told the way Redis's state
 * is (src/stores/redis.ts): `store.postgres_lost` once when it stops answering, then
 * `store.postgres_connected` once it answers again. A pool has no connection of its own to
 * watch, so a failed query says it is down (not an idle connection the server ended: one
 * backend terminated is no outage), and while it is down a probe every POSTGRES_PROBE_MS says
 * when it is back, traffic or not.
 */
export class PostgresLiveness {
  private down: { since: number; error: string } | undefined;
  private probe: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly log: Logger,
    private readonly url: string,
    private readonly probeMs = POSTGRES_PROBE_MS,
  ) {}

  /** False from the first failed query until one succeeds. */
  get up(): boolean {
    return this.down === undefined;
  }

  failed(err: unknown): void {
    if (this.closed || this.down) return;
    const error = err instanceof Error ? err.message : String(err);
    this.down = { since: Date.now(), error };
    this.log.security('store.postgres_lost', { url: redactUrl(this.url), error });
    // One probe at a time: against a server that hangs, each would hold a pool connection.
    let asking: Promise<unknown> | undefined;
    this.probe = setInterval(() => {
      if (asking) return;
      const query = this.pool.query('SELECT 1');
      asking = query.finally(() => (asking = undefined)).catch(() => undefined);
      withTimeout(query, POSTGRES_LOOKUP_TIMEOUT_MS).then(
        () => this.succeeded(),
        () => undefined,
      );
    }, this.probeMs);
    this.probe.unref();
  }

  succeeded(): void {
    const down = this.down;
    if (!down) return;
    this.down = undefined;
    clearInterval(this.probe);
    this.probe = undefined;
    if (!this.closed) this.log.security('store.postgres_connected', { url: redactUrl(this.url), downMs: Date.now() - down.since, error: down.error });
  }

  close(): void {
    this.closed = true;
    clearInterval(this.probe);
    this.probe = undefined;
  }
}
