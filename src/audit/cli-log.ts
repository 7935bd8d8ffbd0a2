import type { GatewayConfig } from '../config/schema.js';
import { createAuditLogger, type AuditLogger } from './audit-logger.js';
import { auditOptions } from './options.js';

/**
 * The audit logger of a CLI process (`users add`, `tokens revoke`, …): its `admin.*` security
 * events go to LOG_DIR like the gateway's, in files and a chain of their own
 * (`security.cli-YYYY-MM-DD.log`), so a running gateway's chain is never appended to by a
 * second process. No resource monitor; close() it before the process exits.
 */
export function openCliAuditLog(cfg: GatewayConfig): Promise<AuditLogger> {
  return createAuditLogger(auditOptions(cfg, { instance: 'cli', resourceProbe: false, level: 'warn' }));
}
