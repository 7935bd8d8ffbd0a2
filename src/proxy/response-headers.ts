import type { IncomingHttpHeaders } from 'node:http';
import type { RequestContext } from '../context.js';
import type { RouteConfig } from '../config/schema.js';

const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authenticate'];

/** Framing is rebuilt by Node for the client whatever the upstream's Connection says. */
const KEEP = new Set(['content-length']);

/**
 * Headers the upstream declares hop-by-hop in its own `Connection` (RFC 9110 §7.6.1): they are
 * for the gateway's hop only, often internal details, and must not reach the client.
 */
function namedInConnection(headers: IncomingHttpHeaders): string[] {
  return String(headers.connection ?? '')
    .split(',')
    .map((t) => t.trim().toLowerCase())
    .filter((t) => t !== '' && !KEEP.has(t));
}

/**
 * Security headers on a proxied response, edited in place before it is written. The
 * upstream's own Content-Security-Policy is left alone and none is added: Metabase ships a
 * hashed CSP and two CSP headers would intersect and break it.
 */
export function secureUpstreamHeaders(headers: IncomingHttpHeaders, ctx: RequestContext, route: RouteConfig, hsts: string | undefined): void {
  for (const h of [...namedInConnection(headers), ...HOP_BY_HOP]) delete headers[h];
  delete headers['x-powered-by'];
  if (hsts) headers['strict-transport-security'] = hsts;
  headers['x-content-type-options'] ??= 'nosniff';
  headers['referrer-policy'] ??= 'strict-origin-when-cross-origin';
  headers['x-request-id'] = ctx.id;
  // The gateway owns CORS: with `cors:` on the route it answers from that list, without it no
  // cross-origin read is allowed. An upstream's own answer (FastAPI's `allow_origins=["*"]`,
  // say) would quietly widen either.
  for (const name of Object.keys(headers)) if (name.startsWith('access-control-')) delete headers[name];
  for (const [name, value] of Object.entries(ctx.responseHeaders)) {
    if (name === 'vary' && headers.vary) {
      const existing = String(headers.vary);
      if (!existing.split(',').some((v) => v.trim().toLowerCase() === value.toLowerCase())) headers.vary = `${existing}, ${value}`;
    } else {
      headers[name] = value;
    }
  }
  if (ctx.setCookies.length > 0) headers['set-cookie'] = [...(headers['set-cookie'] ?? []), ...ctx.setCookies];
  for (const name of route.responseHeaders?.remove ?? []) delete headers[name];
  for (const [name, value] of Object.entries(route.responseHeaders?.set ?? {})) headers[name] = value;
}
