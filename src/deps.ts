import type { Redis } from 'ioredis';
import type pg from 'pg';
import type { Logger } from './log/logger.js';

/**
 * Process-wide services handed to the pipeline. Stores are optional: without REDIS_URL /
 * DATABASE_URL each feature uses its embedded single-instance store.
 */
export interface GatewayDeps {
  readonly log: Logger;
  readonly redis?: Redis | undefined;
  readonly postgres?: pg.Pool | undefined;
}
