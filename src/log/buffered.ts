import type { SecurityEvent } from './events.js';
import type { Logger } from './logger.js';

// A security call is replayed by a closure: its fields are typed by its event, which a list of calls of any event cannot say.
type Call = { kind: 'access'; entry: Record<string, unknown> } | { kind: 'security'; event: SecurityEvent; fields?: Record<string, unknown> | undefined; replay: (t: Logger) => void } | { kind: 'app'; level: Parameters<Logger['app']>[0]; message: string; fields?: Record<string, unknown> };

export interface BufferedLogger extends Logger {
  /** Hands every call made so far to `target`, in order, and forwards later ones to it. */
  replayInto(target: Logger): void;
  /** What was logged, for printing when startup fails before the real logger exists. */
  readonly calls: readonly Call[];
}

/**
 * Holds the lines logged before the config (and so LOG_DIR) is known, such as a generated
 * development certificate, so they still reach the audit files once those are open.
 */
export function createBufferedLogger(): BufferedLogger {
  const calls: Call[] = [];
  let target: Logger | undefined;
  return {
    calls,
    access: (entry) => (target ? target.access(entry) : void calls.push({ kind: 'access', entry })),
    security: (event, fields) => (target ? target.security(event, fields) : void calls.push({ kind: 'security', event, fields, replay: (t) => t.security(event, fields) })),
    app: (level, message, fields) => (target ? target.app(level, message, fields) : void calls.push({ kind: 'app', level, message, fields })),
    replayInto(t) {
      for (const c of calls.splice(0)) {
        if (c.kind === 'access') t.access(c.entry);
        else if (c.kind === 'security') c.replay(t);
        else t.app(c.level, c.message, c.fields);
      }
      target = t;
    },
  };
}
