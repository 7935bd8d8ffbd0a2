/** `log`: the access and audit logs on disk. */
import { z } from 'zod';
import { DEFAULTS } from '../defaults.js';
import { bool, days, size } from './fields.js';

export const logSchema = z
  .strictObject({
    level: z.enum(['error', 'warn', 'info', 'debug']).default(DEFAULTS.logLevel),
    dir: z.string().default(DEFAULTS.logDir),
    retentionDays: days.default(DEFAULTS.logRetentionDays),
    /** Key of the hash that stands in for phone numbers and other personal identifiers in logs. */
    hashKey: z.string().min(16, 'use at least 16 characters (openssl rand -hex 32)').optional(),
    /** true: answer 503 while log lines cannot be written; false: keep serving and alert. */
    failClosed: bool.default(false),
    maxBacklog: size.pipe(z.number().int().min(64 * 1024, 'at least 64kb')).prefault(DEFAULTS.logMaxBacklog),
    /** This gateway's name in shared audit tables (PostgreSQL); default the host name. */
    node: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'letters, digits, . _ -').optional(),
  })
  .prefault({});
