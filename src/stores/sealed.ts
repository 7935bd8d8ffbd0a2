import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/** Format version, first byte of every sealed value: a new format gets a new number. */
const VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;

/**
 * AES-256-GCM for values at rest: webhook payloads in the Redis queue (the security architecture
 * asks that message content is never stored in clear) and TOTP secrets (src/auth/mfa/sealed-secret.ts).
 * The associated data binds a sealed value to its place (the route's queue, the user), so a value
 * copied to another place does not open.
 */
export class Sealer {
  private readonly key: Buffer;
  /** Keys that still open values (never seal): the key before a rotation, while its entries drain. */
  private readonly previous: readonly Buffer[];

  constructor(hexKey: string, previousHexKeys: readonly string[] = []) {
    this.key = parseKey(hexKey);
    this.previous = previousHexKeys.map(parseKey);
  }

  /** version(1) ‖ iv(12) ‖ tag(16) ‖ ciphertext; a fresh random IV per value. */
  seal(plain: Buffer, aad: string): Buffer {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(aad));
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    return Buffer.concat([Buffer.from([VERSION]), iv, cipher.getAuthTag(), body]);
  }

  /** Throws when the value was altered, sealed with another key, or for another place. */
  open(sealed: Buffer, aad: string): Buffer {
    return this.openTelling(sealed, aad).plain;
  }

  /** As `open`, and whether the current key opened it (else the caller may reseal it). */
  openTelling(sealed: Buffer, aad: string): { plain: Buffer; current: boolean } {
    if (sealed.length < 1 + IV_BYTES + TAG_BYTES || sealed[0] !== VERSION) throw new Error('not a sealed value of a known version');
    const iv = sealed.subarray(1, 1 + IV_BYTES);
    const tag = sealed.subarray(1 + IV_BYTES, 1 + IV_BYTES + TAG_BYTES);
    const body = sealed.subarray(1 + IV_BYTES + TAG_BYTES);
    // The current key first; a previous one only when that fails (the tag tells which key sealed it).
    let failure: unknown;
    for (const [i, key] of [this.key, ...this.previous].entries()) {
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, iv);
        decipher.setAAD(Buffer.from(aad));
        decipher.setAuthTag(tag);
        return { plain: Buffer.concat([decipher.update(body), decipher.final()]), current: i === 0 };
      } catch (err) {
        failure = err;
      }
    }
    throw failure instanceof Error ? failure : new Error('cannot open the sealed value');
  }
}

function parseKey(hexKey: string): Buffer {
  const key = Buffer.from(hexKey, 'hex');
  if (key.length !== KEY_BYTES || !/^[0-9a-fA-F]+$/.test(hexKey)) throw new Error(`a sealing key must be ${KEY_BYTES} bytes hex`);
  return key;
}
