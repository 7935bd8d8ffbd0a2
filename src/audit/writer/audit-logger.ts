import type pg from 'pg';
import type { AlertsConfig } from '../../config/schema.js';
import type { Logger, LogLevel } from '../../log/logger.js';
import type { LogMetrics } from '../../metrics/log.js';
import type { RaiseAlert } from '../alerts/rules.js';
import { startResourceMonitor, type ResourceProbe } from '../alerts/resources.js';
import type { WebhookOptions, AlertWebhook } from '../alerts/alert-webhook.js';
import type { SecurityOverview } from '../overview/overview-data.js';
import { redactFields, scrubText } from '../redact/redact.js';
import { alertRaiser } from './audit-logger/alert-raiser.js';
import { closeLogger } from './audit-logger/close.js';
import { LEVEL_RANK } from './audit-logger/console-channel.js';
import { notifyObservers, observeRulesAndOverview } from './audit-logger/observers.js';
import { ACCESS_OWN, APP_OWN, ownFields, SECURITY_OWN } from './audit-logger/own-fields.js';
import { buildParts, type LoggerParts } from './audit-logger/parts.js';
import { attachPostgres } from './audit-logger/postgres.js';
import { openSinks, reportStartup } from './audit-logger/startup.js';
import type { StreamFs } from './fs-tap.js';
import type { SinkStatus } from './sink.js';
import { lockLogDir, LogDirLocked, type WriterLock } from './writer-lock.js';

export { CLOSE_TIMEOUT_MS } from './audit-logger/close.js';

/** How often chain heads are recorded outside the files (and on rotation and close). */
export const HEADS_INTERVAL_MS = 5_000;

export interface AuditLoggerOptions {
  readonly dir: string;
  readonly retentionDays: number;
  readonly level: LogLevel;
  /** Per stream: bytes of lines held while the disk is slow or refusing; beyond it lines are dropped. */
  readonly maxBacklogBytes: number;
  /** Answer 503 (`accepting()` false) while any stream cannot write. */
  readonly failClosed: boolean;
  /** This gateway's name in shared audit tables. */
  readonly node: string;
  /** Set when several processes share the folder (cluster workers, the CLI): own files and chains. */
  readonly instance?: string | undefined;
  /**
   * The chain family this process writes alone (`gateway`, `cli`; see writer-lock.ts), locked
   * before any chain is resumed and released after the last line. Unset for a cluster worker,
   * whose primary holds the lock for all of its workers' chains.
   */
  readonly lock?: { readonly name: string; readonly waitMs?: number } | undefined;
  readonly hashKey?: string | undefined;
  readonly alerts: AlertsConfig;
  /**
   * Keep the security overview's figures (default): read the folder's past lines and follow the
   * other processes' chains. Off where no overview is served (the CLI, a cluster's primary),
   * which would otherwise read 30 days of every worker's lines for nothing.
   */
  readonly overview?: boolean | undefined;
  /** The console channel: app lines at `level`, alerts, and lines that could not be written. */
  readonly console?: NodeJS.WritableStream;
  readonly fs?: StreamFs;
  readonly retryFirstMs?: number;
  readonly retryMaxMs?: number;
  readonly headsIntervalMs?: number;
  readonly closeTimeoutMs?: number;
  readonly webhook?: Partial<Omit<WebhookOptions, 'url'>>;
  /** A probe of resource use (tests), or false to not monitor resources. */
  readonly resourceProbe?: ResourceProbe | false;
  readonly now?: () => number;
  /** Where security events, alerts and the streams' state are counted (the gateway's); without it, a registry read by nobody. */
  readonly metrics?: LogMetrics | undefined;
}

/** What observes every record after redaction (metrics, alert rules, the overview, tests). */
export interface LogObserver {
  access?(record: Record<string, unknown>): void;
  security?(record: Record<string, unknown>): void;
}

export interface AuditLogger extends Logger {
  /** False when AUDIT_FAIL_CLOSED is set and lines cannot be written now: the gateway answers 503. */
  accepting(): boolean;
  /** Resolves when every line so far is on disk (false after `timeoutMs`). */
  flush(timeoutMs?: number): Promise<boolean>;
  /** Writes out everything (on SIGTERM), records the chain heads, stops timers. */
  close(): Promise<void>;
  /** With DATABASE_URL: applies the audit migrations, then copies heads and security events there. */
  attachPostgres(pool: pg.Pool): Promise<void>;
  /** Records the chain heads now (normally every HEADS_INTERVAL_MS). */
  recordHeads(): Promise<void>;
  status(): SinkStatus[];
  observe(observer: LogObserver): void;
  raise: RaiseAlert;
  readonly overview: SecurityOverview;
  readonly webhook: AlertWebhook | undefined;
}

/**
 * The gateway's logger: three hash-chained, daily-rotated, gzipped JSON-lines streams under
 * LOG_DIR (access, security, app), redaction of every field before anything is written, a
 * console channel for operators, security events copied to PostgreSQL, alerts (rules,
 * resources, log-sink trouble) raised as security events and posted to ALERT_WEBHOOK_URL.
 * Its parts are in ./audit-logger/; this is the order they start in.
 */
export async function createAuditLogger(opts: AuditLoggerOptions): Promise<AuditLogger> {
  // First of all: a second writer must not even read the chain heads it would fork.
  const { lock, problem: lockProblem } = await takeLock(opts);
  const parts = buildParts(opts, lock, () => logger);
  const logger = loggerFacade(parts);
  const startup = await openSinks(parts, logger);
  reportStartup(parts, logger, lockProblem, startup);
  if (startup.failures.length > 0 && opts.failClosed) {
    await logger.close();
    throw new Error(`cannot write audit logs in ${opts.dir} (${startup.failures.join('; ')}); AUDIT_FAIL_CLOSED=true refuses to start`);
  }
  observeRulesAndOverview(parts, logger);
  parts.timers.heads = setInterval(() => void logger.recordHeads(), opts.headsIntervalMs ?? HEADS_INTERVAL_MS);
  parts.timers.heads.unref();
  parts.timers.monitor = opts.resourceProbe === false ? undefined : startResourceMonitor(opts.alerts.resources, logger.raise, opts.resourceProbe);
  if (parts.identifiers.ephemeral) {
    (opts.console ?? process.stderr).write('WARNING: LOG_HASH_KEY is not set: phone numbers in logs are hashed with a key that lasts only for this process (production refuses to start without it)\n');
    logger.app('warn', 'LOG_HASH_KEY not set: using an ephemeral key for identifier hashes', { finding: 'log-hash-key-missing' });
  }
  logger.app('info', 'audit logs open', { dir: opts.dir, streams: [...parts.sinks.values()].map((s) => s.chain), retentionDays: opts.retentionDays, failClosed: opts.failClosed });
  return logger;
}

/** The logger's face: each record redacted, stamped, written to its stream, and shown to the observers. */
function loggerFacade(parts: LoggerParts): AuditLogger {
  const { opts, identifiers, sinks, eventsDb, toConsole, closeTimeout, metrics: m } = parts;
  const time = (): string => new Date(parts.now()).toISOString();
  const notify = (kind: keyof LogObserver, record: Record<string, unknown>): void => notifyObservers(parts, kind, record);
  // The store beneath the typed seam: any name and fields reach the file, redacted. Only the
  // alert raiser calls it directly (its names are `alert.<AlertType>`, checked in events.ts).
  const writeSecurity = (event: string, fields: Record<string, unknown>): void => {
    const record = { time: time(), event, ...ownFields(redactFields(fields, identifiers), SECURITY_OWN) };
    m.observeSecurityEvent(event);
    sinks.get('security')?.write(record);
    eventsDb.push(record);
    notify('security', record);
  };
  const logger: AuditLogger = {
    access(entry) {
      const record = { time: time(), ...ownFields(redactFields(entry, identifiers), ACCESS_OWN) };
      sinks.get('access')?.write(record);
      notify('access', record);
    },
    security(event, fields = {}) {
      writeSecurity(event, fields);
    },
    app(level, message, fields = {}) {
      if (LEVEL_RANK[level] > LEVEL_RANK[opts.level]) return;
      const record = { time: time(), level, message: scrubText(message, identifiers), ...ownFields(redactFields(fields, identifiers), APP_OWN) };
      sinks.get('app')?.write(record);
      toConsole(level, { ...record, stream: 'app' });
    },
    accepting() {
      if (!opts.failClosed) return true;
      for (const s of sinks.values()) if (!s.healthy) return false;
      return true;
    },
    async flush(timeoutMs = closeTimeout) {
      const results = await Promise.all([...sinks.values()].map((s) => s.flush(timeoutMs)));
      return results.every(Boolean);
    },
    recordHeads: () => parts.heads.record(sinks.values(), time()),
    attachPostgres: (pool) => attachPostgres(parts, logger, pool),
    close: () => closeLogger(parts, () => logger.recordHeads()),
    status: () => [...sinks.values()].map((s) => s.status()),
    observe(observer) {
      parts.observers.push(observer);
    },
    raise: alertRaiser(parts, writeSecurity),
    overview: parts.overview,
    webhook: parts.webhook,
  };
  return logger;
}

/**
 * The lock of `opts.lock`. Held by another live process: LogDirLocked, and startup stops before
 * a line is written. A folder that refuses the lock file itself (not writable, disk full) is
 * reported as a problem instead, like a sink that cannot open: AUDIT_FAIL_CLOSED refuses to
 * start on it, and otherwise the gateway starts and serves as it does on an unwritable folder.
 */
async function takeLock(opts: AuditLoggerOptions): Promise<{ lock?: WriterLock; problem?: string }> {
  if (!opts.lock) return {};
  try {
    return { lock: await lockLogDir(opts.dir, opts.lock.name, { node: opts.node, waitMs: opts.lock.waitMs ?? 0 }) };
  } catch (err) {
    if (err instanceof LogDirLocked) throw err;
    return { problem: (err as Error).message };
  }
}
