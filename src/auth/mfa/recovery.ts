import { createHash, randomBytes } from 'node:crypto';

export const RECOVERY_CODE_COUNT = 10;
/** 10 bytes = 80 bits per code, written as 16 base32 characters in four groups. */
const RECOVERY_CODE_BYTES = 10;
const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function base32(bytes: Buffer): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

/** Fresh recovery codes, as shown once to the user: `ABCD-EFGH-IJKL-MNOP`. */
export function newRecoveryCodes(): string[] {
  return Array.from({ length: RECOVERY_CODE_COUNT }, () => base32(randomBytes(RECOVERY_CODE_BYTES)).match(/.{4}/g)?.join('-') ?? '');
}

/** What the user typed, in the one form that is hashed: upper case, no spaces or dashes; undefined when it cannot be a code. */
export function normalizeRecoveryCode(typed: string): string | undefined {
  const plain = typed.toUpperCase().replace(/[\s-]/g, '');
  return /^[A-Z2-7]{16}$/.test(plain) ? plain : undefined;
}

/**
 * The stored form: SHA-256 over the user's name and the code. Why not scrypt (as passwords): a
 * code is 80 random bits, so there is nothing to guess from a leaked hash (2^80 SHA-256 runs is
 * out of anyone's reach) and a slow hash would buy nothing but a slower sign-in (the same reasoning
 * as the API clients' secrets, src/auth/store/types.ts). The name makes two users' equal codes
 * (never expected) hash apart, and a hash copied to another account useless there.
 */
export function hashRecoveryCode(user: string, typed: string): string | undefined {
  const plain = normalizeRecoveryCode(typed);
  return plain === undefined ? undefined : createHash('sha256').update(`crm-gateway/recovery:${user}:${plain}`, 'utf8').digest('hex');
}
