import type { AuthEndpointKit, AuthHandler } from '../paths.js';
import { LOGIN_PATH } from '../challenge.js';
import { createTokenAuthenticate } from '../request-auth.js';
import type { RouteConfig } from '../../config/schema.js';

/** Where a forward-auth check sends a browser whose session needs renewing (on the app's host, through the edge). */
export const RENEW_PATH = '/auth/renew';

/**
 * `/auth/renew?rd=<path>`: renews this host's session (the route's session authentication,
 * which rotates the refresh token and sets both cookies on this answer, one the edge passes to
 * the browser as it is) and sends the browser back with 307, which keeps the method and body.
 * Without a live session it sends the browser to sign in, then to `rd`. A forward-auth check
 * cannot renew by itself: a 2xx to an edge never carries Set-Cookie to the browser.
 */
export function createRenewEndpoint(kit: AuthEndpointKit): AuthHandler {
  return async (ctx, res) => {
    const rd = kit.returnTo(ctx, new URLSearchParams(ctx.target?.query ?? '').get('rd'));
    const route = ctx.route?.config as RouteConfig;
    const authenticate = createTokenAuthenticate({ ...route, auth: 'session' }, kit.auth, kit.log);
    const answered = await authenticate(ctx);
    // A stale session: the step cleared it and named the sign-in page with this path as `rd`.
    delete ctx.reply.headers.location;
    ctx.reply.redirect(res, answered ? 302 : 307, answered ? `${LOGIN_PATH}?rd=${encodeURIComponent(rd)}` : rd);
  };
}
