/** `server`: limits and timeouts of the HTTP server itself, and its worker processes. */
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { DEFAULTS } from '../defaults.js';
import { duration, size } from './fields.js';

export const serverSchema = z
  .strictObject({
    maxHeaderSize: z.number().int().min(1024).max(1024 * 1024).default(DEFAULTS.maxHeaderSize),
    maxUrlLength: z.number().int().min(256).default(DEFAULTS.maxUrlLength),
    headersTimeout: duration.prefault(DEFAULTS.headersTimeout),
    requestTimeout: duration.prefault(DEFAULTS.requestTimeout),
    keepAliveTimeout: duration.prefault(DEFAULTS.keepAliveTimeout),
    shutdownTimeout: duration.prefault(DEFAULTS.shutdownTimeout),
    sendTimeout: duration.prefault(DEFAULTS.sendTimeout),
    maxBufferedBodies: size.prefault(DEFAULTS.maxBufferedBodies).pipe(z.number().int().min(64 * 1024, 'at least 64kb')),
    bodyReadTimeout: duration.prefault(DEFAULTS.bodyReadTimeout).pipe(z.number().min(1_000, 'at least 1s')),
    /** Worker processes (node:cluster) on this host; `auto` is one per core. More than one needs REDIS_URL. */
    workers: z
      .union([z.literal('auto'), z.number(), z.string().regex(/^\d+$/, 'a number or auto').transform(Number)])
      .transform((v) => (v === 'auto' ? availableParallelism() : v))
      .pipe(z.number().int().min(1).max(256))
      .default(DEFAULTS.workers),
  })
  .prefault({});
