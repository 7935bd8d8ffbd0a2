import { X509Certificate } from 'node:crypto';

/** Renew once this share of the lifetime has passed (Let's Encrypt's own advice for 90-day certificates: at 60 days). */
export const RENEW_AT_FRACTION = 2 / 3;
/** First wait after a failed order; doubles with each failure in a row. */
export const BACKOFF_FIRST_MS = 5 * 60_000;
/** The longest wait between attempts (a CA's failed-validation limits are per hour). */
export const BACKOFF_MAX_MS = 6 * 3_600_000;

/** When a certificate valid from `validFrom` to `validTo` is due for renewal. */
export function renewalDue(validFrom: Date, validTo: Date, fraction = RENEW_AT_FRACTION): Date {
  return new Date(validFrom.getTime() + (validTo.getTime() - validFrom.getTime()) * fraction);
}

/** The wait after `failures` failed attempts in a row: exponential, capped. */
export function backoffDelay(failures: number, firstMs = BACKOFF_FIRST_MS, maxMs = BACKOFF_MAX_MS): number {
  return Math.min(maxMs, firstMs * 2 ** Math.max(0, Math.min(failures - 1, 30)));
}

const b64url = (b: Buffer): string => b.toString('base64url');

/** Reads one DER length at `at`; returns [length, offset of the value]. */
function derLength(der: Buffer, at: number): [number, number] {
  const first = der[at] ?? 0;
  if (first < 0x80) return [first, at + 1];
  const n = first & 0x7f;
  let len = 0;
  for (let i = 0; i < n; i++) len = len * 256 + (der[at + 1 + i] ?? 0);
  return [len, at + 1 + n];
}

/** The authority key identifier of a certificate (extension 2.5.29.35, its keyIdentifier), or undefined. */
export function authorityKeyId(x509: X509Certificate): Buffer | undefined {
  const der = x509.raw;
  const oid = Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x23]);
  let at = der.indexOf(oid);
  if (at < 0) return undefined;
  at += oid.length;
  if (der[at] === 0x01) at += 3; // critical BOOLEAN
  if (der[at] !== 0x04) return undefined; // extnValue OCTET STRING
  [, at] = derLength(der, at + 1);
  if (der[at] !== 0x30) return undefined; // AuthorityKeyIdentifier SEQUENCE
  [, at] = derLength(der, at + 1);
  if (der[at] !== 0x80) return undefined; // [0] keyIdentifier
  const [len, start] = derLength(der, at + 1);
  return der.subarray(start, start + len);
}

/**
 * The certificate's ARI identifier (RFC 9773 §4.1): base64url(AKI keyIdentifier) "."
 * base64url(serial, as its DER INTEGER content octets).
 */
export function ariCertId(certPem: string): string | undefined {
  const x509 = new X509Certificate(certPem);
  const aki = authorityKeyId(x509);
  if (!aki) return undefined;
  let hex = x509.serialNumber.replace(/:/g, '');
  if (hex.length % 2 === 1) hex = `0${hex}`;
  let serial = Buffer.from(hex, 'hex');
  // DER INTEGERs are signed: a high first bit means a leading zero octet.
  if ((serial[0] ?? 0) & 0x80) serial = Buffer.concat([Buffer.from([0]), serial]);
  return `${b64url(aki)}.${b64url(serial)}`;
}

/** A renewalInfo answer's window (RFC 9773 §4.2). */
export interface SuggestedWindow {
  start: Date;
  end: Date;
}

export function parseRenewalInfo(body: unknown): SuggestedWindow | undefined {
  const w = (body as { suggestedWindow?: { start?: unknown; end?: unknown } } | undefined)?.suggestedWindow;
  if (typeof w?.start !== 'string' || typeof w.end !== 'string') return undefined;
  const start = new Date(w.start);
  const end = new Date(w.end);
  if (Number.isNaN(start.getTime()) || Number.isNaN(end.getTime()) || end < start) return undefined;
  return { start, end };
}

/**
 * When to renew: two thirds of the lifetime, or earlier when the CA's renewal window (ARI)
 * starts earlier (a revocation or an incident). RFC 9773 §4.2 asks for a random time inside
 * the window, so instances and clients do not all come at once.
 */
export function renewalTime(validFrom: Date, validTo: Date, window: SuggestedWindow | undefined, random: () => number = Math.random): Date {
  const plain = renewalDue(validFrom, validTo);
  if (!window) return plain;
  const chosen = new Date(window.start.getTime() + (window.end.getTime() - window.start.getTime()) * random());
  return chosen < plain ? chosen : plain;
}
