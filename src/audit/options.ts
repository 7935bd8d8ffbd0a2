import cluster from 'node:cluster';
import { hostname } from 'node:os';
import type { GatewayConfig } from '../config/schema.js';
import type { AuditLoggerOptions } from './audit-logger.js';

/**
 * The audit logger's settings from the validated config. A cluster worker writes its own files
 * and chain (`access.w<id>-…`): several processes appending to one chained file would break it.
 */
export function auditOptions(cfg: GatewayConfig, extra: Partial<AuditLoggerOptions> = {}): AuditLoggerOptions {
  return {
    dir: cfg.log.dir,
    retentionDays: cfg.log.retentionDays,
    level: cfg.log.level,
    maxBacklogBytes: cfg.log.maxBacklog,
    failClosed: cfg.log.failClosed,
    node: cfg.log.node ?? hostname(),
    instance: cluster.isWorker && cluster.worker ? `w${cluster.worker.id}` : undefined,
    hashKey: cfg.log.hashKey,
    alerts: cfg.alerts,
    ...extra,
  };
}
