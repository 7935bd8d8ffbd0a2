import { Secret, TOTP } from 'otpauth';

/** RFC 6238 as every authenticator app implements it: HMAC-SHA-1, 6 digits, 30-second steps. */
export const TOTP_PERIOD_S = 30;
export const TOTP_DIGITS = 6;
/** One step either side: a phone clock 30 s off, or a code typed as it turned, still works (RFC 6238 §5.2). */
export const TOTP_WINDOW = 1;
/** 160 bits, the HMAC-SHA-1 block the RFC recommends (RFC 4226 §4, R6). */
const SECRET_BYTES = 20;
const ISSUER = 'crm-gateway';

/** A new random TOTP secret, base32 (what authenticator apps take). */
export function newTotpSecret(): string {
  return new Secret({ size: SECRET_BYTES }).base32;
}

function totp(secretBase32: string, label = ''): TOTP {
  return new TOTP({ issuer: ISSUER, label, algorithm: 'SHA1', digits: TOTP_DIGITS, period: TOTP_PERIOD_S, secret: Secret.fromBase32(secretBase32) });
}

/** The `otpauth://` URI the enrolment QR code carries. */
export function totpUri(secretBase32: string, user: string): string {
  return totp(secretBase32, user).toString();
}

/**
 * The time step a code belongs to, within ±TOTP_WINDOW of `now`; undefined when it matches none.
 * The caller accepts it only when the step is later than the last one accepted for the user:
 * that is what makes every code single-use, including one seen over a shoulder 40 s ago.
 */
export function matchTotp(secretBase32: string, code: string, now: number = Date.now()): number | undefined {
  if (!new RegExp(`^\\d{${TOTP_DIGITS}}$`).test(code)) return undefined;
  const delta = totp(secretBase32).validate({ token: code, timestamp: now, window: TOTP_WINDOW });
  if (delta === null) return undefined;
  return Math.floor(now / 1000 / TOTP_PERIOD_S) + delta;
}

/** The code of `at` (tests and the demo's `--show-code`). */
export function totpCode(secretBase32: string, at: number = Date.now()): string {
  return totp(secretBase32).generate({ timestamp: at });
}
