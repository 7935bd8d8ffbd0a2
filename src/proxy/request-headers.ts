import type { IncomingHttpHeaders } from 'node:http';
import type { RequestContext } from '../context.js';
import type { RouteConfig } from '../config/schema.js';
import { withoutGatewayCookies } from '../auth/cookies.js';
import { withoutPort } from '../net/client-ip.js';
import { normalizeIp } from '../net/ip.js';
import { ASSERTION_HEADER } from '../auth/assertion/routes.js';

/** Hop-by-hop headers (RFC 9110 §7.6.1) plus legacy ones; never forwarded. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authorization', 'proxy-authenticate']);

/** Headers that carry a client address or the original URL: only the gateway sets these. */
const FORWARDING = /^(forwarded|x-forwarded-.*|x-real-ip|x-client-ip|true-client-ip|cf-connecting-ip|fastly-client-ip|x-cluster-client-ip|x-original-url|x-rewrite-url|x-original-forwarded-for|x-proxyuser-ip|client-ip|via)$/;

/**
 * Identity headers that upstreams may trust: the gateway's own and those other identity-aware
 * proxies use. Compared after lower-casing and mapping `_` to `-`, since CGI-style servers read
 * `X_Gateway_User` as `X-Gateway-User`.
 */
const IDENTITY = /^(x-gateway-.*|x-(forwarded|auth-request|remote|authenticated)-(user|email|groups|roles|preferred-username|access-token)|remote-user|x-user(-.*)?|x-webauth-.*)$/;

/** Headers the gateway sets: a client's `Connection` can never name these away. */
export const GATEWAY_SET = new Set(['host', 'content-length', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'forwarded', 'x-request-id']);

/** `Proxy:` is never forwarded (httpoxy: CGI upstreams read it as HTTP_PROXY). */
const ALWAYS_DROP = new Set(['proxy']);

function canonical(name: string): string {
  return name.toLowerCase().replace(/_/g, '-');
}

/**
 * The headers an upstream receives. Client-sent forwarding and identity headers go first
 * (forwarding ones are kept only from trusted proxies), then hop-by-hop ones and whatever the
 * client's Connection names, then the gateway sets its own. Only headers known to be safe to
 * pass reach the upstream's view of who is calling. `assertion` is the signed identity
 * assertion (X-Gateway-Assertion, matched by IDENTITY when a client sends one): set last, so
 * no route header edit replaces it.
 */
export function buildUpstreamHeaders(ctx: RequestContext, route: RouteConfig, upgrade: boolean, assertion?: string): IncomingHttpHeaders {
  const src = ctx.req.headers;
  const trusted = ctx.address?.peerTrusted === true;
  const named = new Set(
    String(src.connection ?? '')
      .split(',')
      .map((t) => canonical(t.trim()))
      .filter((t) => t !== '' && !GATEWAY_SET.has(t)),
  );
  const out: IncomingHttpHeaders = {};
  for (const [name, value] of Object.entries(src)) {
    if (value === undefined) continue;
    const c = canonical(name);
    if (HOP_BY_HOP.has(name) || ALWAYS_DROP.has(c) || named.has(c)) continue;
    if (IDENTITY.test(c)) continue;
    if (FORWARDING.test(c)) continue;
    if (c !== name) continue; // an underscore twin of a real header name: ambiguous, dropped
    out[name] = value;
  }
  // The gateway's cookies are never for an upstream; its bearer token only when the route says
  // so (NocoDB would read a Bearer token as one of its own API tokens).
  const cookie = withoutGatewayCookies(typeof out.cookie === 'string' ? out.cookie : undefined);
  if (cookie === undefined) delete out.cookie;
  else out.cookie = cookie;
  if (ctx.principal?.method === 'jwt' && !route.passCredentials) delete out.authorization;
  for (const name of route.requestHeaders?.remove ?? []) delete out[name];

  const clientIp = ctx.address?.client.address ?? '';
  const priorXff = trusted ? [src['x-forwarded-for']].flat().filter(Boolean).join(', ') : '';
  const peer = ctx.address?.peer.address ?? '';
  out['x-forwarded-for'] = trusted ? [priorXff || clientIp, peer].filter(Boolean).join(', ') : clientIp;
  const proto = ctx.secure ? 'https' : 'http';
  const host = ctx.req.headers.host ?? '';
  out['x-forwarded-proto'] = proto;
  out['x-forwarded-host'] = host;
  out['x-forwarded-port'] = String(hostPort(host) ?? (ctx.secure ? 443 : 80));
  out.forwarded = forwardedHeader(String(out['x-forwarded-for']), host, proto);
  out['x-request-id'] = ctx.id;
  if (ctx.principal) {
    out['x-gateway-user'] = ctx.principal.subject;
    out['x-gateway-roles'] = ctx.principal.roles.join(',');
    out['x-gateway-auth'] = ctx.principal.method;
    if (ctx.principal.tokenId) out['x-gateway-token-id'] = ctx.principal.tokenId;
  }
  for (const [name, value] of Object.entries(route.requestHeaders?.set ?? {})) out[name] = value;
  if (assertion !== undefined) out[ASSERTION_HEADER] = assertion;
  if (upgrade) {
    out.connection = 'Upgrade';
    out.upgrade = String(src.upgrade ?? '');
  }
  return out;
}

/** The port of a Host header value (`api.example.com:8443`, `[::1]:8443`), if it names one. */
function hostPort(host: string): number | undefined {
  const m = /:(\d{1,5})$/.exec(host);
  return m && !/^\[[^\]]*$/.test(host.slice(0, m.index)) ? Number(m[1]) : undefined;
}

/** A `for=` node of RFC 7239 §6: IPv6 bracketed and quoted; anything that is not an address is `unknown`. */
function forwardedNode(hop: string): string {
  const ip = normalizeIp(withoutPort(hop));
  if (!ip) return 'unknown';
  return ip.family === 'ipv6' ? `"[${ip.address}]"` : ip.address;
}

/**
 * RFC 7239 `Forwarded`, the same hops as X-Forwarded-For (so the two never disagree), the
 * last one with the Host and scheme the client used.
 */
function forwardedHeader(xff: string, host: string, proto: string): string {
  const hops = xff.split(',').map((h) => h.trim()).filter((h) => h !== '');
  const nodes = hops.map((h) => `for=${forwardedNode(h)}`);
  const last = nodes.pop() ?? 'for=unknown';
  // host is a validated Host header (no quotes or controls); quoted since it may hold a colon.
  return [...nodes, `${last};host="${host}";proto=${proto}`].join(', ');
}
