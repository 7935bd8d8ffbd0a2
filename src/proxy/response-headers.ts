import type { IncomingHttpHeaders } from 'node:http';
import type { RequestContext } from '../context.js';
import type { RouteConfig } from '../config/schema.js';
import { scopeUpstreamCookie } from './upstream-cookies.js';
import { rewriteRefresh, rewriteUpstreamUrl, type Connected, type PublicView, type UpstreamOrigin } from './upstream-urls.js';

const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authenticate'];

/**
 * Headers that name the upstream's software and version: they tell an attacker which CVEs to
 * try and nothing to a user. Dropped unless the route's `responseHeaders.keep` names them.
 */
export const BANNER_HEADERS = ['server', 'x-powered-by', 'x-aspnet-version', 'x-aspnetmvc-version', 'x-generator', 'x-runtime', 'x-backend-server', 'x-server-powered-by', 'x-nextjs-cache'] as const;

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

/** What a response needs to tell the upstream's URLs from others and to name the public origin. */
export interface UpstreamView {
  readonly upstream: UpstreamOrigin;
  /** The address the response came from, or the addresses the upstream was connected at. */
  readonly connected: Connected;
  readonly view: PublicView;
}

export function dropBanners(headers: IncomingHttpHeaders, route: RouteConfig): void {
  const keep = route.responseHeaders?.keep ?? [];
  for (const name of BANNER_HEADERS) if (!keep.includes(name)) delete headers[name];
}

/**
 * Location, Content-Location and Refresh naming the upstream point at the public origin, and
 * upstream cookies are host-only (and Secure over HTTPS). See upstream-urls.ts and
 * upstream-cookies.ts for why. Also used on websocket handshake answers.
 */
export function scopeToPublicOrigin(headers: IncomingHttpHeaders, o: UpstreamView): void {
  for (const name of ['location', 'content-location'] as const) {
    const v = headers[name];
    if (typeof v === 'string') headers[name] = rewriteUpstreamUrl(v, o.upstream, o.connected, o.view);
  }
  const refresh = headers.refresh;
  if (typeof refresh === 'string') headers.refresh = rewriteRefresh(refresh, o.upstream, o.connected, o.view);
  const cookies = headers['set-cookie'];
  if (cookies) {
    const scoped = cookies.flatMap((c) => scopeUpstreamCookie(c, { secure: o.view.scheme === 'https', prefix: o.view.prefix }) ?? []);
    if (scoped.length > 0) headers['set-cookie'] = scoped;
    else delete headers['set-cookie'];
  }
}

/**
 * Security headers on a proxied response, edited in place before it is written. The
 * upstream's own Content-Security-Policy is left alone and none is added: Metabase ships a
 * hashed CSP and two CSP headers would intersect and break it.
 */
export function secureUpstreamHeaders(headers: IncomingHttpHeaders, ctx: RequestContext, route: RouteConfig, hsts: string | undefined, origin: UpstreamView): void {
  for (const h of [...namedInConnection(headers), ...HOP_BY_HOP]) delete headers[h];
  dropBanners(headers, route);
  scopeToPublicOrigin(headers, origin);
  if (hsts) headers['strict-transport-security'] = hsts;
  headers['x-content-type-options'] ??= 'nosniff';
  headers['referrer-policy'] ??= 'strict-origin-when-cross-origin';
  headers['x-request-id'] = ctx.id;
  // The gateway owns CORS: with `cors:` on the route it answers from that list, without it no
  // cross-origin read is allowed. An upstream's own answer (FastAPI's `allow_origins=["*"]`,
  // say) would quietly widen either.
  for (const name of Object.keys(headers)) if (name.startsWith('access-control-')) delete headers[name];
  for (const [name, value] of Object.entries(ctx.reply.headers)) {
    if (name === 'vary' && headers.vary) {
      const existing = String(headers.vary);
      if (!existing.split(',').some((v) => v.trim().toLowerCase() === value.toLowerCase())) headers.vary = `${existing}, ${value}`;
    } else {
      headers[name] = value;
    }
  }
  if (ctx.reply.cookies.length > 0) headers['set-cookie'] = [...(headers['set-cookie'] ?? []), ...ctx.reply.cookies];
  for (const name of route.responseHeaders?.remove ?? []) delete headers[name];
  for (const [name, value] of Object.entries(route.responseHeaders?.set ?? {})) headers[name] = value;
}
