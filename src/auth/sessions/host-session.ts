import type { RequestContext } from '../../context.js';
import { GatewayError, isGatewayError } from '../../errors.js';
import type { Logger } from '../../log/logger.js';
import { ACCESS_COOKIE, REFRESH_COOKIE, parseCookies, setCookie, singleCookie } from '../cookies.js';
import { sessionPrincipal } from '../request-auth.js';
import type { AuthService } from '../service.js';
import type { StaffSession } from './types.js';

/**
 * Gives this host its part of a staff session: a refresh family recorded on the session (so
 * ending the session revokes it) and a session token carrying `sid` and `amr`, both as this
 * host's `__Host-` cookies. Used by a sign-in (CompleteSignIn) and by the SSO hand-off's
 * callback. `auth_time` is the session's, so a password change voids every host's part.
 */
export async function issueHostSession(ctx: RequestContext, auth: AuthService, session: StaffSession): Promise<{ family: string; tokenId: string }> {
  const family = await auth.refresh.start(session.subject, session.roles, { authTime: session.authTime / 1000, sid: session.id, amr: session.factors });
  await auth.sessions.registry.addFamily(session.id, family.record.family);
  const issued = auth.tokens.issue({
    sub: session.subject,
    roles: session.roles,
    ttlMs: auth.config.sessionTtl,
    typ: 'session',
    family: family.record.family,
    authTime: family.record.authTime,
    sid: session.id,
    amr: session.factors,
  });
  await auth.refresh.setAccess(family.record.family, issued.claims.jti, issued.claims.exp);
  ctx.reply.cookie(setCookie(ACCESS_COOKIE, issued.token, auth.config.sessionTtl), setCookie(REFRESH_COOKIE, family.token, auth.config.refreshTtl));
  ctx.principal = { subject: session.subject, roles: session.roles, method: 'session', tokenId: issued.claims.jti, expiresAt: issued.claims.exp * 1000, sessionId: session.id, factors: session.factors };
  return { family: family.record.family, tokenId: issued.claims.jti };
}

/**
 * The staff session this browser holds on this host (renewing an expired access token as a
 * route would), or undefined when it holds none that is good. Cookies sent twice (tossed from
 * a sibling subdomain) are refused, as on every route. A store that cannot answer (5xx) is
 * refused too: it says nothing about the session.
 */
export async function browserSession(ctx: RequestContext, auth: AuthService, log: Logger): Promise<{ subject: string; sessionId: string | undefined } | undefined> {
  const cookies = parseCookies(ctx.req.headers.cookie);
  const access = singleCookie(cookies, ACCESS_COOKIE);
  const refresh = singleCookie(cookies, REFRESH_COOKIE);
  if (access === 'ambiguous' || refresh === 'ambiguous') throw new GatewayError('AUTH_AMBIGUOUS', 'gateway cookie sent more than once');
  if (!access && !refresh) return undefined;
  try {
    await sessionPrincipal(ctx, auth, log, access, refresh);
  } catch (err) {
    if (isGatewayError(err) && err.status < 500) return undefined;
    throw err;
  }
  const p = ctx.principal;
  return p ? { subject: p.subject, sessionId: p.sessionId } : undefined;
}
