import cluster from 'node:cluster';
import { hostname } from 'node:os';
import type { GatewayConfig } from '../../config/schema.js';
import type { AuditLoggerOptions } from './audit-logger.js';

/**
 * The audit logger's settings from the validated config. A cluster worker writes its own files
 * and chain (`access.w<id>-…`): several processes appending to one chained file would break it.
 * The gateway's process (the cluster primary, which forks the workers only once it holds it)
 * takes the folder's `gateway` lock, so a second gateway on the same LOG_DIR cannot start.
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
    lock: cluster.isWorker ? undefined : { name: 'gateway' },
    hashKey: cfg.log.hashKey,
    alerts: cfg.alerts,
    ...extra,
  };
}
