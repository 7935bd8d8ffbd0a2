import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Redis } from 'ioredis';
import type { GatewayConfig } from '../config/schema.js';
import type { RequestContext } from '../context.js';
import type { GatewayDeps } from '../deps.js';
import { GatewayError, isGatewayError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { AuthService } from '../auth/service.js';
import type { OverviewRange, OverviewSnapshot } from '../audit/overview/overview-data.js';
import { createClientIpResolver } from '../net/client-ip.js';
import { IpSet } from '../net/ip.js';
import { createLoginLimiter } from '../ratelimit/login.js';
import { Reply } from '../reply.js';
import { wantsHtml } from '../respond.js';
import { defaultTimeZone, localTime } from './local-time.js';
import { createHostCheck } from './origin.js';
import { OVERVIEW_CSP, RANGES, renderOverviewPage } from './overview-page.js';
import { upstreamHealth } from './readiness.js';
import { AdminSessions, type AdminSession } from './session.js';
import { ADMIN_ROLE, LOGIN_PATH, LOGOUT_PATH, PAGE_HEADERS, createAdminSignIn } from './signin.js';
import { ChainStatusCache, backupStatus, certificateStatus } from './status.js';
import { blockFields } from '../containment/model.js';
import type { BlockSet } from '../containment/blocks.js';
import { accountBlocked } from '../containment/enforce.js';
import { SESSIONS_REVOKE_PATH, revokeFromOverview } from './sessions-view.js';

export const OVERVIEW_PATH = '/security';
export const OVERVIEW_JSON_PATH = '/security.json';
const PATHS = new Set([OVERVIEW_PATH, OVERVIEW_JSON_PATH, LOGIN_PATH, LOGOUT_PATH, SESSIONS_REVOKE_PATH]);

export interface OverviewDeps {
  readonly log: Logger;
  /** Bearer tokens for scripts (`Authorization: Bearer`, checked as on a `jwt` route). */
  readonly adminAuth?: GatewayDeps['adminAuth'];
  /** The figures (the audit logger's). */
  readonly overview?: { snapshot(range?: OverviewRange): OverviewSnapshot } | undefined;
  /** The gateway's accounts: with it, a person signs in with a browser (admin role). */
  readonly auth?: AuthService | undefined;
  /** Blocks in force (src/containment/): shown on the page, and a blocked account opens nothing here either. */
  readonly blocks?: BlockSet | undefined;
  /** The sign-in's rate limit shares /auth/login's counters through it. */
  readonly redis?: Redis | undefined;
  /** The gateway's metrics: the sign-in's rate limit counts its refusals there, /metrics serves the registry. */
  readonly metrics: GatewayDeps['metrics'];
}

type Viewer = { subject: string; roles: readonly string[]; session?: AdminSession };

/**
 * `/security` (the page), `/security.json` (the same figures for tools), `/security/login` and
 * `/security/logout` on the admin listener. Admin role only, by a bearer token or a browser
 * sign-in; anything else is refused in the documented error format (fail closed: without the
 * auth service and without a bearer check, nothing opens). Returns a handler that answers
 * false for other paths.
 */
export function createOverviewHandler(cfg: GatewayConfig, deps: OverviewDeps): (req: IncomingMessage, res: ServerResponse, path: string) => boolean {
  const { log } = deps;
  const hostAllowed = createHostCheck(cfg.admin.hosts);
  const resolveAddress = createClientIpResolver(new IpSet([]));
  const sessions = deps.auth ? new AdminSessions(deps.auth, cfg.admin.sessionTtl) : undefined;
  const signIn = deps.auth && sessions ? createAdminSignIn({ auth: deps.auth, log, sessions, limiter: createLoginLimiter({ log, redis: deps.redis, metrics: deps.metrics }, 'login'), blocks: deps.blocks }) : undefined;
  const chain = new ChainStatusCache(cfg.log.dir);
  const time = localTime(defaultTimeZone(cfg.admin.timeZone));

  const newContext = (req: IncomingMessage): RequestContext => {
    const id = randomUUID();
    return { id, startedAt: performance.now(), kind: 'http', req, secure: false, servername: undefined, address: resolveAddress(req), reply: new Reply(id, false, { hsts: undefined, defaultLanguage: cfg.ui.defaultLanguage }), bytesIn: 0, bytesOut: 0 };
  };

  const denied = (ctx: RequestContext, path: string, reason: string, user?: string): void => {
    log.security('admin.overview_denied', { requestId: ctx.id, reason, user, clientIp: ctx.address?.client.address, path });
  };

  /** Who asks: a bearer token when one is sent (never falling back to the cookie), else the sign-in. */
  async function viewer(ctx: RequestContext, path: string): Promise<Viewer | undefined> {
    if (ctx.req.headers.authorization !== undefined) {
      if (!deps.adminAuth) {
        denied(ctx, path, 'admin authentication is not configured');
        throw new GatewayError('AUTH_UNAVAILABLE', 'bearer on the admin listener without admin authentication wired');
      }
      const who = await deps.adminAuth(ctx.req);
      if (!who) {
        denied(ctx, path, 'no valid admin credentials');
        throw new GatewayError('AUTH_INVALID', 'admin bearer token refused', { 'www-authenticate': 'Bearer' });
      }
      return who;
    }
    const session = sessions ? await sessions.find(ctx.req) : undefined;
    return session ? { subject: session.subject, roles: session.roles, session } : undefined;
  }

  /** Who asks, unless that account is blocked (a compromised admin reads no overview either). */
  async function unblockedViewer(ctx: RequestContext, path: string): Promise<Viewer | undefined> {
    const who = await viewer(ctx, path);
    const refusal = who ? accountBlocked(deps.blocks, who.subject) : undefined;
    if (refusal && who) {
      denied(ctx, path, 'account blocked', who.subject);
      throw refusal;
    }
    return who;
  }

  async function overview(ctx: RequestContext, res: ServerResponse, path: string): Promise<void> {
    const method = ctx.req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD' && path !== SESSIONS_REVOKE_PATH) throw new GatewayError('METHOD_NOT_ALLOWED', `${method} ${path}`, { allow: 'GET, HEAD' });
    const rangeParam = new URL(ctx.req.url ?? '/', 'http://admin').searchParams.get('range');
    if (rangeParam !== null && !(RANGES as readonly string[]).includes(rangeParam)) throw new GatewayError('BAD_REQUEST', `range ${rangeParam.slice(0, 20)}`);
    const range = (rangeParam ?? '24h') as OverviewRange;
    if (!deps.adminAuth && !sessions) {
      denied(ctx, path, 'admin authentication is not configured');
      throw new GatewayError('AUTH_UNAVAILABLE', 'no admin authentication on this gateway');
    }
    const who = await unblockedViewer(ctx, path);
    if (!who) {
      // A person with a browser is sent to the sign-in; a script is told what it lacks.
      if (sessions && path === OVERVIEW_PATH && wantsHtml(ctx.req)) {
        ctx.reply.redirect(res, 303, `${LOGIN_PATH}?rd=${encodeURIComponent(rangeParam ? `${OVERVIEW_PATH}?range=${range}` : OVERVIEW_PATH)}`);
        return;
      }
      denied(ctx, path, 'no credentials');
      throw new GatewayError('AUTH_REQUIRED', 'no admin credentials', { 'www-authenticate': 'Bearer' });
    }
    if (!who.roles.includes(ADMIN_ROLE)) {
      denied(ctx, path, 'not an admin', who.subject);
      throw new GatewayError('ROLE_FORBIDDEN', `${who.subject} has no admin role`);
    }
    if (path === SESSIONS_REVOKE_PATH) {
      if (!who.session || !deps.auth) throw new GatewayError('AUTH_REQUIRED', 'revoking a session takes the overview sign-in');
      return revokeFromOverview(ctx, res, { subject: who.subject, csrf: who.session.csrf }, deps.auth, log);
    }
    if (!deps.overview) throw new GatewayError('INTERNAL', 'the security overview is not wired to the audit log');
    const snapshot = deps.overview.snapshot(range);
    const staffSessions = deps.auth ? await deps.auth.sessions.registry.list() : undefined;
    const [upstreams, chainStatus, backup] = await Promise.all([upstreamHealth(cfg), chain.get(), backupStatus(cfg.backup)]);
    const certificate = certificateStatus(cfg.tls.certFile);
    log.security('admin.overview_viewed', { requestId: ctx.id, user: who.subject, clientIp: ctx.address?.client.address, path, range, via: who.session ? 'sign-in' : 'bearer' });
    if (path === OVERVIEW_JSON_PATH) {
      const body = JSON.stringify({ ...snapshot, timeZone: time.zone, status: { upstreams, certificate, auditChain: chainStatus, backup }, blocks: (deps.blocks?.active() ?? []).map(blockFields), sessions: staffSessions });
      ctx.reply.answer(res, 200, { body: { contentType: 'application/json; charset=utf-8', body } });
      return;
    }
    const html = renderOverviewPage({
      snapshot,
      upstreams,
      certificate,
      chain: chainStatus,
      backup,
      time,
      viewer: who.subject,
      blocks: deps.blocks?.active(),
      staffSessions: staffSessions ? { sessions: staffSessions, csrf: who.session?.csrf } : undefined,
      session: who.session ? { subject: who.subject, csrf: who.session.csrf, logoutPath: LOGOUT_PATH } : undefined,
    });
    ctx.reply.answer(res, 200, { body: { contentType: 'text/html; charset=utf-8', body: html }, page: { csp: OVERVIEW_CSP, ...PAGE_HEADERS } });
  }

  async function run(ctx: RequestContext, res: ServerResponse, path: string): Promise<void> {
    // Before anything else: a DNS-rebinding page reaches this listener under its own name.
    if (!hostAllowed(ctx.req)) {
      denied(ctx, path, `host ${String(ctx.req.headers.host).slice(0, 100)} not allowed`);
      throw new GatewayError('HOST_INVALID', `admin page asked for as ${String(ctx.req.headers.host)}`);
    }
    if (path === LOGIN_PATH || path === LOGOUT_PATH) {
      if (!signIn || !sessions) {
        denied(ctx, path, 'sign-in needs the auth service (API_SECRET_KEY)');
        throw new GatewayError('AUTH_UNAVAILABLE', 'admin sign-in without the auth service');
      }
      if (path === LOGIN_PATH) await signIn.login(ctx, res);
      else await signIn.logout(ctx, res, await sessions.find(ctx.req));
      return;
    }
    await overview(ctx, res, path);
  }

  return (req, res, path) => {
    if (!PATHS.has(path)) return false;
    const ctx = newContext(req);
    run(ctx, res, path).catch((err: unknown) => {
      const e = isGatewayError(err) ? err : new GatewayError('INTERNAL', err instanceof Error ? err.message : String(err));
      if (!isGatewayError(err)) log.app('error', 'admin overview failed', { requestId: ctx.id, path, error: err instanceof Error ? err.stack : String(err) });
      if (e.code === 'CSRF_REJECTED') denied(ctx, path, e.detail ?? 'cross-site request');
      ctx.reply.refuse(res, e, wantsHtml(req));
    });
    return true;
  };
}
