/** `whatsapp`: the webhook's delivery to the CRM API (routes with `auth: whatsapp`). */
import { z } from 'zod';
import { DEFAULTS } from '../defaults.js';
import { duration } from './fields.js';

export const whatsappSchema = z
  .strictObject({
    ackTimeout: duration.prefault(DEFAULTS.whatsappAckTimeout),
    retryMin: duration.prefault(DEFAULTS.whatsappRetryMin),
    retryMax: duration.prefault(DEFAULTS.whatsappRetryMax),
    maxQueued: z.number().int().positive().default(DEFAULTS.whatsappMaxQueued),
    /**
     * Answer Meta only once Redis confirms the payload is fsynced to its append-only file
     * (WAITAOF 1 0, Redis 7.2+; refused at startup on an older Redis). Off: acknowledged once
     * in Redis's memory, which `appendfsync everysec` puts on disk within about 1 s.
     */
    waitAof: z.boolean().default(false),
    /**
     * Meta's client certificate on webhook deliveries (src/tls/client-certs.ts): asked for
     * only on the webhook routes' hosts, which must be hosts of their own. `required`: a
     * delivery without one is refused; `optional`: one is checked when sent. Unset: off.
     */
    mtls: z.enum(['required', 'optional']).optional(),
    /** Meta's outbound CA (PEM, operator-provided): the only trust anchor for client certificates. */
    mtlsCaFile: z.string().min(1).optional(),
  })
  .prefault({});
