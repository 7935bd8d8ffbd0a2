import type { IncomingMessage } from 'node:http';
import { GatewayError } from '../errors.js';
import type { RouteConfig } from '../config/schema.js';
import type { Step } from '../step.js';
import { namesRequestHost } from '../routing/same-host.js';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * True when Origin (or, without it, Referer) names this very host over one of `schemes`: https
 * on routed hosts; the admin listener (plain HTTP on loopback) passes http too.
 */
export function sameSiteRequest(req: IncomingMessage, schemes: readonly string[] = ['https:']): boolean {
  const from = req.headers.origin ?? req.headers.referer;
  if (!from || from === 'null') return false;
  try {
    const url = new URL(from);
    return schemes.includes(url.protocol) && namesRequestHost(url, req.headers.host);
  } catch {
    return false;
  }
}

/**
 * CSRF for cookie sessions: an unsafe method carried by the session cookie must come from the
 * route's own host (Origin, or Referer when a browser sends no Origin). So must a websocket
 * upgrade, though it is a GET: the same-origin policy does not cover websockets, so any page
 * (including one a CORS list names, or a sibling host's, which gets the SameSite=Lax cookie)
 * could otherwise open one with the user's session and read and write over it (cross-site
 * websocket hijacking; RFC 6455 §10.2). Bearer tokens are not sent by browsers on their own,
 * so they need no such check.
 */
export function createCsrf(route: RouteConfig): Step | undefined {
  if (route.auth !== 'session' && route.auth !== 'jwt-or-session') return undefined;
  return (ctx) => {
    if (ctx.principal?.method !== 'session') return;
    if (ctx.kind !== 'upgrade' && SAFE_METHODS.has(ctx.req.method ?? 'GET')) return;
    if (!sameSiteRequest(ctx.req)) {
      const what = ctx.kind === 'upgrade' ? 'websocket upgrade' : ctx.req.method;
      throw new GatewayError('CSRF_REJECTED', `${what} with Origin ${String(ctx.req.headers.origin)} Referer ${String(ctx.req.headers.referer)} on route ${route.name}`);
    }
  };
}
