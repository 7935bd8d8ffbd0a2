import { Writable } from 'node:stream';
import pg from 'pg';
import type { GatewayConfig } from '../../config/schema.js';
import { createAuditLogger, type AuditLogger } from './audit-logger.js';
import { auditOptions } from './options.js';

/** How long a CLI process waits for PostgreSQL when it opens the audit tables. */
const PG_CONNECT_TIMEOUT_MS = 3_000;
/** How long a CLI process waits for another CLI process to finish with the `cli` chain. */
export const CLI_LOCK_WAIT_MS = 10_000;

/**
 * The audit logger of a CLI process (`users add`, `tokens revoke`, …): its `admin.*` security
 * events go to LOG_DIR like the gateway's, in files and a chain of their own
 * (`security.cli-YYYY-MM-DD.log`), so a running gateway's chain is never appended to by a
 * second process. Two CLI processes at once would fork the `cli` chain the same way, so each
 * holds the folder's `cli` lock while it logs (waiting up to CLI_LOCK_WAIT_MS for another CLI
 * action to finish; CLI actions are short). No resource monitor; close() it before the process exits.
 *
 * With DATABASE_URL the CLI's chain heads and security events go to PostgreSQL too, as the
 * gateway's do: `audit verify` reads the heads from there alone, so a CLI chain recorded only
 * in the local heads file could be deleted from the log folder without verify noticing.
 */
export async function openCliAuditLog(cfg: GatewayConfig, opts: { verbose?: boolean } = {}): Promise<AuditLogger> {
  const audit = await createAuditLogger(
    auditOptions(cfg, { instance: 'cli', lock: { name: 'cli', waitMs: CLI_LOCK_WAIT_MS }, resourceProbe: false, overview: false, level: 'warn', console: cliConsole(process.stderr, opts.verbose === true) }),
  );
  const url = cfg.stores.databaseUrl;
  if (!url) return audit;
  const pool = new pg.Pool({ connectionString: url, max: 1, connectionTimeoutMillis: PG_CONNECT_TIMEOUT_MS });
  // Unheard, a dropped idle connection would end the process; attachPostgres reports real failures.
  pool.on('error', () => undefined);
  // Not awaited here: the action runs meanwhile; its events queue until the tables are there.
  const attached = audit.attachPostgres(pool).catch(() => undefined);
  const closeFiles = audit.close.bind(audit);
  audit.close = async () => {
    await attached;
    await closeFiles();
    await pool.end().catch(() => undefined);
  };
  return audit;
}

/**
 * The audit logger's console channel in a CLI process: a person reads that stderr between the
 * command's own lines, so app warnings and alerts become one plain line each; JSON only with
 * --verbose. A line the disk refused (the console is its last resort) stays JSON: it is the
 * record itself and must survive whole.
 */
export function cliConsole(out: NodeJS.WritableStream, verbose: boolean): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line === '') continue;
        if (verbose) {
          out.write(`${line}\n`);
          continue;
        }
        let r: Record<string, unknown> | undefined;
        try {
          r = JSON.parse(line) as Record<string, unknown>;
        } catch {
          r = undefined;
        }
        if (r?.stream === 'app' && typeof r.message === 'string') out.write(`${r.level === 'error' ? 'ERROR' : 'WARNING'}: ${r.message}${typeof r.error === 'string' ? ` (${r.error})` : ''}\n`);
        else if (r?.stream === 'alert' && typeof r.message === 'string') out.write(`ALERT: ${r.message}\n`);
        else out.write(`${line}\n`);
      }
      done();
    },
  });
}
