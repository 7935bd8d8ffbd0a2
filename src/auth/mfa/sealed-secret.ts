import { hkdfSync } from 'node:crypto';
import { Sealer } from '../../stores/sealed.js';

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
 * TOTP secrets at rest: AES-256-GCM (the one sealer, src/stores/sealed.ts) under a key derived
 * from API_SECRET_KEY by HKDF-SHA256, a fresh 96-bit IV per seal, and the user's name as
 * associated data, so a row copied onto another account (someone with write access to the
 * store) does not open there. `open` also tries the previous keys of API_SECRET_KEY_PREVIOUS;
 * `fresh` says the current key sealed it, else the caller reseals (a secret opened with a
 * previous key is rewritten with the current one at use). Stored as base64url text.
 */
export class SecretSealer {
  private readonly sealer: Sealer;

  constructor(apiSecretKey: string, previousKeys: readonly string[] = []) {
    this.sealer = new Sealer(deriveKey(apiSecretKey).toString('hex'), previousKeys.map((k) => deriveKey(k).toString('hex')));
  }

  seal(plain: string, user: string): string {
    return this.sealer.seal(Buffer.from(plain, 'utf8'), aad(user)).toString('base64url');
  }

  /** The plain secret, or undefined when no key opens it (tampered, another user's, or a retired key's). */
  open(sealed: string, user: string): { plain: string; fresh: boolean } | undefined {
    if (!/^[A-Za-z0-9_-]+$/.test(sealed)) return undefined;
    try {
      const { plain, current } = this.sealer.openTelling(Buffer.from(sealed, 'base64url'), aad(user));
      return { plain: plain.toString('utf8'), fresh: current };
    } catch {
      return undefined; // a wrong key and a tampered text fail alike
    }
  }
}

const aad = (user: string): string => `totp:${user}`;
