import type pg from 'pg';
import type { GatewayConfig } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import { redactUrl } from './redis.js';

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
