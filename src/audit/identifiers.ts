import { createHash, createHmac, randomBytes } from 'node:crypto';

/** Hex characters kept of a keyed identifier hash: 64 bits, plenty to correlate, too short to matter. */
const IDENTIFIER_HASH_CHARS = 16;
/** Hex characters kept of a token's hash in the logs. */
const TOKEN_HASH_CHARS = 12;
/** Something that reads as a phone number: digits with the usual separators. */
const PHONE_LIKE = /^\+?[\d\s().-]{6,}$/;

let key: Buffer | undefined;
let keyIsEphemeral = false;

/**
 * Sets the key of `hashIdentifier` (LOG_HASH_KEY). Without one, an ephemeral random key is
 * used: hashes then only correlate within this process's lifetime (development only; the
 * config policy refuses that in production).
 */
export function setIdentifierKey(secret: string | undefined): { ephemeral: boolean } {
  if (secret) {
    key = Buffer.from(secret, 'utf8');
    keyIsEphemeral = false;
  } else {
    key = randomBytes(32);
    keyIsEphemeral = true;
  }
  return { ephemeral: keyIsEphemeral };
}

function currentKey(): Buffer {
  if (!key) setIdentifierKey(undefined);
  return key as Buffer;
}

/** Whether the identifier key in use was generated for this process only. */
export function identifierKeyIsEphemeral(): boolean {
  currentKey();
  return keyIsEphemeral;
}

/**
 * A personal identifier (a WhatsApp phone number `from` / `wa_id` / `recipient_id`) as it may
 * appear in a log: a keyed hash (HMAC-SHA-256 with LOG_HASH_KEY), so lines about the same
 * person can be correlated, but the number cannot be recovered by trying every number without
 * the key. Phone numbers are reduced to digits first, so `+34 600-11` and `3460011` match.
 */
export function hashIdentifier(value: string): string {
  const normal = PHONE_LIKE.test(value) ? value.replace(/\D/g, '') : value;
  return `id:${createHmac('sha256', currentKey()).update(normal).digest('hex').slice(0, IDENTIFIER_HASH_CHARS)}`;
}

/**
 * A credential as it may appear in a log: a short unkeyed SHA-256 prefix. Tokens are
 * high-entropy, so the prefix gives nothing away, and an operator holding a token can compute
 * it to find the requests that used it.
 */
export function shortTokenHash(value: string): string {
  return `sha256:${createHash('sha256').update(value).digest('hex').slice(0, TOKEN_HASH_CHARS)}`;
}
