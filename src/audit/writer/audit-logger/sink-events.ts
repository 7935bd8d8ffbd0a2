import type { AuditLogger } from '../audit-logger.js';
import type { SinkEvents } from '../sink.js';
import type { LoggerParts } from './parts.js';

/**
 * What the sink of chain `chain` reports becomes: the sink-health metric and an alert when lines
 * cannot be written or are dropped, app lines for rotation and gzip, a security event and a
 * mark on the recorded heads for each file retention removes.
 */
export function sinkEvents(chain: string, p: LoggerParts, logger: AuditLogger): SinkEvents {
  const { opts, metrics: m } = p;
  return {
    degraded: (err) => {
      m.logSinkHealthy.set({ stream: chain }, 0);
      logger.raise('log_unwritable', chain, `cannot write the ${chain} log in ${opts.dir}: ${err.message}; lines are held in memory (up to ${opts.maxBacklogBytes} bytes)${opts.failClosed ? ' and requests are refused (AUDIT_FAIL_CLOSED)' : ''}`, { logStream: chain, dir: opts.dir, error: err.message });
    },
    recovered: (info) => {
      m.logSinkHealthy.set({ stream: chain }, 1);
      logger.raise('log_recovered', chain, `the ${chain} log is written again after ${Math.round(info.downMs / 1000)} s`, { logStream: chain, ...info });
    },
    overflow: (info) => {
      m.logSinkHealthy.set({ stream: chain }, 0);
      logger.raise('log_backlog_full', chain, `the ${chain} log backlog is full (${info.backlogBytes} bytes): lines are being dropped until the disk catches up`, { logStream: chain, ...info });
    },
    rotated: (oldFile, newFile) => {
      logger.app('info', 'log rotated', { stream: chain, oldFile, newFile });
      void logger.recordHeads();
    },
    compressed: (file) => logger.app('debug', 'log compressed', { stream: chain, file }),
    removed: (file) => {
      logger.security('audit.log_removed', { stream: chain, file, reason: 'retention', retentionDays: opts.retentionDays });
      p.heads.markRemoved(chain, file.replace(/\.gz$/, ''), new Date(p.now()).toISOString());
    },
    warning: (message, err) => logger.app('warn', message, { stream: chain, error: err instanceof Error ? err.message : String(err) }),
  };
}
