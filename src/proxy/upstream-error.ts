import { errors } from 'undici';
import { GatewayError, isGatewayError } from '../errors.js';
import type { RequestContext } from '../context.js';

/** Network errors named as such in the security log (their messages say no more). */
const REFUSED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ECONNRESET', 'EPIPE']);

/** undici's own readings of an answer that is not valid HTTP (its parser's errors are `HPE_*`, as Node's). */
const BAD_RESPONSE = new Set(['UND_ERR_HEADERS_OVERFLOW', 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'UND_ERR_RES_EXCEEDED_MAX_SIZE']);

/** Node's and OpenSSL's codes of a refused TLS handshake: a verify result (X509_V_ERR_* names), a name mismatch, an alert. */
const TLS_ERROR = /^(ERR_TLS_|ERR_SSL_|UNABLE_TO_|CERT_|SELF_SIGNED_|DEPTH_ZERO_|HOSTNAME_MISMATCH|INVALID_CA|INVALID_PURPOSE)/;

/** undici's own timeouts (off in the forwarder's pools, which time routes themselves). */
const TIMEOUTS = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/**
 * What a failed upstream exchange tells the client: 504 after the route timeout, 502
 * UPSTREAM_BAD_RESPONSE for an answer that is not HTTP, else 502 UPSTREAM_UNAVAILABLE
 * (refused, reset, unreachable, TLS refused). The cause goes to the log only.
 */
export function upstreamError(err: unknown, ctx: RequestContext): GatewayError {
  if (isGatewayError(err)) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code ?? '';
  const message = (err as Error | undefined)?.message ?? 'unknown';
  if (ctx.upstreamTimedOut || TIMEOUTS.has(code)) return new GatewayError('UPSTREAM_TIMEOUT', 'no answer within route timeout');
  // undici's parser errors carry no code (HPE_* from Node's); its SocketError 'bad response' is
  // an answer with no request waiting, or a 100 Continue it never asked for.
  if (err instanceof errors.HTTPParserError || code.startsWith('HPE_') || BAD_RESPONSE.has(code) || (code === 'UND_ERR_SOCKET' && message.startsWith('bad '))) {
    return new GatewayError('UPSTREAM_BAD_RESPONSE', `${code || 'HTTPParserError'}: ${message}`);
  }
  // An https upstream whose certificate, name or client-certificate demand failed (upstreamTls): named as TLS in the log.
  if (TLS_ERROR.test(code)) return new GatewayError('UPSTREAM_UNAVAILABLE', `TLS ${code}: ${message}`);
  return new GatewayError('UPSTREAM_UNAVAILABLE', REFUSED.has(code) ? code : message);
}
