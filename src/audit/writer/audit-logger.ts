import type pg from 'pg';
import winston from 'winston';
import type { AlertsConfig } from '../../config/schema.js';
import type { Logger, LogLevel } from '../../log/logger.js';
import { migrate } from '../../stores/migrations.js';
import { AlertRules, Cooldown, type AlertType, type RaiseAlert } from '../alerts/rules.js';
import { EMPTY_CHAIN } from './chain.js';
import { chainName, STREAMS, type StreamName } from './files.js';
import type { StreamFs } from './fs-tap.js';
import { FileHeadStore, PostgresHeadStore, type HeadRecord, type HeadStore } from './heads.js';
import { IdentifierHasher } from '../redact/identifiers.js';
import * as m from '../../metrics/requests.js';
import { AUDIT_MIGRATIONS } from './migrations.js';
import { SecurityOverview } from '../overview/overview-data.js';
import { SecurityEventsWriter } from './pg-events.js';
import { redactFields, scrubText } from '../redact/redact.js';
import { startResourceMonitor, type ResourceProbe } from '../alerts/resources.js';
import { resumeChain } from './resume.js';
import { StreamSink, type SinkStatus } from './sink.js';
import { AlertWebhook, type WebhookOptions } from '../alerts/alert-webhook.js';
import { lockLogDir, LogDirLocked, type WriterLock } from './writer-lock.js';

/** How often chain heads are recorded outside the files (and on rotation and close). */
export const HEADS_INTERVAL_MS = 5_000;
/** How long a shutdown waits for log lines to reach the disk. */
export const CLOSE_TIMEOUT_MS = 10_000;
/** Wait before trying again to create the audit tables when PostgreSQL was unreachable. */
const PG_RETRY_MS = 30_000;
const RANK: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

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
 */
/** Names the logger itself sets on each stream's lines; a caller's field of that name is renamed `_name`. */
const ACCESS_OWN = new Set(['time']);
const SECURITY_OWN = new Set(['time', 'event']);
const APP_OWN = new Set(['time', 'level', 'message']);

/** Fields with the logger's own names renamed, so no caller value can pose as a line's time or event. */
function ownFields(fields: Record<string, unknown>, own: ReadonlySet<string>): Record<string, unknown> {
  if (!Object.keys(fields).some((k) => own.has(k))) return fields;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) out[own.has(k) ? `_${k}` : k] = v;
  return out;
}

/**
 * Alerts that follow a log sink's state, which raises each once per outage and once per
 * recovery (src/audit/sink.ts): a cooldown would swallow a real second outage that follows a
 * recovery within it (issue 18, item 6).
 */
const SINK_STATE_ALERTS: ReadonlySet<AlertType> = new Set(['log_unwritable', 'log_recovered']);

export async function createAuditLogger(opts: AuditLoggerOptions): Promise<AuditLogger> {
  // First of all: a second writer must not even read the chain heads it would fork.
  const { lock, problem: lockProblem } = await takeLock(opts);
  const now = opts.now ?? Date.now;
  // This logger's key for personal identifiers (LOG_HASH_KEY): every line it redacts uses it.
  const identifiers = new IdentifierHasher(opts.hashKey);
  const closeTimeout = opts.closeTimeoutMs ?? CLOSE_TIMEOUT_MS;
  const observers: LogObserver[] = [];
  const cooldown = new Cooldown(opts.alerts.cooldown);
  const overview = new SecurityOverview(now);
  const consoleLog = winston.createLogger({
    levels: RANK,
    level: 'debug',
    format: winston.format.printf((info) => String(info.line)),
    transports: [new winston.transports.Stream({ stream: opts.console ?? process.stderr })],
  });
  const toConsole = (level: LogLevel, record: Record<string, unknown>): void => {
    consoleLog.log(level, '', { line: JSON.stringify(record) });
  };
  const webhook = opts.alerts.webhookUrl
    ? new AlertWebhook({
        url: opts.alerts.webhookUrl,
        ...opts.webhook,
        onGiveUp: (info) => logger.app('error', 'alert webhook delivery failed', { ...info }),
      })
    : undefined;
  const eventsDb = new SecurityEventsWriter(opts.node, {
    unavailable: (err) => raise('events_db_unavailable', 'postgres', `security events cannot be written to PostgreSQL: ${err.message}`, { error: err.message }),
    recovered: ({ dropped }) => logger.app('info', 'security events reach PostgreSQL again', { dropped }),
  });

  let closed = false;
  const sinks = new Map<StreamName, StreamSink>();
  const fileHeads = new FileHeadStore(opts.dir);
  let dbHeads: HeadStore | undefined;
  const unsaved = new Map<HeadStore, Map<string, HeadRecord>>();

  const raise: RaiseAlert = (type: AlertType, subject, message, fields = {}) => {
    if (closed || (!SINK_STATE_ALERTS.has(type) && !cooldown.allow(`${type}|${subject}`, now()))) return;
    m.alertsTotal.inc({ type });
    const payload = redactFields({ alert: type, subject, message, ...fields }, identifiers);
    const time = new Date(now()).toISOString();
    logger.security(`alert.${type}`, payload);
    // The other channels: an alert about the log files must reach someone who is not reading them.
    toConsole('error', { time, stream: 'alert', ...payload });
    webhook?.send({ time, node: opts.node, ...payload });
  };

  const sinkEvents = (stream: StreamName): ConstructorParameters<typeof StreamSink>[0]['events'] => {
    const chain = chainName(stream, opts.instance);
    return {
      degraded: (err) => {
        m.logSinkHealthy.set({ stream: chain }, 0);
        raise('log_unwritable', chain, `cannot write the ${chain} log in ${opts.dir}: ${err.message}; lines are held in memory (up to ${opts.maxBacklogBytes} bytes)${opts.failClosed ? ' and requests are refused (AUDIT_FAIL_CLOSED)' : ''}`, { logStream: chain, dir: opts.dir, error: err.message });
      },
      recovered: (info) => {
        m.logSinkHealthy.set({ stream: chain }, 1);
        raise('log_recovered', chain, `the ${chain} log is written again after ${Math.round(info.downMs / 1000)} s`, { logStream: chain, ...info });
      },
      overflow: (info) => {
        m.logSinkHealthy.set({ stream: chain }, 0);
        raise('log_backlog_full', chain, `the ${chain} log backlog is full (${info.backlogBytes} bytes): lines are being dropped until the disk catches up`, { logStream: chain, ...info });
      },
      rotated: (oldFile, newFile) => {
        logger.app('info', 'log rotated', { stream: chain, oldFile, newFile });
        void logger.recordHeads();
      },
      compressed: (file) => logger.app('debug', 'log compressed', { stream: chain, file }),
      removed: (file) => {
        logger.security('audit.log_removed', { stream: chain, file, reason: 'retention', retentionDays: opts.retentionDays });
        const plain = file.replace(/\.gz$/, '');
        const at = new Date(now()).toISOString();
        for (const store of [fileHeads, dbHeads]) store?.markRemoved(chain, plain, at).catch(() => undefined);
      },
      warning: (message, err) => logger.app('warn', message, { stream: chain, error: err instanceof Error ? err.message : String(err) }),
    };
  };

  const time = (): string => new Date(now()).toISOString();
  const notify = (kind: keyof LogObserver, record: Record<string, unknown>): void => {
    for (const o of observers) {
      try {
        o[kind]?.(record);
      } catch (err) {
        // An observer's bug must never cost a log line; say so once per call on the console.
        toConsole('error', { time: time(), stream: 'app', level: 'error', message: 'log observer failed', error: (err as Error).message });
      }
    }
  };

  const logger: AuditLogger = {
    access(entry) {
      const record = { time: time(), ...ownFields(redactFields(entry, identifiers), ACCESS_OWN) };
      sinks.get('access')?.write(record);
      notify('access', record);
    },
    security(event, fields = {}) {
      const record = { time: time(), event, ...ownFields(redactFields(fields, identifiers), SECURITY_OWN) };
      m.observeSecurityEvent(event);
      sinks.get('security')?.write(record);
      eventsDb.push(record);
      notify('security', record);
    },
    app(level, message, fields = {}) {
      if (RANK[level] > RANK[opts.level]) return;
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
    async recordHeads() {
      const at = time();
      const fresh: HeadRecord[] = [];
      for (const s of sinks.values()) for (const [file, h] of s.takeHeads()) fresh.push({ chain: s.chain, file, ...h, updatedAt: at });
      await Promise.all(
        [fileHeads, dbHeads].map(async (store) => {
          if (!store) return;
          const pending = unsaved.get(store) ?? new Map<string, HeadRecord>();
          for (const r of fresh) pending.set(`${r.chain}/${r.file}`, r);
          if (pending.size === 0) return;
          try {
            await store.save([...pending.values()]);
            unsaved.delete(store);
          } catch (err) {
            // Kept for the next attempt; a failing local file is already alerted through its sink.
            unsaved.set(store, pending);
            if (store === dbHeads) raise('events_db_unavailable', 'postgres-heads', `chain heads cannot be written to ${store.where}: ${(err as Error).message}`, { error: (err as Error).message });
          }
        }),
      );
    },
    async attachPostgres(pool) {
      try {
        await migrate(pool, AUDIT_MIGRATIONS);
      } catch (err) {
        logger.app('error', 'audit tables could not be created; security events and chain heads stay in the files for now (retrying)', { error: (err as Error).message });
        if (!closed) setTimeout(() => void logger.attachPostgres(pool), PG_RETRY_MS).unref();
        return;
      }
      const store = new PostgresHeadStore(pool, opts.node);
      // Every head recorded so far (this run and earlier ones), so the database knows each file.
      const own = new Set([...sinks.values()].map((s) => s.chain));
      const pending = new Map<string, HeadRecord>();
      for (const r of await fileHeads.load().catch(() => [])) if (own.has(r.chain)) pending.set(`${r.chain}/${r.file}`, r);
      unsaved.set(store, pending);
      dbHeads = store;
      eventsDb.attach(pool);
      await logger.recordHeads();
    },
    async close() {
      if (closed) return;
      clearInterval(timers.heads);
      timers.monitor?.stop();
      await overview.stopFollowing();
      const unwritten = await Promise.all([...sinks.values()].map(async (s) => [s.chain, await s.close(closeTimeout)] as const));
      for (const [chain, lines] of unwritten) {
        // Last resort, so nothing is lost silently: the console channel gets what the disk refused.
        for (const line of lines) toConsole('error', { stream: 'unwritten', chain, line });
      }
      await logger.recordHeads();
      // Only now may another process continue these chains: every line of ours is on disk.
      lock?.release();
      closed = true;
      await eventsDb.close();
      await webhook?.close(Math.min(closeTimeout, 5_000));
      unregisterStatus();
    },
    status: () => [...sinks.values()].map((s) => s.status()),
    observe(observer) {
      observers.push(observer);
    },
    raise,
    overview,
    webhook,
  };

  const ephemeral = identifiers.ephemeral;
  const timers: { heads?: NodeJS.Timeout; monitor?: { stop(): void } | undefined } = {};
  const unregisterStatus = m.registerLogStatus(() => [...sinks.values()].map((s) => s.status()), () => eventsDb.backlog);

  // Chains continue where the files (or the recorded heads, when further) end.
  const heads = await fileHeads.load().catch((err: Error) => {
    logger.app('warn', 'chain heads file unreadable; continuing from the log files alone', { error: err.message });
    return [] as HeadRecord[];
  });
  const today = new Date(now()).toISOString().slice(0, 10);
  const failures: string[] = [];
  const notes: [string, string][] = [];
  for (const stream of STREAMS) {
    const chain = chainName(stream, opts.instance);
    let state = EMPTY_CHAIN;
    try {
      const resumed = await resumeChain(opts.dir, chain, heads, today);
      state = resumed.state;
      for (const n of resumed.notes) notes.push([chain, n]);
      if (resumed.gap) notes.push([chain, 'GAP']);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') failures.push(`${chain}: ${(err as Error).message}`);
    }
    sinks.set(
      stream,
      new StreamSink({
        dir: opts.dir,
        stream,
        instance: opts.instance,
        retentionDays: opts.retentionDays,
        maxBacklogBytes: opts.maxBacklogBytes,
        chain: state,
        events: sinkEvents(stream),
        ...(opts.retryFirstMs !== undefined ? { retryFirstMs: opts.retryFirstMs } : {}),
        ...(opts.retryMaxMs !== undefined ? { retryMaxMs: opts.retryMaxMs } : {}),
        ...(opts.fs ? { fs: opts.fs } : {}),
      }),
    );
  }
  // All three exist before any opens: a failure to open one is an alert written to the others.
  for (const sink of sinks.values()) {
    if (!(await sink.start())) failures.push(`${sink.chain}: ${sink.status().lastError ?? 'cannot open'}`);
  }
  // The folder refused even the lock file (so it refuses lines too, for now): this process writes unguarded.
  if (lockProblem) failures.push(`lock: ${lockProblem}`);
  if (lockProblem && !opts.failClosed) logger.app('warn', 'cannot lock the log folder; writing it without the one-writer guard', { dir: opts.dir, error: lockProblem });
  if (lock?.tookOverFrom) logger.app('warn', 'took over the log folder lock of a process that is gone', { lockFile: lock.file, previous: { ...lock.tookOverFrom } });
  for (const [chain, n] of notes) {
    if (n === 'GAP') logger.security('audit.chain_gap', { stream: chain, message: 'the log files end before the recorded chain head: lines were lost or removed while the gateway was stopped' });
    else logger.app('warn', n, { stream: chain });
  }
  if (failures.length > 0 && opts.failClosed) {
    await logger.close();
    throw new Error(`cannot write audit logs in ${opts.dir} (${failures.join('; ')}); AUDIT_FAIL_CLOSED=true refuses to start`);
  }

  const rules = new AlertRules(opts.alerts, raise, now);
  logger.observe({ access: (r) => rules.access(r), security: (r) => rules.security(r) });
  if (opts.overview !== false) {
    // Observed before the backfill starts: the backfill counts only lines of our chains stamped
    // before it, so none counts twice. The chains of other processes sharing the folder (cluster
    // workers, the CLI) are read from the files, and followed there from where the backfill stopped.
    logger.observe({ access: (r) => overview.observeAccess(r), security: (r) => overview.observe(r) });
    const ownChains = new Set([...sinks.values()].map((s) => s.chain));
    // Followed even after a failed backfill: files it did not reach are then read from their start.
    void overview
      .backfill(opts.dir, ownChains)
      .catch((err: Error) => logger.app('warn', 'security overview could not read past logs', { error: err.message }))
      .then(() => overview.follow(opts.dir, { onError: (err) => logger.app('warn', "security overview cannot follow the other processes' logs", { error: err.message }) }));
  }

  timers.heads = setInterval(() => void logger.recordHeads(), opts.headsIntervalMs ?? HEADS_INTERVAL_MS);
  timers.heads.unref();
  timers.monitor = opts.resourceProbe === false ? undefined : startResourceMonitor(opts.alerts.resources, raise, opts.resourceProbe);

  if (ephemeral) {
    (opts.console ?? process.stderr).write('WARNING: LOG_HASH_KEY is not set: phone numbers in logs are hashed with a key that lasts only for this process (production refuses to start without it)\n');
    logger.app('warn', 'LOG_HASH_KEY not set: using an ephemeral key for identifier hashes', { finding: 'log-hash-key-missing' });
  }
  logger.app('info', 'audit logs open', { dir: opts.dir, streams: [...sinks.values()].map((s) => s.chain), retentionDays: opts.retentionDays, failClosed: opts.failClosed });
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
