import type { ClientRequest, IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex, Readable } from 'node:stream';
import type { ConnectionOptions } from 'node:tls';
import httpProxy from 'http-proxy';
import type { GatewayError } from '../errors.js';
import type { RequestContext } from '../context.js';
import type { CompiledRoute } from '../routes.js';
import { buildUpstreamHeaders } from './request-headers.js';
import { dropBanners, scopeToPublicOrigin, type UpstreamView } from './response-headers.js';
import { UpstreamOrigin, type PublicView } from './upstream-urls.js';
import { stripPrefix } from '../routing/router.js';
import { installExactUrlJoin, joinUpstreamPath } from './url-join.js';
import { UpstreamPools, type Upstream } from './upstream-pools.js';
import { websocketAgent } from './agents.js';
import type { Agent } from 'node:https';
import { Exchange } from './exchange.js';
import { upstreamError } from './upstream-error.js';

export interface Forwarder {
  web(ctx: RequestContext, route: CompiledRoute, res: ServerResponse, fail: (err: GatewayError) => void): void;
  /** `upgraded` runs when the upstream answers 101, before http-proxy writes that answer on and pipes the sockets. */
  ws(ctx: RequestContext, route: CompiledRoute, socket: Duplex, head: Buffer, fail: (err: GatewayError) => void, upgraded?: (res: IncomingMessage, upstream: Duplex) => void): void;
  close(): void;
}

export interface ForwarderOptions {
  /** Extra TLS options for HTTPS upstreams (a private CA); they are verified either way. */
  readonly upstreamTls?: ConnectionOptions;
  /** How long a client may read nothing of an answer before it is cut (server.sendTimeout). */
  readonly sendTimeoutMs?: number;
}

/** nginx's send_timeout default, for a forwarder built without a config. */
const SEND_TIMEOUT_MS = 60_000;

/**
 * Whether the client's request has a body to stream on (RFC 9112 §6.3: any Transfer-Encoding,
 * or a Content-Length other than 0). Without one the upstream request goes with no body and
 * no body limit is armed (Exchange).
 */
function hasBody(req: IncomingMessage): boolean {
  const len = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (len !== undefined && len !== '0');
}

/** What the forwarder keeps per route, built at its first request. */
interface RouteTarget {
  readonly upstream: Upstream;
  readonly origin: UpstreamOrigin;
  /** The upstream URL's path, joined before every request path (http-proxy's `prependPath`). */
  readonly basePath: string;
  /** Websocket handshakes to an https upstream: the route's TLS settings; false for http. */
  readonly wsAgent: Agent | false;
}

/** The path and query the upstream is asked for: the normalized path (the route's prefix cut when it says so), the raw query. */
function requestTarget(ctx: RequestContext, route: CompiledRoute): string {
  const path = route.config.stripPrefix && route.config.path ? stripPrefix(ctx.path ?? '/', route.config.path) : (ctx.path ?? '/');
  return ctx.target?.query ? `${path}?${ctx.target.query}` : path;
}

/** The public origin the client used, read from its own Host (before any header is swapped). */
function publicView(ctx: RequestContext, route: CompiledRoute): PublicView {
  return {
    scheme: ctx.secure ? 'https' : 'http',
    authority: (ctx.req.headers.host ?? '').toLowerCase(),
    prefix: route.config.stripPrefix && route.config.path && route.config.path !== '/' ? route.config.path : '',
  };
}

/**
 * Streams requests to upstreams through undici (one keep-alive Pool per upstream origin, owned
 * here) and websockets through http-proxy. Bodies are streamed both ways, never buffered; a
 * client that goes away tears its upstream request down; the route timeout answers 504,
 * refusals 502. See Exchange for one request's life.
 *
 * undici rather than http-proxy for plain requests: measured on this machine (issue 13),
 * forwarding cost less CPU per request (bench/README.md). Websocket handshakes stay on
 * http-proxy: after the 101 both are the same two piped sockets, and WsSession relies on
 * http-proxy's order of pipes.
 */
export function createForwarder(hsts: string | undefined, opts: ForwarderOptions = {}): Forwarder {
  installExactUrlJoin();
  const pools = new UpstreamPools(opts.upstreamTls);
  const proxy = httpProxy.createProxyServer({ xfwd: false, ws: true, secure: true, prependPath: true });
  type Upgraded = (res: IncomingMessage, upstream: Duplex) => void;
  const upgrades = new WeakMap<IncomingMessage, { ctx: RequestContext; route: CompiledRoute; view: PublicView; upgraded?: Upgraded | undefined }>();
  const targets = new WeakMap<CompiledRoute, RouteTarget>();
  const targetOf = (route: CompiledRoute): RouteTarget => {
    let t = targets.get(route);
    if (!t) {
      const basePath = route.target.pathname;
      const tls = route.config.upstreamTls;
      targets.set(route, (t = { upstream: pools.for(route.target, tls), origin: new UpstreamOrigin(route.target), basePath, wsAgent: websocketAgent(route.target, tls, opts.upstreamTls) }));
    }
    return t;
  };

  // A websocket handshake gets the route timeout too, until the upstream answers it; once
  // upgraded, http-proxy clears the socket timeout (an idle websocket is normal).
  proxy.on('proxyReqWs', (proxyReq: ClientRequest, req: IncomingMessage) => {
    const entry = upgrades.get(req);
    if (!entry) return;
    const { ctx, route, upgraded } = entry;
    // Registered before http-proxy's own 'upgrade' listener (this event comes first).
    if (upgraded) proxyReq.once('upgrade', upgraded);
    proxyReq.setTimeout(route.config.timeout, () => {
      ctx.upstreamTimedOut = true;
      proxyReq.destroy();
    });
    // Registered before http-proxy's own listeners (this event comes first), so the answer's
    // headers are clean before http-proxy writes them to the client: banners dropped, URLs and
    // cookies scoped to the public origin. Hop-by-hop headers stay: a 101 needs them.
    const clean = (proxyRes: IncomingMessage): void => {
      dropBanners(proxyRes.headers, route.config);
      const view: UpstreamView = { upstream: targetOf(route).origin, connected: proxyRes.socket?.remoteAddress, view: entry.view };
      scopeToPublicOrigin(proxyRes.headers, view);
      proxyRes.headers['x-request-id'] = ctx.id;
    };
    proxyReq.on('upgrade', clean);
    proxyReq.on('response', clean);
  });

  return {
    web(ctx, route, res, fail) {
      // The client left while the steps ran: its 'close' has passed (the request is recorded as
      // aborted already), and nothing would tear an upstream request down.
      if (res.destroyed) return;
      const t = targetOf(route);
      const req = ctx.req;
      const headers = buildUpstreamHeaders(ctx, route.config, false, route.assertion?.(ctx));
      if (!route.config.preserveHost) headers.host = route.target.host;
      // Node already answered the client's `Expect: 100-continue` (and undici refuses to send one).
      delete headers.expect;
      const view: UpstreamView = { upstream: t.origin, connected: t.upstream.addresses, view: publicView(ctx, route) };
      const exchange = new Exchange(ctx, route, res, fail, view, hsts, hasBody(req), opts.sendTimeoutMs ?? SEND_TIMEOUT_MS);
      // undici frames the body itself: Content-Length as the client gave it, else chunked, for
      // every method (a GET/HEAD/DELETE/OPTIONS body stays a body, never a second request).
      // An async iterable body is documented (Dispatcher.md, DispatchOptions.body) but missing
      // from undici's types.
      const body = exchange.body as unknown as Readable | null;
      t.upstream.pool.dispatch({ path: joinUpstreamPath(t.basePath, requestTarget(ctx, route)), method: req.method ?? 'GET', headers, body }, exchange);
    },

    ws(ctx, route, socket, head, fail, upgraded) {
      const req = ctx.req;
      const view = publicView(ctx, route);
      req.url = requestTarget(ctx, route);
      req.headers = buildUpstreamHeaders(ctx, route.config, true, route.assertion?.(ctx));
      delete req.headers.expect;
      upgrades.set(req, { ctx, route, view, upgraded });
      socket.on('error', () => socket.destroy());
      proxy.ws(req, socket, head, { target: route.target.href, changeOrigin: !route.config.preserveHost, agent: targetOf(route).wsAgent }, (err) => fail(upstreamError(err, ctx)));
    },

    close() {
      proxy.close();
      pools.destroy();
    },
  };
}
