import pg from 'pg';
import { BackupError } from './errors.js';
import type { TableCount } from './manifest.js';
import { PG_CONNECT_TIMEOUT_S, type PgTarget } from './pg-url.js';

/** Longest wait for a table lock (a migration holding one): fail the run rather than hang. */
export const LOCK_WAIT_TIMEOUT = '5min';
const APPLICATION_NAME = 'crm-gateway backup';

/**
 * The user tables pg_dump writes data for: ordinary tables and partitions (a partitioned parent
 * holds no rows itself), not temporary ones, not those an extension owns (pg_dump leaves those
 * to the extension), outside the system schemas.
 */
export const USER_TABLES_SQL = `
SELECT n.nspname AS schema, c.relname AS name
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND c.relpersistence <> 't'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1, 2`;

/** Connects, or fails with BACKUP_DB_UNREACHABLE naming where (never the password). */
export async function connect(target: PgTarget, role: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: target.url, connectionTimeoutMillis: PG_CONNECT_TIMEOUT_S * 1000, application_name: APPLICATION_NAME });
  // A server going away mid-session is reported by the query that fails; without a listener it would crash the process.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    throw new BackupError('BACKUP_DB_UNREACHABLE', `cannot connect to the ${role} ${target.display}: ${(err as Error).message || String(err)}`, { cause: err });
  }
  return client;
}

/** Exact row counts of `tables` as this session's snapshot sees them (ONLY: a child table's rows are its own). */
export async function countRows(client: pg.Client, tables: readonly { schema: string; name: string }[]): Promise<TableCount[]> {
  const out: TableCount[] = [];
  for (const t of tables) {
    const { rows } = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ONLY ${client.escapeIdentifier(t.schema)}.${client.escapeIdentifier(t.name)}`);
    out.push({ schema: t.schema, name: t.name, rows: Number(rows[0]?.n ?? 0) });
  }
  return out;
}

export interface Snapshot {
  /** For `pg_dump --snapshot`: the dump sees exactly what the counts saw. */
  readonly id: string;
  readonly database: string;
  readonly serverVersion: string;
  /** Row counts, taken in the exported snapshot (run while pg_dump streams). */
  counts(): Promise<TableCount[]>;
  /** Ends the transaction and the connection; call once pg_dump has finished with the snapshot. */
  close(): Promise<void>;
}

/**
 * Opens a REPEATABLE READ, READ ONLY transaction and exports its snapshot. The transaction must
 * stay open until pg_dump has finished: the snapshot exists only as long as it does.
 */
export async function openSnapshot(target: PgTarget): Promise<Snapshot> {
  const client = await connect(target, 'database');
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
    // pg_dump refuses to dump what row security would hide; counting under the same rule keeps the two in step.
    await client.query(`SET LOCAL row_security = off`);
    await client.query(`SET LOCAL lock_timeout = '${LOCK_WAIT_TIMEOUT}'`);
    const { rows } = await client.query<{ snapshot: string; database: string; version: string }>(
      `SELECT pg_catalog.pg_export_snapshot() AS snapshot, pg_catalog.current_database() AS database, pg_catalog.current_setting('server_version') AS version`,
    );
    const row = rows[0];
    if (!row) throw new Error('pg_export_snapshot returned nothing');
    let closing: Promise<void> | undefined;
    return {
      id: row.snapshot,
      database: row.database,
      serverVersion: row.version,
      counts: async () => countRows(client, (await client.query<{ schema: string; name: string }>(USER_TABLES_SQL)).rows),
      close: () => (closing ??= (async () => {
        await client.query('COMMIT').catch(() => undefined);
        await client.end().catch(() => undefined);
      })()),
    };
  } catch (err) {
    await client.end().catch(() => undefined);
    throw err instanceof BackupError ? err : new BackupError('BACKUP_DB_UNREACHABLE', `cannot open a snapshot on ${target.display}: ${(err as Error).message}`, { cause: err });
  }
}
