import { createHash, createHmac, randomBytes } from 'node:crypto';

/** Hex characters kept of a keyed identifier hash: 64 bits, plenty to correlate, too short to matter. */
const IDENTIFIER_HASH_CHARS = 16;
/** Hex characters kept of a token's hash in the logs. */
const TOKEN_HASH_CHARS = 12;
/** What `IdentifierHasher.hash` returns: a hash is never hashed again. */
export const IDENTIFIER_HASH = /^id:[0-9a-f]{16}$/;
/** Something that reads as a phone number: digits with the usual separators. */
const PHONE_LIKE = /^\+?[\d\s().-]{6,}$/;

/**
 * The keyed hash of personal identifiers (LOG_HASH_KEY), owned by what builds the logger: the
 * audit logger makes one from its options, and every line it redacts uses it. Without a key
 * an ephemeral random one is used: hashes then only correlate within this object's lifetime
 * (development only; the config policy refuses that in production).
 */
export class IdentifierHasher {
  /** True when the key was generated here, not given (LOG_HASH_KEY unset). */
  readonly ephemeral: boolean;
  private readonly key: Buffer;

  constructor(secret: string | undefined) {
    this.ephemeral = !secret;
    this.key = secret ? Buffer.from(secret, 'utf8') : randomBytes(32);
  }

  /**
   * A personal identifier (a WhatsApp phone number `from` / `wa_id` / `recipient_id`) as it may
   * appear in a log: a keyed hash (HMAC-SHA-256 with LOG_HASH_KEY), so lines about the same
   * person can be correlated, but the number cannot be recovered by trying every number without
   * the key. Phone numbers are reduced to digits first, so `+34 600-11` and `3460011` match.
   */
  hash(value: string): string {
    const normal = PHONE_LIKE.test(value) ? value.replace(/\D/g, '') : value;
    return `id:${createHmac('sha256', this.key).update(normal).digest('hex').slice(0, IDENTIFIER_HASH_CHARS)}`;
  }
}

/**
 * A credential as it may appear in a log: a short unkeyed SHA-256 prefix. Tokens are
 * high-entropy, so the prefix gives nothing away, and an operator holding a token can compute
 * it to find the requests that used it.
 */
export function shortTokenHash(value: string): string {
  return `sha256:${createHash('sha256').update(value).digest('hex').slice(0, TOKEN_HASH_CHARS)}`;
}
