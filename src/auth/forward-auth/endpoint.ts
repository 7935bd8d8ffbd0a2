import type { ServerResponse } from 'node:http';
import type { GatewayConfig, RouteConfig } from '../../config/schema.js';
import { routeSchema } from '../../config/schema.js';
import type { RequestContext } from '../../context.js';
import type { GatewayDeps } from '../../deps.js';
import { GatewayError, isGatewayError } from '../../errors.js';
import { createClientIpResolver } from '../../net/client-ip.js';
import { IpSet } from '../../net/ip.js';
import { normalizePath } from '../../routing/normalize-path.js';
import { checkConnectionBlocks } from '../../containment/enforce.js';
import type { CompiledRoute } from '../../routes.js';
import { renderError, wantsHtml } from '../../respond.js';
import type { AuthService } from '../service.js';
import { ACCESS_COOKIE, REFRESH_COOKIE, parseCookies, singleCookie } from '../cookies.js';
import { originalView, readOriginal, type OriginalRequest } from './original.js';
import { RENEW_PATH } from './renew.js';

export type ForwardAuthConfig = NonNullable<GatewayConfig['forwardAuth']>;

export interface ForwardAuth {
  /** The endpoint's stand-in route for `host` + `path`, matched before the routes (its host need not be routed). */
  endpointFor(host: string, path: string): CompiledRoute | undefined;
  isEndpoint(route: CompiledRoute): boolean;
  handle(ctx: RequestContext, res: ServerResponse, refuse: (err: GatewayError) => void): void;
}

/**
 * Forward-auth mode (issue 14, item 6): the answer to an edge proxy (nginx `auth_request`,
 * Traefik ForwardAuth, Caddy `forward_auth`) that asks whether a request it serves may pass.
 * Only the configured edges are answered: their forwarded headers name the original request and
 * the client, and nobody else's may. The original host and path pick a route with the
 * gateway's own router; that route's steps (`forwardAuthSteps`: allowlist, limits,
 * authentication, blocks, roles, second factor, CSRF) run on the original request, and nothing
 * is forwarded. 2xx carries who it is; a refusal is the one the route would give, the
 * access line and events are those of the request itself, marked `forwardAuth`.
 */
export function createForwardAuth(
  cfg: GatewayConfig,
  fa: ForwardAuthConfig,
  deps: GatewayDeps,
  match: (host: string, path: string) => CompiledRoute | undefined,
): ForwardAuth {
  const edges = new IpSet(fa.edges.length > 0 ? fa.edges : cfg.trustedProxies);
  // The one resolver, trusting the edges too: X-Forwarded-For walked back to the real client.
  const resolveAddress = createClientIpResolver(new IpSet([...cfg.trustedProxies, ...fa.edges]));
  const blocks = deps.containment ? checkConnectionBlocks(deps.containment.blocks) : undefined;
  const endpoint = endpointRoute(fa);
  const log = deps.log;

  async function check(ctx: RequestContext, res: ServerResponse, refuse: (err: GatewayError) => void): Promise<void> {
    const peer = ctx.address?.peer;
    if (!peer || !edges.has(peer)) {
      log.security('auth.forward_auth_untrusted', { requestId: ctx.id, peerIp: peer?.address, forwardedHost: ctx.req.headers['x-forwarded-host'], forwardedUri: ctx.req.headers['x-forwarded-uri'] ?? ctx.req.headers['x-original-uri'] });
      throw new GatewayError('FORWARD_AUTH_UNTRUSTED', `forward-auth check from ${peer?.address ?? 'unknown'}, not an edge`);
    }
    if (ctx.req.method !== 'GET' && ctx.req.method !== 'HEAD' && !ctx.req.headers['x-original-uri']) {
      // Traefik and Caddy always check with GET; nginx's subrequest keeps the client's method.
      throw new GatewayError('FORWARD_AUTH_BAD_REQUEST', `check sent with ${ctx.req.method}`);
    }
    const original = readOriginal(ctx.req, cfg.server.maxUrlLength);
    try {
      await decide(ctx, res, original, peer.address);
    } catch (err) {
      if (!isGatewayError(err)) throw err;
      deny(ctx, res, original, err, refuse);
    }
  }

  /** The route's answer about the original request (its refusals thrown, for `deny`). */
  async function decide(ctx: RequestContext, res: ServerResponse, original: OriginalRequest, edge: string): Promise<void> {
    ctx.forwardAuth = { edge, method: original.method };
    ctx.address = resolveAddress(ctx.req);
    // From here the context describes the original request: the access line, the denial
    // event and every step see its host, path, route and client.
    ctx.target = { host: original.host, rawPath: original.rawPath, query: original.query };
    const path = normalizePath(original.rawPath, { allowEncodedSlashes: true });
    ctx.path = path;
    const route = match(original.host, path);
    if (!route || route === endpoint) throw new GatewayError('ROUTE_NOT_FOUND', `forward-auth check for ${original.host} ${path}`);
    ctx.route = route;
    if (!route.config.allowEncodedSlashes && path.includes('%2F')) throw new GatewayError('PATH_REJECTED', 'encoded slash');
    blocks?.(ctx);

    const view = originalView(ctx.req, original);
    const renewal = deps.auth ? await renewalNeeded(view.headers, route.config, deps.auth) : false;
    // The renewal rotates the refresh token: its Set-Cookie must reach the browser, which a 2xx
    // to an edge never does. So the browser is sent to renew on the gateway itself, and back.
    if (renewal) {
      log.security('auth.forward_auth_renewal', { requestId: ctx.id, route: route.name, clientIp: ctx.address.client.address });
      redirect(ctx, res, original, `${RENEW_PATH}?rd=${encodeURIComponent(originalUri(original))}`, 'renew');
      return;
    }
    // Edges drop Upgrade and Connection (hop-by-hop) from a check, but pass the handshake's own
    // Sec-WebSocket-Key: a websocket then meets the route's upgrade rules and its same-origin
    // check (CSRF), as it would through the gateway, not the looser ones of a plain GET.
    const upgrade = view.headers['sec-websocket-key'] !== undefined;
    if (upgrade && !route.config.websocket) throw new GatewayError('UPGRADE_NOT_ALLOWED', `route ${route.name} does not take websockets`);
    // The steps get the original request; the one reply (status, cookies, headers) is shared.
    const inner: RequestContext = { ...ctx, kind: upgrade ? 'upgrade' : 'http', req: view, onResponseClosed: (ctx.onResponseClosed ??= []) };
    let answer: number | undefined;
    try {
      for (const step of route.forwardAuthSteps) {
        const pending = step(inner);
        const result = pending instanceof Promise ? await pending : pending;
        if (result) {
          answer = result.answer;
          break;
        }
      }
    } finally {
      // Who it was, for the access line and the denial event, refused or not.
      ctx.principal = inner.principal;
    }
    if (answer !== undefined) {
      // A step sent the browser to sign in (or to a second factor): where it said to go.
      const location = ctx.reply.headers.location;
      delete ctx.reply.headers.location;
      if (location !== undefined && answer >= 300 && answer < 400) redirect(ctx, res, original, location, 'sign-in');
      else ctx.reply.answer(res, answer);
      return;
    }
    allow(ctx, res, route);
  }

  /** 200 with who it is; the edge copies these onto the request it sends the app. */
  function allow(ctx: RequestContext, res: ServerResponse, route: CompiledRoute): void {
    const p = ctx.principal;
    const headers: Record<string, string> = {};
    if (p) {
      headers['x-gateway-user'] = p.subject;
      headers['x-gateway-roles'] = p.roles.join(',');
      headers['x-gateway-auth'] = p.method;
      if (p.tokenId) headers['x-gateway-token-id'] = p.tokenId;
      const assertion = route.assertion?.(ctx);
      if (assertion) headers['x-gateway-assertion'] = assertion;
    }
    ctx.reply.answer(res, 200, { headers });
  }

  /**
   * A redirect: the answer itself for Traefik and Caddy (they pass it to the client with its
   * Set-Cookie); for nginx a 401 naming it, which the snippet's `error_page 401` location turns
   * into the redirect (`auth_request` can pass nothing else).
   */
  function redirect(ctx: RequestContext, res: ServerResponse, original: OriginalRequest, location: string, kind: 'sign-in' | 'renew'): void {
    // 307 keeps the method and body: an XHR POST whose session needs renewing is sent again.
    const status = kind === 'renew' ? 307 : 302;
    if (!original.statusOnly) {
      ctx.reply.redirect(res, status, location);
      return;
    }
    ctx.reply.answer(res, 401, { headers: { [kind === 'renew' ? 'x-gateway-renew' : 'x-gateway-location']: location, 'www-authenticate': 'Cookie realm="crm-gateway"' } });
  }

  /**
   * The route's refusal. nginx takes only 401 and 403 from a check (anything else becomes its
   * own 500), so for it every other refusal under 500 is a 403, with the real status and code in
   * headers for the snippet's error page; 5xx stay 5xx (nginx answers 500: fail closed).
   */
  function deny(ctx: RequestContext, res: ServerResponse, original: OriginalRequest, err: GatewayError, refuse: (err: GatewayError) => void): void {
    const tagged = new GatewayError(err.code, err.detail, { ...err.headers, 'x-gateway-error': err.code }, err.pointer);
    if (!original.statusOnly || err.status === 401 || err.status === 403 || err.status >= 500) {
      refuse(tagged);
      return;
    }
    ctx.reply.fail(tagged);
    const html = wantsHtml(ctx.req);
    ctx.reply.answer(res, 403, { headers: { ...tagged.headers, 'x-gateway-status': String(err.status) }, body: renderError(err, ctx.id, html, html ? ctx.reply.language(ctx.req) : undefined) });
  }

  return {
    endpointFor: (host, path) => (host === fa.host && path === fa.path ? endpoint : undefined),
    isEndpoint: (route) => route === endpoint,
    handle(ctx, res, refuse) {
      check(ctx, res, refuse).catch((err: unknown) => refuse(isGatewayError(err) ? err : new GatewayError('INTERNAL', err instanceof Error ? (err.stack ?? err.message) : String(err))));
    },
  };
}

function originalUri(original: OriginalRequest): string {
  return original.query ? `${original.rawPath}?${original.query}` : original.rawPath;
}

/**
 * Whether the route's authentication would renew the browser's session (an expired or missing
 * access cookie next to a refresh cookie): the check must not rotate it (see `check`).
 */
async function renewalNeeded(headers: RequestContext['req']['headers'], route: RouteConfig, auth: AuthService): Promise<boolean> {
  if (route.auth !== 'session' && route.auth !== 'jwt-or-session') return false;
  if (headers.authorization !== undefined) return false;
  const cookies = parseCookies(headers.cookie);
  const access = singleCookie(cookies, ACCESS_COOKIE);
  const refresh = singleCookie(cookies, REFRESH_COOKIE);
  // Ambiguous cookies are the authenticate step's to refuse.
  if (refresh === undefined || refresh === 'ambiguous' || access === 'ambiguous') return false;
  if (access === undefined) return true;
  try {
    await auth.tokens.verify(access);
    return false;
  } catch (err) {
    return isGatewayError(err) && err.code === 'AUTH_EXPIRED';
  }
}

/**
 * The endpoint as a route of its own, so the connection steps (request target, path, blocks)
 * run for it as for any request, and an upgrade to it is refused. It has no steps: the checked
 * route's run inside.
 */
function endpointRoute(fa: ForwardAuthConfig): CompiledRoute {
  const config = routeSchema.parse({ name: 'forward-auth', host: fa.host, path: fa.path, upstream: 'http://127.0.0.1:9', auth: 'none', websocket: false });
  return { name: config.name, config, target: new URL(config.upstream), steps: [], upgradeSteps: [], ownPageSteps: [], forwardAuthSteps: [] };
}
