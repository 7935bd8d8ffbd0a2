import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { GatewayConfig } from '../config/schema.js';
import type { RequestContext } from '../context.js';
import { GatewayError, isGatewayError } from '../errors.js';
import { readForm } from './form.js';
import { equalSecret } from './equal-secret.js';
import { loginAttempt } from './lockout.js';
import { checkPassword } from './sign-in.js';
import { accountBlocked } from '../containment/enforce.js';
import { routeHosts } from '../routing/route-hosts.js';
import type { BlockSet } from '../containment/blocks.js';
import type { Logger } from '../log/logger.js';
import type { CredentialLimiter } from '../ratelimit/login.js';
import { ACCESS_COOKIE, CSRF_COOKIE, REFRESH_COOKIE, clearCookie, parseCookies, setCookie, singleCookie } from './cookies.js';
import { cookieChallenge } from './challenge.js';
import { readBasic } from './credentials.js';
import { sameSiteRequest } from './csrf.js';
import { loginPage, logoutPage, sendPage } from './pages.js';
import { dummyHash } from './password.js';
import { safeReturnTo } from './return-to.js';
import { APP_SESSION_COOKIES, CLEAR_PATH, CLEAR_SITE_DATA, CLEAR_STORAGE, SiteClearChain, sessionHosts } from './site-clear.js';
import { WS_TICKET_PATH, WsTickets, createWsTicketEndpoint } from './ws-ticket.js';
import type { AuthService } from './service.js';
import type { TokenClaims } from './claims.js';
import { CLIENT_SUBJECT_PREFIX } from './store/types.js';
import { AuthPaths, type AuthEndpointKit, type AuthHandler, type SignInGate } from './paths.js';
import type { CompleteSignIn } from './sessions/complete.js';
import { issueHostSession } from './sessions/host-session.js';
import { createSessionsEndpoints } from './sessions/endpoints.js';
import { SESSIONS_PATH } from './sessions/page.js';
import type { EndedBy } from './sessions/staff-sessions.js';
import { createSsoEndpoints } from './sso/handoff.js';
import { SSO_BEGIN_PATH, SSO_PREFIX, SSO_START_PATH } from './sso/paths.js';
import { createOidcEndpoints } from './oidc/endpoints.js';
import { RENEW_PATH, createRenewEndpoint } from './forward-auth/renew.js';
import { createMfaEndpoints } from './mfa/endpoints.js';

export const AUTH_PATHS = new Set(['/auth/login', '/auth/logout', '/auth/token', CLEAR_PATH, WS_TICKET_PATH]);
const CSRF_TTL_MS = 60 * 60_000;
/** Lifetime of client-credentials tokens (never above auth.maxTokenTtl). */
const CLIENT_TOKEN_TTL_MS = 60 * 60_000;

export interface AuthEndpoints {
  /** Whether `path` is one of the gateway's own (the fixed AUTH_PATHS or a registered /auth/ path or prefix). */
  owns(path: string): boolean;
  handle(ctx: RequestContext, res: ServerResponse, fail: (err: GatewayError) => void): void;
}

/**
 * The gateway's own pages on every routed host: `/auth/login` (form with a CSRF token,
 * lockout, then session cookies), `/auth/logout` (revokes the session family and clears the
 * browser's site data on every session host, through `/auth/clear`), and `/auth/token`
 * (client credentials → bearer token for API clients).
 */
export function createAuthEndpoints(
  cfg: GatewayConfig,
  auth: AuthService,
  log: Logger,
  limits: { login: CredentialLimiter; token: CredentialLimiter },
  blocks?: BlockSet,
): AuthEndpoints {
  const hosts = routeHosts(cfg.routes);
  const publicPort = cfg.listen.publicHttpsPort ?? cfg.listen.httpsPort;
  const siteClear = new SiteClearChain(auth.kv, cfg, publicPort);
  const sso = auth.sso;
  const signInHost = sso?.signInHost ?? sessionHosts(cfg)[0] ?? '';
  // Built now, not at the first unknown-user login: that login would pay for two scrypt runs
  // (build the dummy, then verify against it) and so stand out by its time.
  dummyHash().catch(() => undefined); // a failure shows at the first login that needs it

  const wsTicket = createWsTicketEndpoint(auth, log, new WsTickets(auth.kv));
  /** The response of each request in a handler, so CompleteSignIn can answer it (its signature has no `res`). */
  const responses = new WeakMap<RequestContext, ServerResponse>();
  const gates: SignInGate[] = [];
  /** The login page's identity-provider button (auth.oidc): its label, '' for the neutral one; undefined: none. */
  const oidc = cfg.auth?.oidc; // `?.`: partial configs of unit tests have no auth section
  const provider = oidc ? (oidc.buttonLabel ?? '') : undefined;

  const freshCsrf = (ctx: RequestContext): string => {
    const token = randomBytes(24).toString('base64url');
    ctx.reply.cookie(setCookie(CSRF_COOKIE, token, CSRF_TTL_MS, 'strict'));
    return token;
  };

  const returnTo = (ctx: RequestContext, rd: string | null): string =>
    safeReturnTo(rd, { host: (ctx.req.headers.host ?? '').toLowerCase(), hosts, port: publicPort });

  const thisHost = (ctx: RequestContext): string => ctx.target?.host ?? '';
  /** The other session hosts' origins: the logout form's redirects go through them. */
  const chainOrigins = (ctx: RequestContext): string[] => siteClear.others(thisHost(ctx)).map((h) => siteClear.origin(h));

  /**
   * Expires every cookie the browser sent (upstream sessions of whoever used it before), and
   * the applications' known session cookies whether sent or not (a narrower Path hides them).
   */
  const expireBrowserCookies = (ctx: RequestContext): void => {
    const names = new Set([...parseCookies(ctx.req.headers.cookie).map(([n]) => n), ...APP_SESSION_COOKIES]);
    for (const n of names) {
      const clear = n === ACCESS_COOKIE || n === REFRESH_COOKIE ? undefined : clearUpstreamCookie(n);
      if (clear) ctx.reply.cookie(clear);
    }
  };

  const formCsrfOk = (ctx: RequestContext, form: URLSearchParams): boolean => {
    const cookie = singleCookie(parseCookies(ctx.req.headers.cookie), CSRF_COOKIE);
    const field = form.get('csrf') ?? '';
    return typeof cookie === 'string' && cookie !== 'ambiguous' && equalSecret(cookie, field) && (ctx.req.headers.origin === undefined || sameSiteRequest(ctx.req));
  };

  async function login(ctx: RequestContext, res: ServerResponse): Promise<void> {
    const method = ctx.req.method ?? 'GET';
    if (method === 'GET' || method === 'HEAD') {
      const rd = returnTo(ctx, new URLSearchParams(ctx.target?.query ?? '').get('rd'));
      sendPage(ctx, res, 200, loginPage(ctx.reply.language(ctx.req), { csrf: freshCsrf(ctx), rd, provider, passkey: cfg.auth.passkeys.signIn }), signInFormOrigins(ctx, rd));
      return;
    }
    if (method !== 'POST') throw new GatewayError('METHOD_NOT_ALLOWED', `${method} /auth/login`);
    const form = await readForm(ctx.req, 'form');
    const rd = returnTo(ctx, form.get('rd'));
    const name = (form.get('username') ?? '').trim();
    const password = form.get('password') ?? '';
    const again = (status: number, err: GatewayError): void => {
      ctx.reply.fail(err);
      sendPage(ctx, res, status, loginPage(ctx.reply.language(ctx.req), { csrf: freshCsrf(ctx), rd, error: err, user: name, provider, passkey: cfg.auth.passkeys.signIn }), signInFormOrigins(ctx, rd), err.headers);
    };
    if (!formCsrfOk(ctx, form)) {
      again(403, new GatewayError('CSRF_REJECTED', 'login form CSRF token or Origin mismatch'));
      return;
    }
    try {
      await limits.login(ctx, name.slice(0, 64));
    } catch (err) {
      if (!isGatewayError(err)) throw err;
      again(err.status, err);
      return;
    }
    const attempt = loginAttempt(name.slice(0, 64), ctx.address?.client, ctx.id);
    const checked = await checkPassword(auth, log, attempt, name, password);
    if ('refused' in checked) {
      again(checked.refused.status, checked.refused);
      return;
    }
    if ('failed' in checked) {
      again(401, new GatewayError('AUTH_FAILED', checked.failed === 'disabled' ? 'disabled user' : checked.failed, { 'www-authenticate': cookieChallenge() }));
      return;
    }
    const { user } = checked;
    // A blocked account opens no session (told only to whoever knows its password).
    const blocked = accountBlocked(blocks, user.name);
    if (blocked) {
      again(blocked.status, blocked);
      return;
    }
    await complete(ctx, { subject: user.name, roles: [...user.roles], factors: ['password'], method: 'password' }, rd);
  }

  /**
   * The one end of every sign-in (see ./sessions/complete.ts). Gates first (a second factor may
   * take the browser aside); then the session, this host's cookies, the event and the redirect.
   */
  const complete: CompleteSignIn = async (ctx, who, rdIn) => {
    const res = responses.get(ctx);
    if (!res) throw new Error('CompleteSignIn called outside an /auth/ handler');
    const rd = returnTo(ctx, rdIn);
    for (const g of gates) if (await g(ctx, res, who, rd)) return;
    const blocked = accountBlocked(blocks, who.subject);
    if (blocked) throw blocked;
    // The browser's previous session ends on every host, not just here: its other hosts' cookies
    // must not keep showing the previous person once someone else has signed in.
    const replaced = await endBrowserSession(ctx, undefined, { actor: who.subject, reason: 'replaced' });
    if (replaced.family) log.security('auth.session_replaced', { requestId: ctx.id, user: who.subject, family: replaced.family, previousUser: replaced.user, previousSessionId: replaced.sid, clientIp: ctx.address?.client.address });
    await auth.store.updateUser(who.subject, { lastLoginAt: new Date() });
    const session = await auth.sessions.create({ ...who, ip: ctx.address?.client.address ?? '', userAgent: String(ctx.req.headers['user-agent'] ?? '') });
    // No session fixation: every cookie the browser sent before login is cleared (upstream
    // sessions of a previous user included), then the new session is set.
    expireBrowserCookies(ctx);
    const issued = await issueHostSession(ctx, auth, session);
    log.security('auth.login_succeeded', { requestId: ctx.id, user: who.subject, roles: who.roles, clientIp: ctx.address?.client.address, method: who.method, factors: who.factors, sessionId: session.id, tokenId: issued.tokenId });
    // The applications' storage on this host (NocoDB's token in localStorage) belongs to whoever
    // used the browser before, and the gateway cannot always tell who that was (their cookies
    // may have expired), so every login clears it, as it clears every cookie it sees. Not
    // "cookies": Chromium applies it to this answer's own Set-Cookie too.
    redirect(ctx, res, afterSignIn(ctx, rd), { 'clear-site-data': CLEAR_STORAGE });
  };

  /**
   * The origins a sign-in form's answer may redirect to (its page's CSP form-action, which
   * browsers apply to the redirects after the POST): the return URL's, and the sign-in host's
   * when the sign-in chains through it (afterSignIn).
   */
  function signInFormOrigins(ctx: RequestContext, rd: string): string[] {
    const here = thisHost(ctx);
    const viaSignInHost = sso !== undefined && here !== sso.signInHost && sso.hosts.includes(here);
    // A sign-in on the way through the hand-off returns to its start, which sends the code on to `to`.
    const handOffTo = sso && rd.startsWith(`${SSO_START_PATH}?`) ? new URLSearchParams(rd.slice(SSO_START_PATH.length + 1)).get('to') : null;
    const toOrigin = handOffTo && sso?.hosts.includes(handOffTo) ? siteClear.origin(handOffTo) : undefined;
    return [returnOrigin(rd), viaSignInHost ? siteClear.origin(sso.signInHost) : undefined, toOrigin].filter((o): o is string => o !== undefined);
  }

  /**
   * Where a sign-in sends the browser, given the checked return URL. With one login across
   * hosts, a sign-in on another host than the sign-in host goes through the sign-in host first
   * (its session is the one every other host's hand-off starts from). A return to another host
   * needs nothing more: that host, without cookies, starts its own hand-off.
   */
  function afterSignIn(ctx: RequestContext, rd: string): string {
    const here = thisHost(ctx);
    if (!sso || here === sso.signInHost || !sso.hosts.includes(here) || rd.startsWith(`${SSO_START_PATH}?`)) return rd;
    const absolute = rd.startsWith('/') ? `${siteClear.origin(here)}${rd}` : rd;
    return `${siteClear.origin(sso.signInHost)}${SSO_BEGIN_PATH}?${new URLSearchParams({ from: here, rd: absolute }).toString()}`;
  }

  function redirect(ctx: RequestContext, res: ServerResponse, location: string, extra: Record<string, string> = {}): void {
    ctx.reply.redirect(res, 303, location, extra);
  }

  /**
   * Revokes the session the browser's cookies carry (its access token and refresh family), if
   * any, and returns the family. Logout does this; so does a login, so that a refresh token
   * copied from the previous session does not outlive it; so does each hop of the logout's
   * clearing chain. `onAccess` sees the access token's claims when it was still valid.
   */
  async function endBrowserSession(ctx: RequestContext, onAccess: (claims: TokenClaims) => void = () => undefined, by: EndedBy = { actor: 'unknown', reason: 'logout' }, keepSid?: string): Promise<{ family?: string | undefined; user?: string | undefined; sid?: string | undefined }> {
    const cookies = parseCookies(ctx.req.headers.cookie);
    const access = singleCookie(cookies, ACCESS_COOKIE);
    const refresh = singleCookie(cookies, REFRESH_COOKIE);
    let family: string | undefined;
    let user: string | undefined;
    let sid: string | undefined;
    if (typeof access === 'string' && access !== 'ambiguous') {
      try {
        const claims = await auth.tokens.verify(access);
        family = claims.fam;
        user = claims.sub;
        sid = claims.sid;
        await auth.revocations.revoke(claims.jti, claims.exp);
        onAccess(claims);
      } catch {
        // An expired or invalid access token needs no revocation.
      }
    }
    if (!family && typeof refresh === 'string' && refresh !== 'ambiguous') {
      const record = await auth.refresh.recordOf(refresh);
      family = record?.family;
      user ??= record?.sub;
      sid = record?.sid;
    }
    // A staff session ends on every host (each host's family with it); once is enough. The SSO
    // callback keeps the session it is joining (this host's older family of it just goes).
    if (sid && sid !== keepSid && !(await auth.sessions.ended(sid))) {
      await auth.sessions.end(sid, { ...by, actor: by.actor === 'unknown' ? (user ?? 'unknown') : by.actor, requestId: ctx.id, clientIp: ctx.address?.client.address });
    } else if (family) await auth.refresh.revokeFamily(family);
    return { family, user, sid };
  }

  /** The SSO callback's replacement of whatever other session this host's cookies carry. */
  async function replaceBrowserSession(ctx: RequestContext, keep: string): Promise<void> {
    const cookies = parseCookies(ctx.req.headers.cookie);
    if (singleCookie(cookies, ACCESS_COOKIE) === undefined && singleCookie(cookies, REFRESH_COOKIE) === undefined) return;
    const replaced = await endBrowserSession(ctx, undefined, { actor: 'sso', reason: 'replaced' }, keep);
    if (replaced.sid === keep) return;
    if (replaced.family) log.security('auth.session_replaced', { requestId: ctx.id, family: replaced.family, previousUser: replaced.user, previousSessionId: replaced.sid, clientIp: ctx.address?.client.address });
  }

  async function logout(ctx: RequestContext, res: ServerResponse): Promise<void> {
    const method = ctx.req.method ?? 'GET';
    if (method === 'GET' || method === 'HEAD') {
      sendPage(ctx, res, 200, logoutPage(ctx.reply.language(ctx.req), { csrf: freshCsrf(ctx) }), chainOrigins(ctx));
      return;
    }
    if (method !== 'POST') throw new GatewayError('METHOD_NOT_ALLOWED', `${method} /auth/logout`);
    const form = await readForm(ctx.req, 'form');
    if (!formCsrfOk(ctx, form)) throw new GatewayError('CSRF_REJECTED', 'logout form CSRF token or Origin mismatch');
    const { family, user, sid } = await endBrowserSession(ctx, (claims) => {
      ctx.principal = { subject: claims.sub, roles: claims.roles, method: 'session', tokenId: claims.jti };
    });
    ctx.reply.cookie(clearCookie(ACCESS_COOKIE), clearCookie(REFRESH_COOKIE));
    expireBrowserCookies(ctx);
    log.security('auth.logout', { requestId: ctx.id, user: ctx.principal?.subject ?? user, family, sessionId: sid, clientIp: ctx.address?.client.address });
    // Every session host's site data goes through the chain, this one's last (see
    // SiteClearChain.start): NocoDB's localStorage token and refresh_token must not greet the
    // next person. Only "storage" here, so the other hosts still get their cookies to end.
    const loginPage = `${siteClear.origin(thisHost(ctx))}/auth/login`;
    redirect(ctx, res, await siteClear.start(thisHost(ctx), loginPage), { 'clear-site-data': CLEAR_STORAGE });
  }

  /**
   * A hop of the logout's clearing chain: redeems its ticket (else SITE_CLEAR_INVALID, and
   * nothing is cleared), ends the session this host's cookies carry, clears this origin's
   * site data and sends the browser on to the next host, or to the login page at the end.
   */
  async function clearHop(ctx: RequestContext, res: ServerResponse): Promise<void> {
    if (ctx.req.method !== 'GET') throw new GatewayError('METHOD_NOT_ALLOWED', `${ctx.req.method} ${CLEAR_PATH}`);
    const next = await siteClear.next(new URLSearchParams(ctx.target?.query ?? '').get('token'), thisHost(ctx));
    const { family, user } = await endBrowserSession(ctx);
    ctx.reply.cookie(clearCookie(ACCESS_COOKIE), clearCookie(REFRESH_COOKIE), clearCookie(CSRF_COOKIE));
    expireBrowserCookies(ctx);
    log.security('auth.site_data_cleared', { requestId: ctx.id, host: thisHost(ctx), user, family, clientIp: ctx.address?.client.address });
    // no-referrer: the next hop's URL carries its ticket; never hand it on in a Referer.
    redirect(ctx, res, next, { 'clear-site-data': CLEAR_SITE_DATA, 'referrer-policy': 'no-referrer' });
  }

  async function token(ctx: RequestContext, res: ServerResponse): Promise<void> {
    if (ctx.req.method !== 'POST') throw new GatewayError('METHOD_NOT_ALLOWED', `${ctx.req.method} /auth/token`);
    const form = await readForm(ctx.req, 'form');
    if (form.get('grant_type') !== 'client_credentials') throw new GatewayError('BAD_REQUEST', 'grant_type must be client_credentials');
    const basic = readBasic(ctx.req);
    if (!basic) throw new GatewayError('AUTH_REQUIRED', 'no client credentials', { 'www-authenticate': 'Basic realm="crm-gateway"' });
    await limits.token(ctx, basic.name.slice(0, 64));
    const attempt = loginAttempt(`${CLIENT_SUBJECT_PREFIX}${basic.name.slice(0, 64)}`, ctx.address?.client, ctx.id);
    await auth.lockout.check(attempt);
    const client = await auth.store.getClient(basic.name);
    const given = createHash('sha256').update(basic.secret).digest('hex');
    const ok = client !== undefined && timingSafeEqual(Buffer.from(given), Buffer.from(client.secretHash.padEnd(64, '0').slice(0, 64)));
    if (!client || !ok || client.disabled) {
      await auth.lockout.failed(attempt, !client ? 'unknown client' : !ok ? 'wrong secret' : 'disabled');
      throw new GatewayError('AUTH_FAILED', `client ${basic.name}: ${!client ? 'unknown' : !ok ? 'wrong secret' : 'disabled'}`, { 'www-authenticate': 'Basic realm="crm-gateway"' });
    }
    await auth.lockout.succeeded(attempt);
    const blocked = accountBlocked(blocks, `${CLIENT_SUBJECT_PREFIX}${client.name}`);
    if (blocked) throw blocked;
    const ttl = Math.min(CLIENT_TOKEN_TTL_MS, auth.config.maxTokenTtl);
    const issued = auth.tokens.issue({ sub: `${CLIENT_SUBJECT_PREFIX}${client.name}`, roles: client.roles, ttlMs: ttl, typ: 'access' });
    log.security('auth.token_issued', { requestId: ctx.id, client: client.name, roles: client.roles, tokenId: issued.claims.jti, expiresAt: new Date(issued.claims.exp * 1000).toISOString(), via: 'client_credentials' });
    const body = JSON.stringify({ access_token: issued.token, token_type: 'Bearer', expires_in: Math.floor(ttl / 1000) });
    ctx.reply.answer(res, 200, { body: { contentType: 'application/json', body } });
  }

  const kit: AuthEndpointKit = {
    cfg,
    auth,
    log,
    limits,
    blocks,
    complete,
    gate: (g) => void gates.push(g),
    freshCsrf,
    formCsrfOk,
    returnTo,
    signInHost,
    origin: (host) => siteClear.origin(host),
    thisHost,
    signInFormOrigins,
  };
  // The dispatch of /auth/*. Each sign-in flow adds one line below (kit in, handler out), e.g.
  // `paths.prefix('/auth/mfa/', createMfaEndpoints(kit));` — a prefix ends with '/' and owns
  // every path under it; `paths.exact(path, handler)` for a single path.
  const paths = new AuthPaths()
    .exact('/auth/login', login)
    .exact('/auth/logout', logout)
    .exact('/auth/token', token)
    .exact(CLEAR_PATH, clearHop)
    .exact(WS_TICKET_PATH, wsTicket);
  // Forward-auth's session renewal (src/auth/forward-auth/renew.ts), only where an edge asks.
  if (cfg.forwardAuth) paths.exact(RENEW_PATH, createRenewEndpoint(kit));
  if (oidc) paths.prefix('/auth/oidc/', createOidcEndpoints(kit, oidc));
  // Second factor (src/auth/mfa/): also registers the sign-in gate that sends a first factor there.
  const mfa = createMfaEndpoints(kit);
  paths.exact('/auth/mfa', mfa).prefix('/auth/mfa/', mfa);
  if (sso) paths.prefix(SSO_PREFIX, createSsoEndpoints(kit, sso, { replaceBrowserSession, expireBrowserCookies }));
  const sessionsPage = createSessionsEndpoints(kit);
  paths.exact(SESSIONS_PATH, sessionsPage).prefix(`${SESSIONS_PATH}/`, sessionsPage);

  return {
    owns: (path) => AUTH_PATHS.has(path) || paths.find(path) !== undefined,
    handle(ctx, res, fail) {
      const run: AuthHandler | undefined = paths.find(ctx.path ?? '');
      responses.set(ctx, res);
      (run ? run(ctx, res) : Promise.reject(new GatewayError('ROUTE_NOT_FOUND', `no auth endpoint at ${ctx.path}`))).catch((err: unknown) => fail(isGatewayError(err) ? err : new GatewayError('INTERNAL', String(err))));
    },
  };
}

/** The origin of an absolute return URL (already checked by safeReturnTo), for the page's form-action. */
function returnOrigin(rd: string): string | undefined {
  return rd.startsWith('https://') ? new URL(rd).origin : undefined;
}

/** Clears a cookie of an upstream app (a previous user's NocoDB or Metabase session). */
function clearUpstreamCookie(name: string): string | undefined {
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) return undefined;
  return name.startsWith('__Host-') || name.startsWith('__Secure-')
    ? `${name}=; Max-Age=0; Path=/; Secure`
    : `${name}=; Max-Age=0; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT`;
}
