import type { ServerResponse } from 'node:http';
import type { RequestContext } from '../context.js';
import { GatewayError, isGatewayError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { AuthService } from '../auth/service.js';
import { dummyHash, verifyPassword } from '../auth/password.js';
import { ipBucket } from '../ratelimit/keys.js';
import type { CredentialLimiter } from '../ratelimit/login.js';
import { LOGIN_CSP, adminLoginPage } from './login-page.js';
import { sameOriginForm } from './origin.js';
import { equalSecret, type AdminSession, type AdminSessions } from './session.js';

export const LOGIN_PATH = '/security/login';
export const LOGOUT_PATH = '/security/logout';
export const ADMIN_ROLE = 'admin';
const MAX_FORM_BYTES = 16 * 1024;
/** As /auth/login: failures from one IPv6 /64 count together. */
const LOCKOUT_IPV6_PREFIX = 64;
/** Where a sign-in may send the browser: the overview, with or without its range. */
const RETURN_PATH = /^\/security(\?range=(24h|7d|30d))?$/;

/** Not no-referrer: under it a browser sends `Origin: null` on the form's own POST (see auth/pages.ts). */
export const PAGE_HEADERS = { frameOptions: 'DENY', referrerPolicy: 'same-origin' } as const;

function readForm(ctx: RequestContext): Promise<URLSearchParams> {
  const req = ctx.req;
  return new Promise((resolve, reject) => {
    const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
    if (type !== 'application/x-www-form-urlencoded') {
      req.resume();
      reject(new GatewayError('BAD_REQUEST', `form content type ${String(req.headers['content-type'])}`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_FORM_BYTES) {
        req.destroy();
        reject(new GatewayError('BODY_TOO_LARGE', `admin sign-in form over ${MAX_FORM_BYTES} bytes`));
      } else chunks.push(c);
    });
    req.on('end', () => resolve(new URLSearchParams(Buffer.concat(chunks).toString('utf8'))));
    req.on('error', reject);
  });
}

export function safeReturn(rd: string | null | undefined): string {
  return rd && RETURN_PATH.test(rd) ? rd : '/security';
}

export interface SignInDeps {
  readonly auth: AuthService;
  readonly log: Logger;
  /** The /auth/login limiter (same budgets: with Redis, the same counters). */
  readonly limiter: CredentialLimiter;
  readonly sessions: AdminSessions;
}

/**
 * `/security/login` and `/security/logout` on the admin listener: the gateway's own password
 * sign-in (the same password check, rate limit, lockout and security events as /auth/login),
 * for accounts with the admin role only, ending in an overview session (session.ts).
 */
export function createAdminSignIn(deps: SignInDeps) {
  const { auth, log, sessions } = deps;
  dummyHash().catch(() => undefined); // built now, so an unknown user's attempt takes no longer than another

  const showForm = (ctx: RequestContext, res: ServerResponse, status: number, rd: string, error?: { message: string; err: GatewayError; user: string }): void => {
    const form = sessions.formToken();
    ctx.reply.cookie(form.cookie);
    if (error) ctx.reply.fail(error.err);
    const html = adminLoginPage({ action: LOGIN_PATH, csrf: form.token, rd, error: error?.message, user: error?.user });
    ctx.reply.answer(res, status, { body: { contentType: 'text/html; charset=utf-8', body: html }, headers: error?.err.headers, page: { csp: LOGIN_CSP, ...PAGE_HEADERS } });
  };

  async function login(ctx: RequestContext, res: ServerResponse): Promise<void> {
    const method = ctx.req.method ?? 'GET';
    if (method === 'GET' || method === 'HEAD') {
      showForm(ctx, res, 200, safeReturn(new URL(ctx.req.url ?? '/', 'http://x').searchParams.get('rd')));
      return;
    }
    if (method !== 'POST') throw new GatewayError('METHOD_NOT_ALLOWED', `${method} ${LOGIN_PATH}`);
    // A cross-site POST is refused before its body is read: it is not shown a form either.
    if (!sameOriginForm(ctx.req)) throw new GatewayError('CSRF_REJECTED', `admin sign-in POST from Origin ${String(ctx.req.headers.origin)} Referer ${String(ctx.req.headers.referer)} Sec-Fetch-Site ${String(ctx.req.headers['sec-fetch-site'])}`);
    const form = await readForm(ctx);
    const rd = safeReturn(form.get('rd'));
    const name = (form.get('username') ?? '').trim().slice(0, 64);
    const password = form.get('password') ?? '';
    const again = (status: number, message: string, err: GatewayError): void => showForm(ctx, res, status, rd, { message, err, user: name });
    const cookieToken = sessions.formCookie(ctx.req);
    if (cookieToken === undefined || !equalSecret(cookieToken, form.get('csrf') ?? '')) {
      log.security('admin.overview_denied', { requestId: ctx.id, reason: 'sign-in form token missing or wrong', user: name, clientIp: ctx.address?.client.address, path: LOGIN_PATH });
      again(403, 'The form expired. Please sign in again.', new GatewayError('CSRF_REJECTED', 'admin sign-in form token missing or wrong'));
      return;
    }
    try {
      await deps.limiter(ctx, name);
    } catch (err) {
      if (!isGatewayError(err)) throw err;
      again(err.status, 'Too many sign-in attempts. Try again later.', err);
      return;
    }
    const attempt = { name, ipKey: ctx.address ? ipBucket(ctx.address.client, LOCKOUT_IPV6_PREFIX) : 'unknown', requestId: ctx.id };
    try {
      await auth.lockout.check(attempt);
    } catch (err) {
      if (!isGatewayError(err)) throw err;
      log.security('auth.login_locked', { requestId: ctx.id, user: name, clientIp: ctx.address?.client.address, detail: err.detail, surface: 'admin' });
      again(429, 'Too many failed sign-ins. Try again later.', err);
      return;
    }
    const user = name ? await auth.store.getUser(name) : undefined;
    const ok = user ? await verifyPassword(password, user.passwordHash) : (await verifyPassword(password, await dummyHash()), false);
    if (!user || !ok || user.disabled) {
      const why = !user ? 'unknown user' : !ok ? 'wrong password' : 'disabled';
      await auth.lockout.failed(attempt, why);
      again(401, 'Wrong user name or password.', new GatewayError('AUTH_FAILED', `admin sign-in: ${why}`));
      return;
    }
    await auth.lockout.succeeded(attempt);
    // A right password without the admin role opens nothing here: no session, and a refusal event.
    if (!user.roles.includes(ADMIN_ROLE)) {
      log.security('admin.overview_denied', { requestId: ctx.id, reason: 'not an admin', user: user.name, clientIp: ctx.address?.client.address, path: LOGIN_PATH });
      again(403, 'This account may not open the security overview (it needs the admin role).', new GatewayError('ROLE_FORBIDDEN', `${user.name} has no admin role`));
      return;
    }
    // No fixation: a session the browser already carried (planted, or the previous user's) ends here.
    const previous = await sessions.find(ctx.req);
    if (previous) await sessions.end(previous);
    const started = await sessions.start(user.name);
    await auth.store.updateUser(user.name, { lastLoginAt: new Date() });
    ctx.reply.cookie(...started.cookies);
    ctx.principal = { subject: user.name, roles: user.roles, method: 'session' };
    log.security('auth.login_succeeded', { requestId: ctx.id, user: user.name, roles: user.roles, clientIp: ctx.address?.client.address, surface: 'admin' });
    ctx.reply.redirect(res, 303, rd);
  }

  async function logout(ctx: RequestContext, res: ServerResponse, session: AdminSession | undefined): Promise<void> {
    if (ctx.req.method !== 'POST') throw new GatewayError('METHOD_NOT_ALLOWED', `${ctx.req.method} ${LOGOUT_PATH}`);
    if (!sameOriginForm(ctx.req)) throw new GatewayError('CSRF_REJECTED', `admin sign-out POST from Origin ${String(ctx.req.headers.origin)}`);
    if (!session) throw new GatewayError('AUTH_REQUIRED', 'admin sign-out without a session');
    const form = await readForm(ctx);
    if (!equalSecret(session.csrf, form.get('csrf') ?? '')) throw new GatewayError('CSRF_REJECTED', 'admin sign-out form token wrong');
    const ended = await sessions.end(session);
    ctx.reply.cookie(...ended.cookies);
    log.security('auth.logout', { requestId: ctx.id, user: session.subject, clientIp: ctx.address?.client.address, surface: 'admin' });
    ctx.reply.redirect(res, 303, LOGIN_PATH);
  }

  return { login, logout };
}
