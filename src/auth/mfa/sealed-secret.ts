import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

/** Version tag of the sealed form: a later format gets a new tag, never a new meaning for this one. */
const FORMAT = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;
/**
 * HKDF-SHA256 (RFC 5869) of API_SECRET_KEY with its own `info`: the TOTP key can never equal the
 * JWT signing key, nor any other key derived from the same secret for another purpose.
 */
const HKDF_SALT = 'crm-gateway';
const HKDF_INFO = 'crm-gateway/mfa/totp-secret/v1';

function deriveKey(apiSecretKey: string): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(apiSecretKey, 'utf8'), HKDF_SALT, HKDF_INFO, 32));
}

/**
 * TOTP secrets at rest: AES-256-GCM under a key derived from API_SECRET_KEY by HKDF-SHA256, a
 * fresh 96-bit IV per seal, and the user's name as associated data, so a row copied onto another
 * account (someone with write access to the store) does not open there. `open` also tries the
 * previous keys of API_SECRET_KEY_PREVIOUS; `fresh` says the current key sealed it, else the
 * caller reseals (a secret opened with a previous key is rewritten with the current one at use).
 */
export class SecretSealer {
  private readonly current: Buffer;
  private readonly previous: readonly Buffer[];

  constructor(apiSecretKey: string, previousKeys: readonly string[] = []) {
    this.current = deriveKey(apiSecretKey);
    this.previous = previousKeys.map(deriveKey);
  }

  seal(plain: string, user: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.current, iv);
    cipher.setAAD(Buffer.from(`totp:${user}`, 'utf8'));
    const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return [FORMAT, iv.toString('base64url'), body.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.');
  }

  /** The plain secret, or undefined when no key opens it (tampered, another user's, or a retired key's). */
  open(sealed: string, user: string): { plain: string; fresh: boolean } | undefined {
    const [format, iv, body, tag, extra] = sealed.split('.');
    if (format !== FORMAT || iv === undefined || body === undefined || tag === undefined || extra !== undefined) return undefined;
    const ivBytes = Buffer.from(iv, 'base64url');
    const tagBytes = Buffer.from(tag, 'base64url');
    if (ivBytes.length !== IV_BYTES || tagBytes.length !== TAG_BYTES) return undefined;
    for (const [i, key] of [this.current, ...this.previous].entries()) {
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, ivBytes);
        decipher.setAAD(Buffer.from(`totp:${user}`, 'utf8'));
        decipher.setAuthTag(tagBytes);
        const plain = Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8');
        return { plain, fresh: i === 0 };
      } catch {
        // The next key, if any: a wrong key and a tampered text fail alike.
      }
    }
    return undefined;
  }
}
