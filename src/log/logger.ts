/**
 * The logging seam. The gateway's logger is src/audit/writer/audit-logger.ts (rotated, hash-chained,
 * redacted files); the pipeline calls these three methods, plus `accepting` when present.
 */
import type { EventFields, SecurityEvent } from './events.js';

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';

export interface Logger {
  /** One line per request or upgrade, whatever its outcome. */
  access(entry: Record<string, unknown>): void;
  /**
   * Denials, reloads, admin operations and other security-relevant events: only names of the
   * registry (src/log/events.ts), each with only its declared fields.
   */
  security<E extends SecurityEvent>(event: E, fields?: EventFields<E>): void;
  /** Process events. */
  app(level: LogLevel, message: string, fields?: Record<string, unknown>): void;
  /**
   * False while lines cannot be recorded and the operator chose to refuse requests then
   * (AUDIT_FAIL_CLOSED): the pipeline answers 503 AUDIT_UNAVAILABLE. Absent means always true.
   */
  accepting?(): boolean;
  /** Writes out every buffered line; called once on shutdown. */
  close?(): Promise<void>;
}

/** Keeps every entry in memory: for tests and the demo's own assertions. */
export interface MemoryLogger extends Logger {
  readonly accessEntries: Record<string, unknown>[];
  readonly securityEvents: Record<string, unknown>[];
  readonly appMessages: Record<string, unknown>[];
}

export function createMemoryLogger(): MemoryLogger {
  const accessEntries: Record<string, unknown>[] = [];
  const securityEvents: Record<string, unknown>[] = [];
  const appMessages: Record<string, unknown>[] = [];
  return {
    accessEntries,
    securityEvents,
    appMessages,
    access: (entry) => accessEntries.push(entry),
    security: (event, fields = {}) => securityEvents.push({ event, ...fields }),
    app: (level, message, fields = {}) => appMessages.push({ level, message, ...fields }),
  };
}
