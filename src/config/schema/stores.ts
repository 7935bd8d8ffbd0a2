/** `stores`: where shared state lives (Redis, PostgreSQL), else embedded files in `dataDir`. */
import { z } from 'zod';
import { DEFAULTS } from '../defaults.js';
import { list, postgresUrl } from './fields.js';

export const storesSchema = z
  .strictObject({
    redisUrl: z.string().regex(/^rediss?:\/\//, 'use redis:// or rediss://').optional(),
    redisPassword: z.string().optional(),
    /** Redis Sentinel: `host:port` list; the master named `redisSentinelName` (default mymaster) is asked of them. */
    redisSentinels: list.pipe(z.array(z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'use host:port'))).optional(),
    redisSentinelName: z.string().min(1).optional(),
    databaseUrl: postgresUrl.optional(),
    /** Embedded stores (users, revocations) without DATABASE_URL / REDIS_URL; files of mode 0600. */
    dataDir: z.string().default(DEFAULTS.dataDir),
  })
  .prefault({});
