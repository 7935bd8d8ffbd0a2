import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { GatewayConfig, RouteConfig } from './config/schema.js';
import type { RequestContext } from './context.js';
import { GatewayError, isGatewayError } from './errors.js';
import type { GatewayDeps } from './deps.js';
import { createClientIpResolver } from './net/client-ip.js';
import { IpSet } from './net/ip.js';
import { createCors } from './policy/cors.js';
import { createIpAllowlist } from './policy/ip-allowlist.js';
import { createBodyLimit } from './policy/body-limit.js';
import { createRateLimit, createUserRateLimit } from './ratelimit/index.js';
import { createAuthenticate } from './auth/authenticate.js';
import { createAuthorize } from './auth/authorize.js';
import { createCsrf } from './auth/csrf.js';
import { AUTH_PATHS, createAuthEndpoints } from './auth/endpoints.js';
import { LiveSockets } from './auth/live-sockets.js';
import { answerProtocol, takeProtocolBearer } from './auth/ws-bearer.js';
import { WsTickets, takeTicket } from './auth/ws-ticket.js';
import { createLoginLimiter } from './ratelimit/login.js';
import { createIpAllowlist as createEndpointGuard } from './policy/ip-allowlist.js';
import { createForwarder, type Forwarder } from './proxy/forwarder.js';
import { WS_CLOSE, WsSession } from './proxy/ws-session.js';
import { normalizeHost } from './routing/host.js';
import { normalizePath } from './routing/normalize-path.js';
import { readRequestTarget } from './routing/request-target.js';
import { createRouter } from './routing/router.js';
import { checkFraming } from './routing/framing.js';
import { renderError, sendOwn, wantsHtml, writeRawResponse } from './respond.js';
import { accessEntry, deniedEvent } from './log/access.js';
import type { CompiledRoute, TerminalHandler } from './routes.js';
import type { Step } from './step.js';

/**
 * The policy chain of one route, in pipeline order. This list and `prepare` below are the one
 * place the order is stated; plain requests and websocket upgrades both run it.
 */
function routeSteps(route: RouteConfig, deps: GatewayDeps): Step[] {
  const steps: (Step | undefined)[] = [
    // Cheapest refusal first: nothing else should run for an address that is not allowed.
    createIpAllowlist(route),
    // Before auth: preflights carry no credentials, and a foreign origin is refused early.
    createCors(route),
    // Before auth, so password and token guessing spend the budget too.
    createRateLimit(route, deps),
    // Who is calling (JWT / session / webhook signature), then may they use this route.
    createAuthenticate(route, deps),
    createAuthorize(route),
    // `by: user` limits: the first point where the principal is known (see createRateLimit).
    createUserRateLimit(route, deps),
    // After auth: only requests carried by the session cookie need a same-site Origin.
    createCsrf(route),
    // Last: a declared body over the limit is refused before a byte goes upstream.
    createBodyLimit(route),
  ];
  return steps.filter((s): s is Step => s !== undefined);
}

/** Routes answered by something other than the plain proxy. */
function terminalHandler(route: RouteConfig, deps: GatewayDeps): TerminalHandler | undefined {
  if (route.auth !== 'whatsapp') return undefined;
  // A webhook route never falls back to the plain proxy: without the webhook service it refuses.
  return deps.whatsapp?.handlerFor(route) ?? ((_ctx, _res, fail) => fail(new GatewayError('AUTH_UNAVAILABLE', `route ${route.name}: the WhatsApp webhook is not set up`)));
}

export interface Gateway {
  /**
   * The request listener of the HTTPS server (and of plain HTTP when FORCE_HTTPS=false). A plain
   * listener, not an Express app: Express re-prototypes every req/res, which tripled the
   * per-request CPU of the whole pipeline (issue #8 profile), and no Express feature is used.
   */
  readonly handleRequest: (req: IncomingMessage, res: ServerResponse) => void;
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  handleClientError(err: NodeJS.ErrnoException, socket: Duplex): void;
  readonly routes: readonly CompiledRoute[];
  /** The auth service the pipeline uses, when enabled (the demo seeds its login with it). */
  readonly auth?: GatewayDeps['auth'];
  /** Answer with `Connection: close` from now on; set on shutdown. */
  drain(): void;
  close(): void;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{8,128}$/;

export function hstsValue(cfg: GatewayConfig): string | undefined {
  if (cfg.tls.hstsMaxAge <= 0) return undefined;
  return `max-age=${cfg.tls.hstsMaxAge}${cfg.tls.hstsIncludeSubDomains ? '; includeSubDomains' : ''}${cfg.tls.hstsPreload ? '; preload' : ''}`;
}

export function createGateway(cfg: GatewayConfig, deps: GatewayDeps, forwarder: Forwarder = createForwarder(hstsValue(cfg))): Gateway {
  const log = deps.log;
  const resolveAddress = createClientIpResolver(new IpSet(cfg.trustedProxies));
  const hsts = hstsValue(cfg);
  const routes: CompiledRoute[] = cfg.routes.map((r) => ({ name: r.name, config: r, target: new URL(r.upstream), steps: routeSteps(r, deps), handler: terminalHandler(r, deps) }));
  const match = createRouter(routes.map((r) => ({ ...r.config, compiled: r })));
  // The gateway's own login/logout/token pages answer on every routed host, behind that
  // route's IP allowlist; without an auth service they refuse (fail closed).
  const authEndpoints = deps.auth
    ? createAuthEndpoints(cfg, deps.auth, log, hsts, { login: createLoginLimiter(deps, 'login'), token: createLoginLimiter(deps, 'token') })
    : undefined;
  const endpointGuards = new Map(routes.map((r) => [r, createEndpointGuard(r.config)]));
  const liveSockets = deps.auth ? new LiveSockets(deps.auth.revocations, deps.auth.accountStatus) : undefined;
  const websockets = new Set<WsSession>();
  const wsTickets = deps.auth ? new WsTickets(deps.auth.kv) : undefined;
  let draining = false;

  function createContext(req: IncomingMessage, kind: RequestContext['kind']): RequestContext {
    const socket = req.socket as TLSSocket;
    const address = resolveAddress(req);
    const offered = req.headers['x-request-id'];
    const id = address.peerTrusted && typeof offered === 'string' && REQUEST_ID.test(offered) ? offered : randomUUID();
    const servername = socket.encrypted && typeof socket.servername === 'string' ? normalizeHost(socket.servername) : undefined;
    return { id, startedAt: performance.now(), kind, req, secure: socket.encrypted === true, servername, address, responseHeaders: {}, setCookies: [], bytesIn: 0, bytesOut: 0 };
  }

  /** Steps before any route policy: framing, target, Host/SNI, path normalized once, route. */
  function prepare(ctx: RequestContext): CompiledRoute {
    checkFraming(ctx.req);
    const target = readRequestTarget(ctx.req, cfg.server.maxUrlLength);
    ctx.target = target;
    // AUDIT_FAIL_CLOSED: nothing is served while it cannot be recorded (this refusal still is, once the disk is back).
    if (log.accepting?.() === false) throw new GatewayError('AUDIT_UNAVAILABLE', 'the audit log cannot be written');
    if (ctx.servername !== undefined && ctx.servername !== target.host) {
      throw new GatewayError('MISDIRECTED_REQUEST', `SNI ${ctx.servername} but Host ${target.host}`);
    }
    // Encoded slashes are kept (as %2F) here so routing sees one segment; routes that do not
    // allow them refuse below, after the route is known.
    const path = normalizePath(target.rawPath, { allowEncodedSlashes: true });
    ctx.path = path;
    const route = match(target.host, path)?.compiled;
    if (!route) throw new GatewayError('ROUTE_NOT_FOUND', `${target.host} ${path}`);
    ctx.route = route;
    if (!route.config.allowEncodedSlashes && path.includes('%2F')) throw new GatewayError('PATH_REJECTED', 'encoded slash');
    return route;
  }

  async function runSteps(ctx: RequestContext, route: CompiledRoute): Promise<number | undefined> {
    for (const step of route.steps) {
      // Most steps are synchronous: awaiting only real promises saves a microtask hop per step.
      const pending = step(ctx);
      const result = pending instanceof Promise ? await pending : pending;
      if (result) return result.answer;
    }
    return undefined;
  }

  function record(ctx: RequestContext): void {
    log.access(accessEntry(ctx));
    // Rate-limit refusals have their own sampled event (ratelimit.rejected): one per flood, not one per request.
    if (ctx.error && ctx.error.status < 500 && ctx.error.code !== 'RATE_LIMITED') {
      log.security('request.denied', deniedEvent(ctx));
    }
  }

  function refuse(ctx: RequestContext, res: ServerResponse, err: GatewayError): void {
    if (ctx.error) return; // the first error wins (a body overflow also fails the upstream request)
    ctx.error = err;
    ctx.outcome = err.status >= 500 ? 'failed' : 'denied';
    ctx.status = err.status;
    // HEADER_INVALID is a framing refusal: the body's end is unknown, so close (RFC 9112 §6.3).
    if (err.code === 'BODY_TOO_LARGE' || err.code === 'HEADER_INVALID' || err.status >= 500) res.shouldKeepAlive = false;
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const headers: Record<string, string> = { 'x-request-id': ctx.id, ...(ctx.secure && hsts ? { 'strict-transport-security': hsts } : {}), ...err.headers };
    if (err.code !== 'CORS_ORIGIN_DENIED') Object.assign(headers, ctx.responseHeaders);
    sendOwn(ctx.req, res, err.status, headers, renderError(err, ctx.id, wantsHtml(ctx.req)), ctx.setCookies);
  }

  async function handleHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const ctx = createContext(req, 'http');
    res.once('close', () => {
      // Whether a session renewal's Set-Cookie left with the headers (src/auth/request-auth.ts).
      for (const closed of ctx.onResponseClosed ?? []) closed(res.headersSent);
      // A forwarded response that never finished was cut short (the forwarder's own mark comes too late).
      if ((ctx.outcome === undefined || ctx.outcome === 'forwarded') && !res.writableFinished) ctx.outcome = 'aborted';
      ctx.status ??= res.statusCode;
      record(ctx);
    });
    // During shutdown every answer closes its connection, so keep-alive clients move on.
    res.once('finish', () => {
      if (draining) req.socket.end();
    });
    if (draining) res.shouldKeepAlive = false;
    try {
      const route = prepare(ctx);
      if (AUTH_PATHS.has(ctx.path ?? '')) {
        await endpointGuards.get(route)?.(ctx);
        if (!authEndpoints) throw new GatewayError('AUTH_UNAVAILABLE', 'login is not enabled (API_SECRET_KEY is not set)');
        authEndpoints.handle(ctx, res, (err) => refuse(ctx, res, err));
        return;
      }
      const answer = await runSteps(ctx, route);
      if (answer !== undefined) {
        ctx.outcome = 'answered';
        ctx.status = answer;
        sendOwn(req, res, answer, { 'x-request-id': ctx.id, ...(ctx.secure && hsts ? { 'strict-transport-security': hsts } : {}), ...ctx.responseHeaders }, undefined, ctx.setCookies);
        return;
      }
      ctx.outcome = 'forwarded';
      const fail = (err: GatewayError): void => refuse(ctx, res, err);
      if (route.handler) route.handler(ctx, res, fail);
      else forwarder.web(ctx, route, res, fail);
    } catch (err) {
      refuse(ctx, res, isGatewayError(err) ? err : internal(err));
    }
  }

  function internal(err: unknown): GatewayError {
    log.app('error', 'unexpected error in pipeline', { error: err instanceof Error ? err.stack : String(err) });
    return new GatewayError('INTERNAL', err instanceof Error ? err.message : String(err));
  }

  async function handleUpgradeAsync(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const ctx = createContext(req, 'upgrade');
    let session: WsSession | undefined;
    const refuseRaw = (err: GatewayError): void => {
      if (ctx.error) return;
      ctx.error = err;
      ctx.outcome = err.status >= 500 ? 'failed' : 'denied';
      ctx.status = err.status;
      // After the 101 the client reads websocket frames: an HTTP answer there would be garbage.
      if (!session?.upgraded) writeRawResponse(socket, err.status, { 'X-Request-Id': ctx.id, ...err.headers }, renderError(err, ctx.id, false));
      record(ctx);
    };
    try {
      if (draining) throw new GatewayError('SHUTTING_DOWN', 'upgrade during shutdown');
      const route = prepare(ctx);
      if (!route.config.websocket) throw new GatewayError('UPGRADE_NOT_ALLOWED', `route ${route.name} does not take websockets`);
      if (req.method !== 'GET' || String(req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
        throw new GatewayError('UPGRADE_NOT_ALLOWED', `upgrade to ${String(req.headers.upgrade)} with ${req.method}`);
      }
      // Before the steps: a browser's token comes as a subprotocol or a ticket; authentication reads Authorization.
      const bearer = takeProtocolBearer(req, route.config);
      if (wsTickets) await takeTicket(ctx, route.config, wsTickets);
      const answer = await runSteps(ctx, route);
      if (answer !== undefined) throw new GatewayError('UPGRADE_NOT_ALLOWED', 'a step answered an upgrade');
      ctx.outcome = 'forwarded';
      ctx.status = 101;
      const ws = new WsSession(socket);
      session = ws;
      websockets.add(ws);
      ws.onGone(() => websockets.delete(ws));
      forwarder.ws(ctx, route, socket, head, refuseRaw, (res, upstream) => {
        if (bearer) answerProtocol(res.headers, bearer);
        ws.accept(upstream);
      });
      if (liveSockets && ctx.principal) liveSockets.track(ws, ctx.principal);
      // Shutdown may have begun while the steps ran: this one closes as soon as it opens.
      if (draining) ws.close(WS_CLOSE.shutdown);
      socket.once('close', () => {
        if (!ctx.error) record(ctx);
        // The close the gateway chose (revocation, expiry, disabled account, shutdown), for the audit trail.
        const closed = ws.closedWith;
        if (closed) log.security('websocket.closed', { requestId: ctx.id, closeCode: closed.code, reason: closed.reason, user: ctx.principal?.subject, tokenId: ctx.principal?.tokenId, route: route.name, clientIp: ctx.address?.client.address });
      });
    } catch (err) {
      refuseRaw(isGatewayError(err) ? err : internal(err));
    }
  }

  return {
    handleRequest(req, res) {
      void handleHttp(req, res);
    },
    routes,
    auth: deps.auth,
    handleUpgrade(req, socket, head) {
      void handleUpgradeAsync(req, socket, head);
    },
    handleClientError(err, socket) {
      handleClientError(err, socket, deps.log);
    },
    drain() {
      draining = true;
      // 1001 at once rather than a cut when start.ts destroys what is left after shutdownTimeout.
      for (const ws of websockets) ws.close(WS_CLOSE.shutdown);
    },
    close() {
      liveSockets?.close();
      forwarder.close();
    },
  };
}

/** Requests Node's parser refused: a clear 4xx with a request id, logged, then the socket closes. */
function handleClientError(err: NodeJS.ErrnoException, socket: Duplex, log: GatewayDeps['log']): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  // A TLS-layer failure after the handshake (e.g. a refused renegotiation): no HTTP answer can
  // cross the broken session and `end()` would never finish, so the connection stayed open.
  if (err.code?.startsWith('ERR_SSL_') || (err as { library?: string }).library === 'SSL routines') {
    log.security('tls.connection_failed', { error: err.message, clientIp: (socket as Duplex & { remoteAddress?: string }).remoteAddress });
    socket.destroy();
    return;
  }
  const code = err.code === 'HPE_HEADER_OVERFLOW' ? 'HEADERS_TOO_LARGE' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'REQUEST_TIMEOUT' : 'BAD_REQUEST';
  const gerr = new GatewayError(code, `${err.code ?? 'parse error'}: ${err.message}`);
  const id = randomUUID();
  const remote = (socket as Duplex & { remoteAddress?: string }).remoteAddress;
  log.access({ requestId: id, clientIp: remote, outcome: 'denied', status: gerr.status, code: gerr.code, detail: gerr.detail });
  log.security('request.denied', { requestId: id, code: gerr.code, detail: gerr.detail, clientIp: remote });
  // As Node's own default: bytes after a request must not put a second answer into a response
  // already under way (it would corrupt it); that response ends or closes the connection.
  if ((socket as Duplex & { _httpMessage?: { headersSent: boolean } })._httpMessage?.headersSent) return;
  writeRawResponse(socket, gerr.status, { 'X-Request-Id': id }, renderError(gerr, id, false));
}
