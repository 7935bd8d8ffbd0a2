import type { LogMetrics } from '../../../metrics/log.js';
import { createLogMetrics } from '../../../metrics/log.js';
import { AlertWebhook } from '../../alerts/alert-webhook.js';
import { SecurityOverview } from '../../overview/overview-data.js';
import { IdentifierHasher } from '../../redact/identifiers.js';
import type { AuditLogger, AuditLoggerOptions, LogObserver } from '../audit-logger.js';
import type { StreamName } from '../files.js';
import { SecurityEventsWriter } from '../pg-events.js';
import type { StreamSink } from '../sink.js';
import type { WriterLock } from '../writer-lock.js';
import { CLOSE_TIMEOUT_MS } from './close.js';
import { consoleChannel, type ToConsole } from './console-channel.js';
import { HeadRecorder } from './head-recorder.js';

/** What one audit logger holds: built once, before its first line; its functions share it. */
export interface LoggerParts {
  readonly opts: AuditLoggerOptions;
  readonly now: () => number;
  readonly metrics: LogMetrics;
  /** This logger's key for personal identifiers (LOG_HASH_KEY): every line it redacts uses it. */
  readonly identifiers: IdentifierHasher;
  readonly closeTimeout: number;
  readonly observers: LogObserver[];
  readonly overview: SecurityOverview;
  readonly toConsole: ToConsole;
  readonly webhook: AlertWebhook | undefined;
  readonly eventsDb: SecurityEventsWriter;
  /** One per stream, filled at startup (startup.ts). */
  readonly sinks: Map<StreamName, StreamSink>;
  readonly heads: HeadRecorder;
  readonly lock: WriterLock | undefined;
  readonly timers: { heads?: NodeJS.Timeout; monitor?: { stop(): void } | undefined };
  readonly unregisterStatus: () => void;
  /** Set by close() once the folder is released: no alert is raised after it. */
  closed: boolean;
}

/**
 * The parts of a logger. Those that report trouble do it through the logger they belong to,
 * `self`, which exists only once its parts do: they call it later, never while being built.
 */
export function buildParts(opts: AuditLoggerOptions, lock: WriterLock | undefined, self: () => AuditLogger): LoggerParts {
  const now = opts.now ?? Date.now;
  const metrics = opts.metrics ?? createLogMetrics();
  const identifiers = new IdentifierHasher(opts.hashKey);
  const closeTimeout = opts.closeTimeoutMs ?? CLOSE_TIMEOUT_MS;
  const overview = new SecurityOverview(now);
  const toConsole = consoleChannel(opts.console ?? process.stderr);
  const webhook = opts.alerts.webhookUrl
    ? new AlertWebhook({
        url: opts.alerts.webhookUrl,
        ...opts.webhook,
        onGiveUp: (info) => self().app('error', 'alert webhook delivery failed', { ...info }),
      })
    : undefined;
  const eventsDb = new SecurityEventsWriter(opts.node, {
    unavailable: (err) => self().raise('events_db_unavailable', 'postgres', `security events cannot be written to PostgreSQL: ${err.message}`, { error: err.message }),
    recovered: ({ dropped }) => self().app('info', 'security events reach PostgreSQL again', { dropped }),
  });
  const sinks = new Map<StreamName, StreamSink>();
  const heads = new HeadRecorder(opts.dir, (where, err) => self().raise('events_db_unavailable', 'postgres-heads', `chain heads cannot be written to ${where}: ${err.message}`, { error: err.message }));
  const unregisterStatus = metrics.registerLogStatus(
    () => [...sinks.values()].map((s) => s.status()),
    () => eventsDb.backlog,
  );
  return { opts, now, metrics, identifiers, closeTimeout, observers: [], overview, toConsole, webhook, eventsDb, sinks, heads, lock, timers: {}, unregisterStatus, closed: false };
}
