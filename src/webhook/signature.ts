import { createHmac, timingSafeEqual } from 'node:crypto';
import { GatewayError } from '../errors.js';

/** Meta's header: `sha256=` and 64 hex digits of HMAC-SHA256 over the exact raw body. */
const SIGNATURE = /^sha256=([0-9a-fA-F]{64})$/;

/** The app secrets a signature may be made with: the current one, and the previous during a rotation. */
export interface AppSecrets {
  readonly current: string;
  readonly previous?: string | undefined;
}

export type MatchedSecret = 'current' | 'previous';

/**
 * Checks `X-Hub-Signature-256` against the raw bytes, before anything parses them. Every
 * candidate secret is computed and compared in constant time, so the answer's timing says
 * nothing about how close a forged signature came. Throws WEBHOOK_SIGNATURE_INVALID.
 */
export function verifySignature(header: string | string[] | undefined, body: Buffer, secrets: AppSecrets): MatchedSecret {
  if (header === undefined) throw new GatewayError('WEBHOOK_SIGNATURE_INVALID', 'X-Hub-Signature-256 missing');
  // Node joins a repeated custom header with ", ", which the pattern refuses: one signature only.
  const m = typeof header === 'string' ? SIGNATURE.exec(header) : null;
  if (!m) throw new GatewayError('WEBHOOK_SIGNATURE_INVALID', 'X-Hub-Signature-256 malformed');
  const given = Buffer.from(m[1] as string, 'hex');
  const candidates: [MatchedSecret, string][] = [['current', secrets.current]];
  if (secrets.previous) candidates.push(['previous', secrets.previous]);
  let matched: MatchedSecret | undefined;
  for (const [name, secret] of candidates) {
    const expected = createHmac('sha256', secret).update(body).digest();
    if (timingSafeEqual(expected, given) && matched === undefined) matched = name;
  }
  if (!matched) throw new GatewayError('WEBHOOK_SIGNATURE_INVALID', 'X-Hub-Signature-256 does not match the body');
  return matched;
}

/** The header value Meta would send for `body`: for tests and the demo. */
export function signBody(body: Buffer | string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}
