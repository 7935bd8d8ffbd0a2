import { GatewayError } from '../../errors.js';
import { t } from '../../i18n/messages.js';
import { readForm } from '../form.js';
import type { AuthEndpointKit, AuthHandler } from '../paths.js';
import { sendPage } from '../pages.js';
import { SSO_BEGIN_PATH } from '../sso/paths.js';
import { sessionHosts } from '../site-clear.js';
import { browserSession } from './host-session.js';
import { SESSIONS_END_OTHERS_PATH, SESSIONS_END_PATH, SESSIONS_PATH, sessionsPage } from './page.js';
import { SESSION_ID } from './registry.js';

/**
 * `/auth/sessions` ("your sessions", item 4 of issue 14) on every session host: the signed-in
 * person's own sessions, and POST forms (CSRF token, same-origin) to end one of them or every
 * other one. Ending one acts on every host and instance at once (StaffSessions.end). Someone
 * else's session id is answered as an unknown one (AUTH_SESSION_NOT_FOUND): no oracle.
 */
export function createSessionsEndpoints(kit: AuthEndpointKit): AuthHandler {
  const { auth, log } = kit;

  const signInFirst = (ctx: Parameters<AuthHandler>[0], res: Parameters<AuthHandler>[1]): void => {
    const here = kit.thisHost(ctx);
    const viaSso = auth.sso !== undefined && here !== auth.sso.signInHost && auth.sso.hosts.includes(here);
    ctx.reply.redirect(res, 302, `${viaSso ? SSO_BEGIN_PATH : '/auth/login'}?rd=${encodeURIComponent(SESSIONS_PATH)}`);
  };

  const show: AuthHandler = async (ctx, res) => {
    const me = await browserSession(ctx, auth, log);
    if (!me) return signInFirst(ctx, res);
    const sessions = await auth.sessions.registry.list({ subject: me.subject });
    const lang = ctx.reply.language(ctx.req);
    const ended = new URLSearchParams(ctx.target?.query ?? '').get('ended');
    const notice = ended === null ? undefined : ended === '1' ? t(lang, 'sessions.ended') : /^\d{1,4}$/.test(ended) ? t(lang, 'sessions.endedOthers', { n: Number(ended) }) : undefined;
    // This browser's own session signs out through /auth/logout, whose answer goes through every
    // other session host (the site-data chain): the page's form-action must allow their origins.
    const here = kit.thisHost(ctx);
    const chain = sessionHosts(kit.cfg).filter((h) => h !== here).map((h) => kit.origin(h));
    sendPage(ctx, res, 200, sessionsPage(lang, { sessions, current: me.sessionId, csrf: kit.freshCsrf(ctx), notice }), chain);
  };

  const end = (others: boolean): AuthHandler => async (ctx, res) => {
    if (ctx.req.method !== 'POST') throw new GatewayError('METHOD_NOT_ALLOWED', `${ctx.req.method} ${ctx.path}`);
    const form = await readForm(ctx.req, 'sessions form');
    if (!kit.formCsrfOk(ctx, form)) throw new GatewayError('CSRF_REJECTED', 'sessions form CSRF token or Origin mismatch');
    const me = await browserSession(ctx, auth, log);
    if (!me) throw new GatewayError('AUTH_REQUIRED', 'no session to act for');
    const by = { actor: me.subject, requestId: ctx.id, clientIp: ctx.address?.client.address };
    if (others) {
      const n = await auth.sessions.endAll(me.subject, { ...by, reason: 'signed_out_elsewhere' }, me.sessionId);
      return ctx.reply.redirect(res, 303, `${SESSIONS_PATH}?ended=${n}`);
    }
    const id = form.get('id') ?? '';
    const target = SESSION_ID.test(id) ? await auth.sessions.registry.get(id) : undefined;
    if (!target || target.subject !== me.subject) {
      log.security('auth.session_revoke_refused', { requestId: ctx.id, user: me.subject, sessionId: id.slice(0, 64), owner: target?.subject, clientIp: ctx.address?.client.address });
      throw new GatewayError('AUTH_SESSION_NOT_FOUND', `session ${id.slice(0, 64)} is not one of ${me.subject}'s`);
    }
    await auth.sessions.end(id, { ...by, reason: id === me.sessionId ? 'signed_out' : 'signed_out_elsewhere' });
    ctx.reply.redirect(res, 303, id === me.sessionId ? '/auth/login' : `${SESSIONS_PATH}?ended=1`);
  };

  const endOne = end(false);
  const endOthers = end(true);
  return async (ctx, res) => {
    const path = ctx.path ?? '';
    if (path === SESSIONS_PATH) {
      if (ctx.req.method !== 'GET' && ctx.req.method !== 'HEAD') throw new GatewayError('METHOD_NOT_ALLOWED', `${ctx.req.method} ${path}`);
      return show(ctx, res);
    }
    if (path === SESSIONS_END_PATH) return endOne(ctx, res);
    if (path === SESSIONS_END_OTHERS_PATH) return endOthers(ctx, res);
    throw new GatewayError('ROUTE_NOT_FOUND', `no sessions endpoint at ${path}`);
  };
}
