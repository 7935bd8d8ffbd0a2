import { GatewayError, isGatewayError } from '../errors.js';
import type { RouteConfig } from '../config/schema.js';
import type { RequestContext } from '../context.js';
import type { Logger } from '../log/logger.js';
import { wantsHtml } from '../respond.js';
import type { Step } from '../step.js';
import { ACCESS_COOKIE, REFRESH_COOKIE, clearCookie, parseCookies, setCookie, singleCookie } from './cookies.js';
import { LOGIN_PATH, withChallenge } from './challenge.js';
import { readBearer } from './credentials.js';
import { sessionVoided, type AuthService } from './service.js';
import { isOidcSubject } from './oidc/rules.js';
import { SSO_BEGIN_PATH } from './sso/paths.js';
import type { SsoSetup } from './sso/setup.js';

/** Only a browser navigating (GET/HEAD for HTML) is sent to the login page; APIs get 401. */
function isNavigation(ctx: RequestContext): boolean {
  const m = ctx.req.method ?? 'GET';
  return ctx.kind === 'http' && (m === 'GET' || m === 'HEAD') && wantsHtml(ctx.req);
}

/**
 * To sign in: on the sign-in host (or without one login across hosts) its login page; on any
 * other session host the SSO hand-off (src/auth/sso), which signs in there once for every host.
 */
function loginRedirect(ctx: RequestContext, sso: SsoSetup | undefined): { answer: number } {
  const back = `${ctx.path ?? '/'}${ctx.target?.query ? `?${ctx.target.query}` : ''}`;
  const host = (ctx.target?.host ?? '').toLowerCase();
  const viaSso = sso !== undefined && host !== sso.signInHost && sso.hosts.includes(host);
  ctx.reply.headers.location = `${viaSso ? SSO_BEGIN_PATH : LOGIN_PATH}?rd=${encodeURIComponent(back)}`;
  return { answer: 302 };
}

/**
 * Authentication for `jwt`, `session` and `jwt-or-session` routes. Bearer tokens come from the
 * Authorization header only, sessions from the gateway's cookies only; both at once, or a
 * cookie sent twice, is refused. An expired session is renewed with its refresh token
 * (single use, rotated). Without credentials a browser is sent to the login page and an API
 * client gets 401; every 401 carries the route's challenge (src/auth/challenge.ts).
 */
export function createTokenAuthenticate(route: RouteConfig, auth: AuthService, log: Logger): Step {
  const acceptsBearer = route.auth === 'jwt' || route.auth === 'jwt-or-session';
  const acceptsSession = route.auth === 'session' || route.auth === 'jwt-or-session';
  const sso = auth.sso;

  const authenticate: Step = async (ctx) => {
    const bearer = readBearer(ctx.req);
    const cookies = parseCookies(ctx.req.headers.cookie);
    const access = singleCookie(cookies, ACCESS_COOKIE);
    const refresh = singleCookie(cookies, REFRESH_COOKIE);
    if (access === 'ambiguous' || refresh === 'ambiguous') throw new GatewayError('AUTH_AMBIGUOUS', 'gateway cookie sent more than once');
    if (bearer && (access || refresh)) throw new GatewayError('AUTH_AMBIGUOUS', 'token in both the Authorization header and a cookie');

    if (bearer) {
      if (!acceptsBearer) throw new GatewayError('AUTH_INVALID', `bearer token on ${route.auth} route ${route.name}`);
      const claims = await auth.tokens.verify(bearer);
      if (claims.typ !== 'access') throw new GatewayError('AUTH_INVALID', `${claims.typ} token used as a bearer token`);
      ctx.principal = await auth.principalFor(claims, 'jwt');
      return;
    }

    if (acceptsSession && (access || refresh)) {
      try {
        await sessionPrincipal(ctx, auth, log, access, refresh);
        return;
      } catch (err) {
        // A session that could not be checked (a store down, 503) is not stale: kept, and the page says why.
        if (!isGatewayError(err) || !isNavigation(ctx) || err.status >= 500) throw err;
        // A stale or revoked session in a browser: record why, clear it, and offer the login.
        log.security('auth.session_rejected', { requestId: ctx.id, code: err.code, detail: err.detail, route: route.name, clientIp: ctx.address?.client.address });
        ctx.reply.cookie(clearCookie(ACCESS_COOKIE), clearCookie(REFRESH_COOKIE));
        return loginRedirect(ctx, sso);
      }
    }

    if (acceptsSession && isNavigation(ctx)) return loginRedirect(ctx, sso);
    throw new GatewayError('AUTH_REQUIRED', `no credentials on route ${route.name}`);
  };

  // Every 401 says how to authenticate here (RFC 9110 §15.5.2; RFC 6750 §3 for bearer tokens).
  return async (ctx) => {
    try {
      return await authenticate(ctx);
    } catch (err) {
      throw isGatewayError(err) ? withChallenge(err, route, ctx.req.headers.authorization !== undefined) : err;
    }
  };
}

/** The session the cookies carry, as ctx.principal, renewing an expired access token; throws when it is not good. */
export async function sessionPrincipal(ctx: RequestContext, auth: AuthService, log: Logger, access: string | undefined, refresh: string | undefined): Promise<void> {
  if (access) {
    try {
      const claims = await auth.tokens.verify(access);
      if (claims.typ !== 'session') throw new GatewayError('AUTH_INVALID', `${claims.typ} token in the session cookie`);
      ctx.principal = await auth.principalFor(claims, 'session');
      return;
    } catch (err) {
      // Only an expired access token may be renewed; anything else is refused as it is.
      if (!(isGatewayError(err) && err.code === 'AUTH_EXPIRED' && refresh)) throw err;
    }
  }
  if (!refresh) throw new GatewayError('AUTH_REQUIRED', 'no session');
  if (ctx.kind !== 'http') throw new GatewayError('AUTH_EXPIRED', 'session expired; websockets cannot renew it');
  const next = await auth.refresh.rotate(refresh);
  const successor = next.token;
  const successorCookie = successor ? setCookie(REFRESH_COOKIE, successor, auth.config.refreshTtl) : undefined;
  if (successor && successorCookie) {
    // Pending until the response closes. Delivered only when the answer that left carried the
    // cookie: a refusal or failure below, sent before it was added, leaves the browser with
    // the token it presented, as a lost answer does.
    await auth.refresh.markPending(successor);
    whenResponseClosed(ctx, (headersSent) => {
      const delivered = headersSent && ctx.reply.cookies.includes(successorCookie);
      auth.refresh.settle(successor, delivered).then(
        () => (delivered ? undefined : log.security('auth.session_renewal_lost', { requestId: ctx.id, user: next.record.sub, family: next.record.family })),
        (err: unknown) => log.app('warn', 'could not record the fate of a session renewal; its pending mark expires on its own', { requestId: ctx.id, error: String(err) }),
      );
    });
  }
  // A family from before staff sessions (issue 14) has no sid: it would renew for ever, unseen by
  // "your sessions", `sessions list` and revoke. It ends here; the person signs in once again.
  if (next.record.sid === undefined) {
    await auth.refresh.revokeFamily(next.record.family);
    throw new GatewayError('AUTH_REVOKED', `session of ${next.record.sub} from before staff sessions (no sid): sign in again`);
  }
  // An identity provider's person has no local record: the roles mapped at sign-in hold until
  // the staff session ends (checked below through sid).
  const oidcPerson = isOidcSubject(next.record.sub);
  const user = oidcPerson ? { name: next.record.sub, roles: next.record.roles, disabled: false, sessionsValidFrom: undefined } : await auth.store.getUser(next.record.sub);
  if (!user) throw new GatewayError('AUTH_INVALID', `session of unknown user ${next.record.sub}`);
  if (user.disabled) {
    await auth.refresh.revokeFamily(next.record.family);
    throw new GatewayError('AUTH_DISABLED', `${user.name} is disabled`);
  }
  if (sessionVoided(next.record.authTime, user.sessionsValidFrom)) {
    await auth.refresh.revokeFamily(next.record.family);
    throw new GatewayError('AUTH_REVOKED', `session of ${user.name} began before its password changed`);
  }
  // A staff session that ended or expired renews on no host (read once per access lifetime).
  const sid = next.record.sid;
  if (!(await auth.sessions.live(sid))) {
    await auth.refresh.revokeFamily(next.record.family);
    throw new GatewayError('AUTH_REVOKED', `session ${sid} of ${user.name} has ended`);
  }
  // Roles are read again at each renewal, so a role change reaches sessions within one access lifetime.
  const issued = auth.tokens.issue({ sub: user.name, roles: user.roles, ttlMs: auth.config.sessionTtl, typ: 'session', family: next.record.family, authTime: next.record.authTime, sid, amr: next.record.amr });
  await auth.refresh.setAccess(next.record.family, issued.claims.jti, issued.claims.exp);
  ctx.reply.cookie(setCookie(ACCESS_COOKIE, issued.token, auth.config.sessionTtl));
  if (successorCookie) ctx.reply.cookie(successorCookie);
  ctx.principal = await auth.principalFor(issued.claims, 'session');
  log.security(next.reissued ? 'auth.session_renewal_reissued' : 'auth.session_renewed', { requestId: ctx.id, user: user.name, family: next.record.family, tokenId: issued.claims.jti });
}

/**
 * Runs `closed` once when this request's response closes, with whether its headers were sent.
 * Only when they were not is it certain no Set-Cookie reached the client; a response cut after
 * its headers may well have delivered them (browsers store cookies when the headers arrive).
 */
function whenResponseClosed(ctx: RequestContext, closed: (headersSent: boolean) => void): void {
  let done = false;
  const once = (headersSent: boolean): void => {
    if (done) return;
    done = true;
    closed(headersSent);
  };
  (ctx.onResponseClosed ??= []).push(once);
  // The client may have left while the renewal ran, before this hook existed (nothing was sent yet).
  if (ctx.req.socket.destroyed) once(false);
}
