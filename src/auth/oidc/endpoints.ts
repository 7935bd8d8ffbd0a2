import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { RequestContext } from '../../context.js';
import { GatewayError, isGatewayError } from '../../errors.js';
import { equalSecret } from '../equal-secret.js';
import { OIDC_STATE_COOKIE, clearCookie, parseCookies, setCookie, singleCookie } from '../cookies.js';
import { OneTimeTickets } from '../one-time-tickets.js';
import type { AuthEndpointKit, AuthHandler } from '../paths.js';
import type { OidcConfig } from './config.js';
import type { FlowSecrets, OidcClient } from './client.js';
import { applyRules, type OidcIdentity } from './rules.js';

export const OIDC_START_PATH = '/auth/oidc/start';
export const OIDC_CALLBACK_PATH = '/auth/oidc/callback';
/** How long a started sign-in may take at the provider (login, consent, a second factor there). */
const FLOW_TTL_MS = 10 * 60_000;
/** State, nonce and PKCE verifier: 32 random bytes each, base64url (as openid-client's own random*()). */
const STATE_BYTES = 32;

interface StoredFlow {
  nonce: string;
  codeVerifier: string;
  returnTo: string;
}

/**
 * `/auth/oidc/start` and `/auth/oidc/callback` (sign-in with an external OpenID Provider,
 * issue 14 item 3). Built only with `auth.oidc`; the client module (openid-client) is imported
 * here with `await import()`, so a gateway without it never loads it.
 *
 * Start (on the sign-in host; other hosts send the browser there): fresh state, nonce and PKCE
 * verifier; nonce, verifier and the return URL kept server-side under the state (Kv, single
 * use, 10 min); the state in OIDC_STATE_COOKIE; then the provider's authorization URL.
 * Callback: the state in the URL must equal this browser's cookie (a foreign state, as in login
 * CSRF, fails here) and be taken from the store (a replayed one fails here), before anything
 * is asked of the provider; then the client's checks (src/auth/oidc/client.ts), then the rules
 * (src/auth/oidc/rules.ts), then CompleteSignIn with factors ['oidc'].
 */
export function createOidcEndpoints(kit: AuthEndpointKit, cfg: OidcConfig): AuthHandler {
  const redirectUri = cfg.redirectUri ?? `${kit.origin(kit.signInHost)}${OIDC_CALLBACK_PATH}`;
  const home = new URL(redirectUri).hostname.toLowerCase();
  const flows = new OneTimeTickets(kit.auth.kv, 'oidc:flow', STATE_BYTES, FLOW_TTL_MS);
  let client: Promise<OidcClient> | undefined;
  const rp = (): Promise<OidcClient> => {
    client ??= import('./client.js').then(({ OidcClient }) => new OidcClient(cfg, redirectUri, Math.floor(Math.min(kit.cfg.auth.clockSkew, 30_000) / 1000), kit.log));
    return client;
  };
  const clientIp = (ctx: RequestContext): string | undefined => ctx.address?.client.address;
  // Discovery begins now, in the background: the startup log says whether the provider answers,
  // and the first sign-in does not wait for it. Nothing waits on it: a provider down now is
  // asked again by the first sign-in (OidcClient.configuration).
  void rp()
    .then((c) => c.configuration())
    .catch(() => undefined);

  /** Logs the refusal with its detail (the page and the access line get the code only) and passes it on. */
  const refused = (ctx: RequestContext, err: unknown): never => {
    const e = isGatewayError(err) ? err : new GatewayError('INTERNAL', String(err));
    if (e.code === 'OIDC_UNAVAILABLE') kit.log.security('auth.oidc_unavailable', { requestId: ctx.id, issuer: cfg.issuer, detail: e.detail, clientIp: clientIp(ctx) });
    else if (e.code.startsWith('OIDC_')) kit.log.security('auth.oidc_refused', { requestId: ctx.id, issuer: cfg.issuer, code: e.code, detail: e.detail, clientIp: clientIp(ctx) });
    throw e;
  };

  async function start(ctx: RequestContext, res: ServerResponse): Promise<void> {
    const query = new URLSearchParams(ctx.target?.query ?? '');
    const rd = kit.returnTo(ctx, query.get('rd'));
    if (kit.thisHost(ctx) !== home) {
      // The state cookie must be set on the host the provider sends the browser back to.
      const back = rd.startsWith('/') ? `${kit.origin(kit.thisHost(ctx))}${rd}` : rd;
      ctx.reply.redirect(res, 303, `${kit.origin(home)}${OIDC_START_PATH}?rd=${encodeURIComponent(back)}`);
      return;
    }
    // Each start stores a flow for 10 minutes: charged like a sign-in attempt, per address.
    await kit.limits.login(ctx);
    const nonce = randomBytes(STATE_BYTES).toString('base64url');
    const codeVerifier = randomBytes(STATE_BYTES).toString('base64url');
    const stored: StoredFlow = { nonce, codeVerifier, returnTo: rd };
    let url: URL;
    let state: string | undefined;
    try {
      const relyingParty = await rp();
      // Discovery first (it may refuse): no flow is stored for a provider that is down.
      await relyingParty.configuration();
      state = await flows.issue(() => JSON.stringify(stored));
      url = await relyingParty.authorizationUrl({ state, nonce, codeVerifier });
    } catch (err) {
      if (state) await flows.take(state);
      return refused(ctx, err);
    }
    // __Host- (no sibling subdomain can plant one); SameSite=Lax: the provider's redirect back is
    // a top-level GET from another site, which Lax lets through and Strict would not.
    ctx.reply.cookie(setCookie(OIDC_STATE_COOKIE, state, FLOW_TTL_MS, 'lax'));
    kit.log.security('auth.oidc_started', { requestId: ctx.id, issuer: cfg.issuer, clientIp: clientIp(ctx) });
    ctx.reply.redirect(res, 303, url.href);
  }

  async function callback(ctx: RequestContext): Promise<void> {
    // The flow's cookie goes whatever happens: it is single use like the state it holds.
    ctx.reply.cookie(clearCookie(OIDC_STATE_COOKIE));
    const query = new URLSearchParams(ctx.target?.query ?? '');
    const states = query.getAll('state');
    const cookie = singleCookie(parseCookies(ctx.req.headers.cookie), OIDC_STATE_COOKIE);
    const state = states[0] ?? '';
    if (states.length !== 1 || !flows.wellFormed(state)) return refused(ctx, new GatewayError('OIDC_STATE_INVALID', `state ${states.length === 0 ? 'missing' : states.length > 1 ? 'repeated' : 'malformed'}`));
    if (typeof cookie !== 'string' || cookie === 'ambiguous') return refused(ctx, new GatewayError('OIDC_STATE_INVALID', `state cookie ${cookie === undefined ? 'missing' : 'sent more than once'} on ${kit.thisHost(ctx)}`));
    if (!equalSecret(cookie, state)) return refused(ctx, new GatewayError('OIDC_STATE_INVALID', 'state is not the one this browser started (foreign state)'));
    const raw = await flows.take(state);
    if (raw === undefined) return refused(ctx, new GatewayError('OIDC_STATE_INVALID', 'state unknown, already used or expired (replay)'));
    const flow = JSON.parse(raw) as StoredFlow;
    const secrets: FlowSecrets = { state, nonce: flow.nonce, codeVerifier: flow.codeVerifier };
    const current = new URL(redirectUri);
    current.search = ctx.target?.query ? `?${ctx.target.query}` : '';
    let identity: OidcIdentity;
    try {
      const verified = await (await rp()).callback(current, secrets);
      identity = applyRules(cfg, verified.issuer, verified.claims);
      kit.log.security('auth.oidc_verified', { requestId: ctx.id, issuer: verified.issuer, user: identity.subject, email: identity.email, groups: identity.groups.slice(0, 50), roles: identity.roles, clientIp: clientIp(ctx) });
    } catch (err) {
      return refused(ctx, err);
    }
    await kit.complete(ctx, { subject: identity.subject, roles: identity.roles, factors: ['oidc'], method: 'oidc' }, flow.returnTo);
  }

  return async (ctx, res) => {
    const path = ctx.path ?? '';
    const method = ctx.req.method ?? 'GET';
    if (path !== OIDC_START_PATH && path !== OIDC_CALLBACK_PATH) throw new GatewayError('ROUTE_NOT_FOUND', `no OIDC endpoint at ${path}`);
    if (method !== 'GET') throw new GatewayError('METHOD_NOT_ALLOWED', `${method} ${path}`);
    if (path === OIDC_START_PATH) await start(ctx, res);
    else await callback(ctx);
  };
}
