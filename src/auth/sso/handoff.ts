import { createHash, randomBytes } from 'node:crypto';
import type { RequestContext } from '../../context.js';
import type { EventFields } from '../../log/events.js';
import { GatewayError } from '../../errors.js';
import { accountBlocked } from '../../containment/enforce.js';
import { LOGIN_PATH } from '../challenge.js';
import { SSO_STATE_COOKIE, clearCookie, parseCookies, setCookie, singleCookie } from '../cookies.js';
import { equalSecret } from '../equal-secret.js';
import { OneTimeTickets } from '../one-time-tickets.js';
import type { AuthEndpointKit, AuthHandler } from '../paths.js';
import { browserSession, issueHostSession } from '../sessions/host-session.js';
import { CLEAR_STORAGE } from '../site-clear.js';
import { SSO_BEGIN_PATH, SSO_CALLBACK_PATH, SSO_START_PATH } from './paths.js';
import type { SsoSetup } from './setup.js';

/** A code is redeemed by a redirect the browser follows at once. */
export const SSO_CODE_TTL_MS = 30_000;
/** 256 random bits. */
const CODE_BYTES = 32;
/** The state cookie waits for a sign-in that may include typing a password and a second factor. */
const STATE_TTL_MS = 10 * 60_000;
const STATE_BYTES = 32;
/** base64url of a SHA-256. */
const STATE_HASH = /^[A-Za-z0-9_-]{43}$/;

/** What a code stands for, held server-side under the code's hash. */
interface CodeRecord {
  /** The only host that may redeem it. */
  host: string;
  sid: string;
  subject: string;
  /** SHA-256 of the state cookie set on `host` by the flow's begin: only that browser may redeem it. */
  state: string;
  /** Where the callback sends the browser: checked at start, and again at the callback. */
  rd: string;
}

/** What the hand-off needs besides the kit: the session ending and cookie clearing a login does. */
export interface SsoHelpers {
  /** Ends the session this host's cookies carry (another one than `keep`). */
  replaceBrowserSession(ctx: RequestContext, keep: string): Promise<void>;
  /** Expires the cookies of whoever used the browser before (upstream sessions), as a login does. */
  expireBrowserCookies(ctx: RequestContext): void;
}

const sha256 = (s: string): string => createHash('sha256').update(s).digest('base64url');

/**
 * One login for every session host (issue 14, item 1), Pomerium's pattern with host-bound
 * cookies. A host T without a session sends the browser to `begin` on itself, which sets a
 * random state cookie (`__Host-`, T alone) and goes to `start` on the host that holds the
 * session (the sign-in host S; after a direct login on T, the other way round). `start` signs
 * in there if needed and mints a one-time code (256 bits, stored hashed, 30 s, single use)
 * bound to T, the session id and the state's hash, and sends it to T's `callback`, which
 * redeems it (GETDEL: once, on one instance), checks the state cookie, and sets T's own cookies
 * for the same session.
 *
 * Threats: a code replayed (taken at first use), redeemed on another host (bound to T), leaked
 * through Referer or a cache (every answer no-referrer and no-store; the callback's final
 * redirect carries no code), login CSRF (a code minted for an attacker's session is refused in a
 * browser that did not start the flow: its state cookie is missing or differs), cookie tossing
 * from a sibling subdomain (`__Host-` names cannot be set with Domain; a name sent twice is
 * refused), open redirects (`rd` through safeReturnTo at start and callback, `to` only a session
 * host on the gateway's port).
 */
export function createSsoEndpoints(kit: AuthEndpointKit, sso: SsoSetup, helpers: SsoHelpers): AuthHandler {
  const { auth, log } = kit;
  const codes = new OneTimeTickets(auth.kv, 'ssoc', CODE_BYTES, SSO_CODE_TTL_MS);
  const hosts = new Set(sso.hosts);
  const headers = { 'referrer-policy': 'no-referrer', 'cache-control': 'no-store' };

  const query = (ctx: RequestContext): URLSearchParams => new URLSearchParams(ctx.target?.query ?? '');
  const refused = (ctx: RequestContext, code: 'AUTH_SSO_CODE_INVALID' | 'AUTH_SSO_STATE_INVALID' | 'BAD_REQUEST', reason: string, extra: EventFields<'auth.sso_refused'> = {}): GatewayError => {
    log.security('auth.sso_refused', { requestId: ctx.id, code, reason, host: kit.thisHost(ctx), clientIp: ctx.address?.client.address, ...extra });
    return new GatewayError(code, reason);
  };
  /** An absolute URL for a checked return: a path is on this host. */
  const absolute = (ctx: RequestContext, rd: string): string => (rd.startsWith('/') ? `${kit.origin(kit.thisHost(ctx))}${rd}` : rd);
  /**
   * A checked return as the browser is sent there from this host: a path when it is on this host.
   * Never `//…` or `/\…`: cut from its origin, that path would be a protocol-relative URL to
   * another site (safeReturnTo refuses such paths too; this holds whatever reaches it).
   */
  const local = (ctx: RequestContext, rd: string): string => {
    const mine = kit.origin(kit.thisHost(ctx));
    const path = rd === mine ? '/' : rd.startsWith(`${mine}/`) ? rd.slice(mine.length) : rd;
    return /^[/\\][/\\]/.test(path) ? '/' : path;
  };
  const go = (ctx: RequestContext, res: Parameters<AuthHandler>[1], location: string, extra: Record<string, string> = {}): void => ctx.reply.redirect(res, 302, location, { ...headers, ...extra });

  /** On the host that wants a session. `from`: the host holding it, when not the sign-in host (after a direct login elsewhere). */
  const begin: AuthHandler = async (ctx, res) => {
    if (ctx.req.method !== 'GET' && ctx.req.method !== 'HEAD') throw new GatewayError('METHOD_NOT_ALLOWED', `${ctx.req.method} ${SSO_BEGIN_PATH}`);
    const here = kit.thisHost(ctx);
    const q = query(ctx);
    const rd = absolute(ctx, kit.returnTo(ctx, q.get('rd')));
    const fromParam = q.get('from')?.toLowerCase();
    if (fromParam !== undefined && (!hosts.has(fromParam) || fromParam === here)) throw refused(ctx, 'BAD_REQUEST', `begin from ${JSON.stringify(fromParam.slice(0, 100))}: not another session host`);
    const from = fromParam ?? sso.signInHost;
    // The sign-in host itself signs in with its own form.
    if (from === here) return go(ctx, res, `${LOGIN_PATH}?rd=${encodeURIComponent(local(ctx, rd))}`);
    const state = randomBytes(STATE_BYTES).toString('base64url');
    ctx.reply.cookie(setCookie(SSO_STATE_COOKIE, state, STATE_TTL_MS, 'lax'));
    const to = new URLSearchParams({ to: here, state: sha256(state), rd });
    go(ctx, res, `${kit.origin(from)}${SSO_START_PATH}?${to.toString()}`);
  };

  /** On the host holding the session: a code for `to`, or its sign-in first. */
  const start: AuthHandler = async (ctx, res) => {
    if (ctx.req.method !== 'GET' && ctx.req.method !== 'HEAD') throw new GatewayError('METHOD_NOT_ALLOWED', `${ctx.req.method} ${SSO_START_PATH}`);
    const here = kit.thisHost(ctx);
    const q = query(ctx);
    const to = (q.get('to') ?? '').toLowerCase();
    if (!hosts.has(to) || to === here) throw refused(ctx, 'BAD_REQUEST', `start for ${JSON.stringify(to.slice(0, 100))}: not another session host`);
    const state = q.get('state') ?? '';
    if (!STATE_HASH.test(state)) throw refused(ctx, 'AUTH_SSO_STATE_INVALID', 'start without a well-formed state');
    // Checked as a return URL of this gateway; anything else (another site, http:, //evil) becomes `to`'s root.
    const checked = kit.returnTo(ctx, q.get('rd'));
    const rd = checked.startsWith('https://') ? checked : `${kit.origin(to)}/`;
    const session = await browserSession(ctx, auth, log);
    if (!session?.sessionId) {
      // Not signed in here (or a session from before one login existed): sign in, then come back.
      const back = `${SSO_START_PATH}?${new URLSearchParams({ to, state, rd }).toString()}`;
      return go(ctx, res, `${LOGIN_PATH}?rd=${encodeURIComponent(back)}`);
    }
    const record: CodeRecord = { host: to, sid: session.sessionId, subject: session.subject, state, rd };
    const code = await codes.issue(() => JSON.stringify(record));
    log.security('auth.sso_code_issued', { requestId: ctx.id, user: session.subject, sessionId: session.sessionId, host: here, for: to, clientIp: ctx.address?.client.address });
    go(ctx, res, `${kit.origin(to)}${SSO_CALLBACK_PATH}?code=${code}`);
  };

  /** Back on the host that wants a session: the code, once, with this browser's state. */
  const callback: AuthHandler = async (ctx, res) => {
    if (ctx.req.method !== 'GET') throw new GatewayError('METHOD_NOT_ALLOWED', `${ctx.req.method} ${SSO_CALLBACK_PATH}`);
    // Also on a refusal: its page must not hand the code on either.
    for (const [k, v] of Object.entries(headers)) ctx.reply.header(k, v);
    const here = kit.thisHost(ctx);
    const code = query(ctx).get('code') ?? '';
    if (!codes.wellFormed(code)) throw refused(ctx, 'AUTH_SSO_CODE_INVALID', 'malformed code');
    // Taken before any other check: a code that failed once (wrong host, no state) is gone.
    const raw = await codes.take(code);
    if (!raw) throw refused(ctx, 'AUTH_SSO_CODE_INVALID', 'unknown, already used or expired code');
    const record = JSON.parse(raw) as CodeRecord;
    if (record.host !== here) throw refused(ctx, 'AUTH_SSO_CODE_INVALID', `code for ${record.host} redeemed on ${here}`, { user: record.subject, sessionId: record.sid });
    const state = singleCookie(parseCookies(ctx.req.headers.cookie), SSO_STATE_COOKIE);
    ctx.reply.cookie(clearCookie(SSO_STATE_COOKIE));
    if (state === 'ambiguous') throw refused(ctx, 'AUTH_SSO_STATE_INVALID', 'state cookie sent more than once', { user: record.subject, sessionId: record.sid });
    if (state === undefined || !equalSecret(sha256(state), record.state)) {
      throw refused(ctx, 'AUTH_SSO_STATE_INVALID', state === undefined ? 'no state cookie: this browser did not start the sign-in' : 'state cookie of another sign-in', { user: record.subject, sessionId: record.sid });
    }
    const session = await auth.sessions.live(record.sid);
    if (!session || session.subject !== record.subject) throw refused(ctx, 'AUTH_SSO_CODE_INVALID', `session ${record.sid} has ended`, { user: record.subject, sessionId: record.sid });
    if ((await auth.accountStatus(session.subject)) !== 'ok') throw refused(ctx, 'AUTH_SSO_CODE_INVALID', `account ${session.subject} disabled or gone`, { user: session.subject, sessionId: session.id });
    const blocked = accountBlocked(kit.blocks, session.subject);
    if (blocked) throw blocked;
    await helpers.replaceBrowserSession(ctx, session.id);
    helpers.expireBrowserCookies(ctx);
    const issued = await issueHostSession(ctx, auth, session);
    log.security('auth.sso_signed_in', { requestId: ctx.id, user: session.subject, sessionId: session.id, host: here, family: issued.family, tokenId: issued.tokenId, factors: session.factors, clientIp: ctx.address?.client.address });
    // Checked again here: the record came from the store, and `rd` must still be one of ours.
    const rd = kit.returnTo(ctx, record.rd);
    // As at a login: this host's storage (NocoDB's token) belonged to whoever used it before.
    go(ctx, res, local(ctx, rd), { 'clear-site-data': CLEAR_STORAGE });
  };

  return async (ctx, res) => {
    const path = ctx.path ?? '';
    const run = path === SSO_BEGIN_PATH ? begin : path === SSO_START_PATH ? start : path === SSO_CALLBACK_PATH ? callback : undefined;
    if (!run) throw new GatewayError('ROUTE_NOT_FOUND', `no SSO endpoint at ${path}`);
    await run(ctx, res);
  };
}
