import type { ClientRequest, IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import httpProxy from 'http-proxy';
import { GatewayError, isGatewayError } from '../errors.js';
import type { RequestContext } from '../context.js';
import type { CompiledRoute } from '../routes.js';
import { BodyLimiter } from '../policy/body-limit.js';
import { UpstreamAgents } from './agents.js';
import { buildUpstreamHeaders } from './request-headers.js';
import { dropBanners, scopeToPublicOrigin, secureUpstreamHeaders, type UpstreamView } from './response-headers.js';
import { UpstreamOrigin, type PublicView } from './upstream-urls.js';
import { stripPrefix } from '../routing/router.js';
import { installExactUrlJoin } from './url-join.js';
import { parse as parseUrl } from 'node:url';

export interface Forwarder {
  web(ctx: RequestContext, route: CompiledRoute, res: ServerResponse, fail: (err: GatewayError) => void): void;
  /** `upgraded` runs when the upstream answers 101, before http-proxy writes that answer on and pipes the sockets. */
  ws(ctx: RequestContext, route: CompiledRoute, socket: Duplex, head: Buffer, fail: (err: GatewayError) => void, upgraded?: (res: IncomingMessage, upstream: Duplex) => void): void;
  close(): void;
}

const REFUSED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ECONNRESET', 'EPIPE']);

function upstreamError(err: unknown, ctx: RequestContext): GatewayError {
  if (isGatewayError(err)) return err;
  if (ctx.upstreamTimedOut) return new GatewayError('UPSTREAM_TIMEOUT', `no answer within route timeout`);
  const code = (err as NodeJS.ErrnoException | undefined)?.code ?? '';
  if (code.startsWith('HPE_')) return new GatewayError('UPSTREAM_BAD_RESPONSE', `${code}: ${(err as Error).message}`);
  return new GatewayError('UPSTREAM_UNAVAILABLE', `${REFUSED.has(code) ? code : (err as Error | undefined)?.message ?? 'unknown'}`);
}

function hasBody(req: IncomingMessage): boolean {
  const len = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (len !== undefined && len !== '0');
}

/** What the forwarder keeps per route, built at its first request. */
interface RouteTarget {
  /**
   * The upstream as http-proxy wants it (a legacy `url.parse` object): given a string,
   * http-proxy parses it again for every request. It only reads the object.
   */
  readonly parsed: ReturnType<typeof parseUrl>;
  readonly origin: UpstreamOrigin;
}

/**
 * Streams requests and websockets to upstreams with http-proxy. Request and response bodies
 * are piped, never buffered; a client that goes away tears its upstream request down
 * (http-proxy alone leaks it: node-http-proxy #1586); timeouts answer 504, refusals 502.
 */
export function createForwarder(hsts: string | undefined): Forwarder {
  installExactUrlJoin();
  const agents = new UpstreamAgents();
  const proxy = httpProxy.createProxyServer({ xfwd: false, ws: true, secure: true, prependPath: true });
  type Upgraded = (res: IncomingMessage, upstream: Duplex) => void;
  const contexts = new WeakMap<IncomingMessage, { ctx: RequestContext; route: CompiledRoute; chunked: boolean; view: PublicView; upgraded?: Upgraded | undefined; proxyReq?: ClientRequest }>();
  const targets = new WeakMap<CompiledRoute, RouteTarget>();
  const targetOf = (route: CompiledRoute): RouteTarget => {
    let t = targets.get(route);
    if (!t) targets.set(route, (t = { parsed: parseUrl(route.target.href), origin: new UpstreamOrigin(route.target) }));
    return t;
  };
  const upstreamView = (entry: { route: CompiledRoute; view: PublicView }, socket: { remoteAddress?: string | undefined } | null): UpstreamView => ({
    upstream: targetOf(entry.route).origin,
    connected: socket?.remoteAddress,
    view: entry.view,
  });

  // The client's chunked framing is hop-by-hop and left with its headers. Unframed, Node writes a
  // GET/HEAD body raw and http-proxy gives DELETE/OPTIONS `Content-Length: 0`, so the upstream
  // would read the body as a request of its own (smuggling). 'start' comes after http-proxy's
  // own header edits and before the upstream request is built: re-frame the body as chunked.
  proxy.on('start', (req: IncomingMessage) => {
    if (!contexts.get(req)?.chunked) return;
    delete req.headers['content-length'];
    req.headers['transfer-encoding'] = 'chunked';
  });

  proxy.on('proxyReq', (proxyReq: ClientRequest, req: IncomingMessage, res: ServerResponse) => {
    const entry = contexts.get(req);
    if (!entry) return;
    const { ctx, route } = entry;
    entry.proxyReq = proxyReq;
    proxyReq.setTimeout(route.config.timeout, () => {
      ctx.upstreamTimedOut = true;
      proxyReq.destroy();
    });
    res.once('close', () => {
      if (!res.writableFinished) {
        ctx.outcome ??= 'aborted';
        proxyReq.destroy();
      }
    });
  });

  // A websocket handshake gets the route timeout too, until the upstream answers it; once
  // upgraded, http-proxy clears the socket timeout (an idle websocket is normal).
  proxy.on('proxyReqWs', (proxyReq: ClientRequest, req: IncomingMessage) => {
    const entry = contexts.get(req);
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
      scopeToPublicOrigin(proxyRes.headers, upstreamView(entry, proxyRes.socket));
      proxyRes.headers['x-request-id'] = ctx.id;
    };
    proxyReq.on('upgrade', clean);
    proxyReq.on('response', clean);
  });

  proxy.on('proxyRes', (proxyRes: IncomingMessage, req: IncomingMessage, res: ServerResponse) => {
    const entry = contexts.get(req);
    if (!entry) return;
    const { ctx, route } = entry;
    secureUpstreamHeaders(proxyRes.headers, ctx, route.config, ctx.secure ? hsts : undefined, upstreamView(entry, proxyRes.socket));
    // Node's own keep-alive decision (client's `Connection: close`, HTTP/1.0, shutdown); without
    // it http-proxy answers `Connection: keep-alive`, since the client's header never went upstream.
    // The last request a socket may carry (maxRequestsPerSocket) closes too: an explicit header
    // overrides Node's own `Connection: close` there, and the client's next request got a 503.
    const last = (res as ServerResponse & { maxRequestsOnConnectionReached?: boolean }).maxRequestsOnConnectionReached === true;
    proxyRes.headers.connection = res.shouldKeepAlive && !last ? 'keep-alive' : 'close';
    ctx.status = proxyRes.statusCode;
    proxyRes.on('data', (chunk: Buffer) => {
      ctx.bytesOut += chunk.length;
    });
    // An upstream that dies mid-body: http-proxy's pipe never ends the client's response, so the
    // client waited forever on a half body and the connection stayed open. Cut it off too.
    proxyRes.once('close', () => {
      if (!proxyRes.complete) res.destroy();
    });
  });

  function prepare(ctx: RequestContext, route: CompiledRoute, upgrade: boolean, upgraded?: Upgraded): void {
    const req = ctx.req;
    const path = route.config.stripPrefix && route.config.path ? stripPrefix(ctx.path ?? '/', route.config.path) : (ctx.path ?? '/');
    req.url = ctx.target?.query ? `${path}?${ctx.target.query}` : path;
    const chunked = !upgrade && req.headers['transfer-encoding'] !== undefined;
    // Read before the client's headers are swapped for the upstream's.
    const view: PublicView = {
      scheme: ctx.secure ? 'https' : 'http',
      authority: (req.headers.host ?? '').toLowerCase(),
      prefix: route.config.stripPrefix && route.config.path && route.config.path !== '/' ? route.config.path : '',
    };
    req.headers = buildUpstreamHeaders(ctx, route.config, upgrade);
    // Node already answered the client's `Expect: 100-continue`. Forwarded, it also makes
    // http-proxy skip 'proxyReq', so the route timeout and the abort teardown never attach.
    delete req.headers.expect;
    contexts.set(req, { ctx, route, chunked, view, upgraded });
  }

  return {
    web(ctx, route, res, fail) {
      // Read before prepare() swaps the client's headers (and its framing) for the upstream's.
      const withBody = hasBody(ctx.req);
      prepare(ctx, route, false);
      let body: BodyLimiter | undefined;
      if (withBody) {
        body = new BodyLimiter(route.config.maxBody);
        body.on('error', (err) => {
          // Fail first, so the refusal (413) is what the client sees, then cut the upstream off.
          fail(upstreamError(err, ctx));
          contexts.get(ctx.req)?.proxyReq?.destroy();
          ctx.req.unpipe(body as BodyLimiter);
          ctx.req.resume();
        });
        body.on('end', () => {
          ctx.bytesIn = (body as BodyLimiter).bytes;
        });
        ctx.req.pipe(body);
      }
      proxy.web(
        ctx.req,
        res,
        {
          target: targetOf(route).parsed,
          agent: agents.for(route.target),
          changeOrigin: !route.config.preserveHost,
          ...(body ? { buffer: body } : {}),
        },
        (err) => fail(upstreamError(err, ctx)),
      );
    },

    ws(ctx, route, socket, head, fail, upgraded) {
      prepare(ctx, route, true, upgraded);
      socket.on('error', () => socket.destroy());
      proxy.ws(ctx.req, socket, head, { target: route.target.href, changeOrigin: !route.config.preserveHost, agent: false }, (err) => fail(upstreamError(err, ctx)));
    },

    close() {
      proxy.close();
      agents.destroy();
    },
  };
}
