/** `secrets`: keys and shared secrets, set from `.env` (src/secrets/ writes and rotates them). */
import { z } from 'zod';

const hexKey = (message: string) => z.string().regex(/^[0-9a-fA-F]{64}$/, message);

export const secretsSchema = z
  .strictObject({
    apiSecretKey: z.string().optional(),
    /** Previous JWT keys, `<secret>@<retire-after ISO time>` comma-separated: they verify until then. */
    apiSecretKeyPrevious: z.string().optional(),
    whatsappAppSecret: z.string().optional(),
    whatsappVerifyToken: z.string().optional(),
    /** The app secret before a rotation: its signatures are accepted until it is removed. */
    whatsappAppSecretPrevious: z.string().optional(),
    /** AES-256-GCM key of queued webhook payloads (message content is never at rest in clear). */
    whatsappQueueKey: hexKey('use 32 bytes hex (64 characters): openssl rand -hex 32').optional(),
    /** The queue key before a rotation: still opens queued payloads (never seals) until they drain. */
    whatsappQueueKeyPrevious: hexKey('use 32 bytes hex (64 characters): the WHATSAPP_QUEUE_KEY before the rotation').optional(),
  })
  .prefault({});
