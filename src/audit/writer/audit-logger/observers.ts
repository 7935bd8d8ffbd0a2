import { AlertRules } from '../../alerts/rules.js';
import type { AuditLogger, LogObserver } from '../audit-logger.js';
import type { LoggerParts } from './parts.js';

/** Hands a record to every observer; an observer's bug must never cost a log line. */
export function notifyObservers(p: LoggerParts, kind: keyof LogObserver, record: Record<string, unknown>): void {
  for (const o of p.observers) {
    try {
      o[kind]?.(record);
    } catch (err) {
      // Said once per call on the console.
      p.toConsole('error', { time: new Date(p.now()).toISOString(), stream: 'app', level: 'error', message: 'log observer failed', error: (err as Error).message });
    }
  }
}

/** The observers every logger has: the alert rules, and (unless `overview` is off) the security overview's figures. */
export function observeRulesAndOverview(p: LoggerParts, logger: AuditLogger): void {
  const { opts, overview } = p;
  const rules = new AlertRules(opts.alerts, logger.raise, p.now);
  logger.observe({ access: (r) => rules.access(r), security: (r) => rules.security(r) });
  if (opts.overview === false) return;
  // Observed before the backfill starts: the backfill counts only lines of our chains stamped
  // before it, so none counts twice. The chains of other processes sharing the folder (cluster
  // workers, the CLI) are read from the files, and followed there from where the backfill stopped.
  logger.observe({ access: (r) => overview.observeAccess(r), security: (r) => overview.observe(r) });
  const ownChains = new Set([...p.sinks.values()].map((s) => s.chain));
  // Followed even after a failed backfill: files it did not reach are then read from their start.
  void overview
    .backfill(opts.dir, ownChains)
    .catch((err: Error) => logger.app('warn', 'security overview could not read past logs', { error: err.message }))
    .then(() => overview.follow(opts.dir, { onError: (err) => logger.app('warn', "security overview cannot follow the other processes' logs", { error: err.message }) }));
}
