import type pg from 'pg';
import { migrate } from '../../../stores/migrations.js';
import type { AuditLogger } from '../audit-logger.js';
import { PostgresHeadStore } from '../heads.js';
import { AUDIT_MIGRATIONS } from '../migrations.js';
import type { LoggerParts } from './parts.js';

/** Wait before trying again to create the audit tables when PostgreSQL was unreachable. */
const PG_RETRY_MS = 30_000;

/**
 * With DATABASE_URL: applies the audit migrations (retried every PG_RETRY_MS while PostgreSQL is
 * unreachable), then copies chain heads and security events there.
 */
export async function attachPostgres(p: LoggerParts, logger: AuditLogger, pool: pg.Pool): Promise<void> {
  try {
    await migrate(pool, AUDIT_MIGRATIONS);
  } catch (err) {
    logger.app('error', 'audit tables could not be created; security events and chain heads stay in the files for now (retrying)', { error: (err as Error).message });
    if (!p.closed) setTimeout(() => void logger.attachPostgres(pool), PG_RETRY_MS).unref();
    return;
  }
  const store = new PostgresHeadStore(pool, p.opts.node);
  // Every head recorded so far (this run and earlier ones), so the database knows each file.
  const own = new Set([...p.sinks.values()].map((s) => s.chain));
  const recorded = await p.heads.load().catch(() => []);
  p.heads.attachDatabase(
    store,
    recorded.filter((r) => own.has(r.chain)),
  );
  p.eventsDb.attach(pool);
  await logger.recordHeads();
}
