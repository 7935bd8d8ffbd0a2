import { GatewayError } from '../errors.js';
import type { RouteConfig } from '../config/schema.js';
import type { RequestContext } from '../context.js';
import type { Step } from '../step.js';
import { namesRequestHost } from '../routing/same-host.js';

const SAFE_METHODS = new Set(['GET', 'HEAD']);

interface OriginRule {
  /** Exact origin (`https://app.example.com:8443`), or a bare host name matched on http/https, any port. */
  readonly origins: ReadonlySet<string>;
  readonly hosts: ReadonlySet<string>;
  readonly any: boolean;
}

function compileOrigins(entries: readonly string[]): OriginRule {
  const origins = new Set<string>();
  const hosts = new Set<string>();
  let any = false;
  for (const e of entries) {
    if (e === '*') any = true;
    else if (/^https?:\/\//i.test(e)) origins.add(new URL(e).origin);
    else hosts.add(e.toLowerCase().replace(/\.$/, ''));
  }
  return { origins, hosts, any };
}

function parseOrigin(origin: string): URL | undefined {
  if (origin === 'null') return undefined;
  try {
    const u = new URL(origin);
    return (u.protocol === 'https:' || u.protocol === 'http:') && u.origin === origin.toLowerCase() ? u : undefined;
  } catch {
    return undefined;
  }
}

/** Whether the Origin is the gateway's own origin for this request (same-origin requests need no CORS). */
function isSameOrigin(ctx: RequestContext, origin: URL): boolean {
  if (origin.protocol !== (ctx.secure ? 'https:' : 'http:')) return false;
  return namesRequestHost(origin, ctx.req.headers.host, { dottedHost: true });
}

/**
 * CORS at the gateway. Listed origins get Access-Control-Allow-Origin (never `*` with
 * credentials); preflights are answered here and never reach the upstream. An origin that is
 * neither listed nor the gateway's own is refused for preflights, websocket upgrades and
 * unsafe methods, and gets no CORS headers on safe ones.
 */
export function createCors(route: RouteConfig): Step {
  const cfg = route.cors;
  const rule = compileOrigins(cfg?.origins ?? []);
  const allowMethods = (cfg?.methods ?? []).join(', ');
  const allowHeaders = (cfg?.headers ?? []).join(', ');
  const exposeHeaders = (cfg?.exposeHeaders ?? []).join(', ');
  const maxAge = String(Math.floor((cfg?.maxAge ?? 0) / 1000));

  const listed = (origin: URL): boolean => rule.origins.has(origin.origin) || rule.hosts.has(origin.hostname);

  return (ctx) => {
    const originHeader = ctx.req.headers.origin;
    if (originHeader === undefined) return;
    ctx.reply.headers.vary = 'Origin';
    const origin = parseOrigin(originHeader);
    if (origin && isSameOrigin(ctx, origin)) return;

    const isListed = origin !== undefined && listed(origin);
    const allowed = isListed || (rule.any && origin !== undefined);
    const method = ctx.req.method ?? 'GET';
    const preflight = ctx.kind === 'http' && method === 'OPTIONS' && ctx.req.headers['access-control-request-method'] !== undefined;

    if (!allowed) {
      if (preflight || ctx.kind === 'upgrade' || !SAFE_METHODS.has(method)) {
        throw new GatewayError('CORS_ORIGIN_DENIED', `origin ${originHeader} not allowed on route ${route.name}`);
      }
      return;
    }
    // A wildcard never carries credentials; a listed origin is echoed exactly.
    const credentials = isListed && cfg?.credentials === true;
    ctx.reply.headers['access-control-allow-origin'] = credentials || isListed ? (origin as URL).origin : '*';
    if (credentials) ctx.reply.headers['access-control-allow-credentials'] = 'true';
    if (exposeHeaders) ctx.reply.headers['access-control-expose-headers'] = exposeHeaders;
    if (!preflight) return;

    const requested = String(ctx.req.headers['access-control-request-method']).toUpperCase();
    if (!cfg?.methods.includes(requested)) {
      throw new GatewayError('CORS_ORIGIN_DENIED', `method ${requested} not allowed by CORS on route ${route.name}`);
    }
    ctx.reply.headers['access-control-allow-methods'] = allowMethods;
    if (allowHeaders) ctx.reply.headers['access-control-allow-headers'] = allowHeaders;
    ctx.reply.headers['access-control-max-age'] = maxAge;
    return { answer: 204 };
  };
}
