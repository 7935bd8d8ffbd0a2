import type { ServerResponse } from 'node:http';
import type { RequestContext } from '../context.js';
import { GatewayError, isGatewayError } from '../errors.js';
import { readForm } from '../auth/form.js';
import { loginAttempt } from '../auth/lockout.js';
import { checkPassword } from '../auth/sign-in.js';
import type { BlockSet } from '../containment/blocks.js';
import { accountBlocked } from '../containment/enforce.js';
import type { Logger } from '../log/logger.js';
import type { AuthService } from '../auth/service.js';
import { dummyHash } from '../auth/password.js';
import type { CredentialLimiter } from '../ratelimit/login.js';
import { loginPage, sendPage } from '../auth/pages.js';
import { sameOriginForm } from './origin.js';
import { equalSecret } from '../auth/equal-secret.js';
import type { AdminSession, AdminSessions } from './session.js';
import { overviewSecondFactor } from '../auth/mfa/overview.js';

export const LOGIN_PATH = '/security/login';
export const LOGOUT_PATH = '/security/logout';
export const ADMIN_ROLE = 'admin';
/** As /auth/login: failures from one IPv6 /64 count together. */
/** Where a sign-in may send the browser: the overview, with or without its range. */
const RETURN_PATH = /^\/security(\?range=(24h|7d|30d))?$/;

/** Not no-referrer: under it a browser sends `Origin: null` on the form's own POST (see auth/pages.ts). */
export const PAGE_HEADERS = { frameOptions: 'DENY', referrerPolicy: 'same-origin' } as const;

export function safeReturn(rd: string | null | undefined): string {
  return rd && RETURN_PATH.test(rd) ? rd : '/security';
}

export interface SignInDeps {
  readonly auth: AuthService;
  readonly log: Logger;
  /** The /auth/login limiter (same budgets: with Redis, the same counters). */
  readonly limiter: CredentialLimiter;
  readonly sessions: AdminSessions;
  /** A blocked account opens no overview session. */
  readonly blocks?: BlockSet | undefined;
}

/**
 * `/security/login` and `/security/logout` on the admin listener: the gateway's own password
 * sign-in (the same password check, rate limit, lockout and security events as /auth/login),
 * for accounts with the admin role only, ending in an overview session (session.ts).
 */
export function createAdminSignIn(deps: SignInDeps) {
  const { auth, log, sessions } = deps;
  dummyHash().catch(() => undefined); // built now, so an unknown user's attempt takes no longer than another

  const showForm = (ctx: RequestContext, res: ServerResponse, status: number, rd: string, error?: { err: GatewayError; user: string }): void => {
    const form = sessions.formToken();
    ctx.reply.cookie(form.cookie);
    if (error) ctx.reply.fail(error.err);
    const shown = loginPage(ctx.reply.language(ctx.req), { action: LOGIN_PATH, intro: 'signIn.overviewIntro', csrf: form.token, rd, error: error?.err, user: error?.user, code: true });
    sendPage(ctx, res, status, shown, [], error?.err.headers);
  };

  async function login(ctx: RequestContext, res: ServerResponse): Promise<void> {
    const method = ctx.req.method ?? 'GET';
    if (method === 'GET' || method === 'HEAD') {
      showForm(ctx, res, 200, safeReturn(new URL(ctx.req.url ?? '/', 'http://x').searchParams.get('rd')));
      return;
    }
    if (method !== 'POST') throw new GatewayError('METHOD_NOT_ALLOWED', `${method} ${LOGIN_PATH}`, { allow: 'GET, HEAD, POST' });
    // A cross-site POST is refused before its body is read: it is not shown a form either.
    if (!sameOriginForm(ctx.req)) throw new GatewayError('CSRF_REJECTED', `admin sign-in POST from Origin ${String(ctx.req.headers.origin)} Referer ${String(ctx.req.headers.referer)} Sec-Fetch-Site ${String(ctx.req.headers['sec-fetch-site'])}`);
    const form = await readForm(ctx.req, 'admin sign-in form');
    const rd = safeReturn(form.get('rd'));
    const name = (form.get('username') ?? '').trim().slice(0, 64);
    const password = form.get('password') ?? '';
    const again = (status: number, err: GatewayError): void => showForm(ctx, res, status, rd, { err, user: name });
    const cookieToken = sessions.formCookie(ctx.req);
    if (cookieToken === undefined || !equalSecret(cookieToken, form.get('csrf') ?? '')) {
      log.security('admin.overview_denied', { requestId: ctx.id, reason: 'sign-in form token missing or wrong', user: name, clientIp: ctx.address?.client.address, path: LOGIN_PATH });
      again(403, new GatewayError('CSRF_REJECTED', 'admin sign-in form token missing or wrong'));
      return;
    }
    try {
      await deps.limiter(ctx, name);
    } catch (err) {
      if (!isGatewayError(err)) throw err;
      again(err.status, err);
      return;
    }
    const checked = await checkPassword(auth, log, loginAttempt(name, ctx.address?.client, ctx.id, 'admin'), name, password);
    if ('refused' in checked) {
      again(checked.refused.status, checked.refused);
      return;
    }
    if ('failed' in checked) {
      again(401, new GatewayError('AUTH_FAILED', `admin sign-in: ${checked.failed}`));
      return;
    }
    const { user } = checked;
    const blocked = accountBlocked(deps.blocks, user.name);
    if (blocked) {
      log.security('admin.overview_denied', { requestId: ctx.id, reason: 'account blocked', user: user.name, clientIp: ctx.address?.client.address, path: LOGIN_PATH });
      again(blocked.status, blocked);
      return;
    }
    // A right password without the admin role opens nothing here: no session, and a refusal event.
    if (!user.roles.includes(ADMIN_ROLE)) {
      log.security('admin.overview_denied', { requestId: ctx.id, reason: 'not an admin', user: user.name, clientIp: ctx.address?.client.address, path: LOGIN_PATH });
      again(403, new GatewayError('ROLE_FORBIDDEN', `${user.name} has no admin role`));
      return;
    }
    // The second factor (src/auth/mfa/overview.ts): a TOTP or recovery code in the same form.
    const second = await overviewSecondFactor(auth, log, ctx, user, form.get('code') ?? '');
    if ('refused' in second) {
      again(second.refused.status, second.refused);
      return;
    }
    // No fixation: a session the browser already carried (planted, or the previous user's) ends here.
    const previous = await sessions.find(ctx.req);
    if (previous) await sessions.end(previous);
    const started = await sessions.start(user.name);
    await auth.store.updateUser(user.name, { lastLoginAt: new Date() });
    ctx.reply.cookie(...started.cookies);
    ctx.principal = { subject: user.name, roles: user.roles, method: 'session' };
    log.security('auth.login_succeeded', { requestId: ctx.id, user: user.name, roles: user.roles, clientIp: ctx.address?.client.address, surface: 'admin', factors: ['password', ...(second.factor ? [second.factor] : [])] });
    ctx.reply.redirect(res, 303, rd);
  }

  async function logout(ctx: RequestContext, res: ServerResponse, session: AdminSession | undefined): Promise<void> {
    if (ctx.req.method !== 'POST') throw new GatewayError('METHOD_NOT_ALLOWED', `${ctx.req.method} ${LOGOUT_PATH}`, { allow: 'POST' });
    if (!sameOriginForm(ctx.req)) throw new GatewayError('CSRF_REJECTED', `admin sign-out POST from Origin ${String(ctx.req.headers.origin)}`);
    if (!session) throw new GatewayError('AUTH_REQUIRED', 'admin sign-out without a session');
    const form = await readForm(ctx.req, 'admin sign-in form');
    if (!equalSecret(session.csrf, form.get('csrf') ?? '')) throw new GatewayError('CSRF_REJECTED', 'admin sign-out form token wrong');
    const ended = await sessions.end(session);
    ctx.reply.cookie(...ended.cookies);
    log.security('auth.logout', { requestId: ctx.id, user: session.subject, clientIp: ctx.address?.client.address, surface: 'admin' });
    ctx.reply.redirect(res, 303, LOGIN_PATH);
  }

  return { login, logout };
}
