import type { IncomingMessage } from 'node:http';
import { GatewayError } from '../errors.js';

const BEARER = /^Bearer +([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)\s*$/i;

/**
 * The bearer token of the Authorization header: undefined when there is no Authorization
 * header; AUTH_INVALID when there are several, or it is not a well-formed Bearer JWT.
 */
export function readBearer(req: IncomingMessage): string | undefined {
  let count = 0;
  for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i]?.toLowerCase() === 'authorization') count++;
  if (count === 0) return undefined;
  if (count > 1) throw new GatewayError('AUTH_AMBIGUOUS', 'several Authorization headers');
  const m = BEARER.exec(req.headers.authorization ?? '');
  if (!m?.[1]) throw new GatewayError('AUTH_INVALID', 'Authorization is not a Bearer JWT');
  return m[1];
}

/** `Basic` credentials (for /auth/token), or undefined. */
export function readBasic(req: IncomingMessage): { name: string; secret: string } | undefined {
  const m = /^Basic +([A-Za-z0-9+/=]+)\s*$/i.exec(req.headers.authorization ?? '');
  if (!m?.[1]) return undefined;
  const text = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon <= 0) return undefined;
  return { name: text.slice(0, colon), secret: text.slice(colon + 1) };
}
