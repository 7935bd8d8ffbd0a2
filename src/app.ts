import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { GatewayConfig, RouteConfig } from './config/schema.js';
import type { RequestContext } from './context.js';
import { GatewayError, isGatewayError } from './errors.js';
import type { GatewayDeps } from './deps.js';
import type { Logger } from './log/logger.js';
import { createClientIpResolver } from './net/client-ip.js';
import { IpSet } from './net/ip.js';
import { createCors } from './policy/cors.js';
import { createIpAllowlist } from './policy/ip-allowlist.js';
import { createBodyLimit } from './policy/body-limit.js';
import { createOpenApiValidation } from './openapi/step.js';
import { chargeStopped, createRouteLimit, type RouteLimit } from './ratelimit/index.js';
import { createAuthenticate } from './auth/authenticate.js';
import { createAuthorize } from './auth/authorize.js';
import { createCsrf } from './auth/csrf.js';
import { AUTH_PATHS, createAuthEndpoints } from './auth/endpoints.js';
import { LiveSockets } from './auth/live-sockets.js';
import { answerProtocol, takeProtocolBearer } from './auth/ws-bearer.js';
import { JWKS_PATH, answerJwks, routeAssertion } from './auth/assertion/routes.js';
import { WsTickets, takeTicket } from './auth/ws-ticket.js';
import { createLoginLimiter } from './ratelimit/login.js';
import { BodyBuffers } from './proxy/body-buffers.js';
import { createForwarder } from './proxy/forwarder.js';
import { WS_CLOSE, WsSession } from './proxy/ws-session.js';
import { normalizeHost } from './routing/host.js';
import { routeHosts } from './routing/route-hosts.js';
import { normalizePath } from './routing/normalize-path.js';
import { readRequestTarget } from './routing/request-target.js';
import { createRouter } from './routing/router.js';
import { createForwardAuth } from './auth/forward-auth/endpoint.js';
import { checkFraming } from './routing/framing.js';
import { wantsHtml } from './respond.js';
import { Reply, type ReplyPolicy } from './reply.js';
import { accessEntry, deniedEvent } from './log/access.js';
import type { RequestMetrics } from './metrics/requests.js';
import { checkConnectionBlocks, createAccountBlocks } from './containment/enforce.js';
import type { Containment } from './containment/service.js';
import type { CompiledRoute, TerminalHandler } from './routes.js';
import type { Step } from './step.js';

/*
 * The request pipeline, in order, for plain requests and websocket upgrades alike. This file is
 * the one place the order is stated (docs/security-model.md lists the same names; a test
 * compares the two). Each list's entries run top to bottom; a step refuses by throwing a
 * GatewayError, which the request's one Reply turns into the answer and the access line.
 */

/** What the connection steps are built from, once per gateway. */
interface ConnectionParts {
  readonly cfg: GatewayConfig;
  readonly log: Logger;
  readonly match: (host: string, path: string) => CompiledRoute | undefined;
  readonly containment: Containment | undefined;
}

type ConnectionStep = (ctx: RequestContext) => void;

interface Stage<B> {
  readonly name: string;
  readonly why: string;
  /** Absent: done while the request's context is made (`newContext`), before any step runs. */
  readonly build?: B;
}

/** 1. Connection steps: before any route is known. */
const CONNECTION: readonly Stage<(p: ConnectionParts) => ConnectionStep>[] = [
  { name: 'tls', why: 'the listener terminates TLS 1.2+ before a byte of HTTP is read; SNI is kept for the Host check' },
  { name: 'request-id', why: 'first, so every answer and log line of the request carries it (a trusted proxy may hand its own)' },
  { name: 'client-ip', why: 'one resolver: the socket peer, or X-Forwarded-For hops only from TRUSTED_PROXIES' },
  {
    name: 'framing',
    why: 'ambiguous Content-Length/Transfer-Encoding is refused before anything reads a body (smuggling)',
    build: () => (ctx) => checkFraming(ctx.req),
  },
  {
    name: 'request-target',
    why: 'one reading of method, Host and target; CONNECT, TRACE and absolute-form oddities stop here',
    build: ({ cfg }) => (ctx) => {
      ctx.target = readRequestTarget(ctx.req, cfg.server.maxUrlLength);
    },
  },
  {
    name: 'audit-gate',
    why: 'AUDIT_FAIL_CLOSED: nothing is served while it cannot be recorded (this refusal is, once the disk is back)',
    build: ({ log }) => () => {
      if (log.accepting?.() === false) throw new GatewayError('AUDIT_UNAVAILABLE', 'the audit log cannot be written');
    },
  },
  {
    name: 'host-sni',
    why: 'a Host other than the TLS server name is another site on a reused connection (421)',
    build: () => (ctx) => {
      if (ctx.servername !== undefined && ctx.servername !== ctx.target?.host) {
        throw new GatewayError('MISDIRECTED_REQUEST', `SNI ${ctx.servername} but Host ${String(ctx.target?.host)}`);
      }
    },
  },
  {
    name: 'path',
    why: 'normalized once: routing, policy, logging and forwarding all see the same path; ambiguous encodings refused',
    // Encoded slashes stay (as %2F) so routing sees one segment; the route step refuses them unless allowed.
    build: () => (ctx) => {
      ctx.path = normalizePath(ctx.target?.rawPath ?? '', { allowEncodedSlashes: true });
    },
  },
  {
    name: 'route',
    why: 'Host first, then the longest path prefix; no route is a 404 before any policy runs',
    build: ({ match }) => (ctx) => {
      const path = ctx.path ?? '/';
      const route = match(ctx.target?.host ?? '', path);
      if (!route) throw new GatewayError('ROUTE_NOT_FOUND', `${String(ctx.target?.host)} ${path}`);
      ctx.route = route;
      if (!route.config.allowEncodedSlashes && path.includes('%2F')) throw new GatewayError('PATH_REJECTED', 'encoded slash');
    },
  },
  {
    name: 'blocks',
    why: 'containment: a blocked address or network is refused before any credential is read, a route under maintenance before any policy runs (it needs the route)',
    build: ({ containment }) => (containment ? checkConnectionBlocks(containment.blocks) : () => undefined),
  },
];

/** Websocket upgrades only, right after the route: what the handshake itself must be. */
const UPGRADE: readonly Stage<() => ConnectionStep>[] = [
  {
    name: 'upgrade',
    why: 'only routes that take websockets, and only a GET asking for one',
    build: () => (ctx) => {
      const route = ctx.route as CompiledRoute;
      if (!route.config.websocket) throw new GatewayError('UPGRADE_NOT_ALLOWED', `route ${route.name} does not take websockets`);
      if (ctx.req.method !== 'GET' || String(ctx.req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
        throw new GatewayError('UPGRADE_NOT_ALLOWED', `upgrade to ${String(ctx.req.headers.upgrade)} with ${ctx.req.method}`);
      }
    },
  },
];

/** What a route's steps are built from, once per route at startup. */
interface RouteParts {
  readonly deps: GatewayDeps;
  /** The route's rate limit, shared by its two limit steps (src/ratelimit/route.ts). */
  readonly limit: RouteLimit | undefined;
  readonly tickets: WsTickets | undefined;
  /** The gateway's one budget and deadline for bodies read whole (openapi, the WhatsApp webhook). */
  readonly bodies: BodyBuffers;
}

/** A browser's websocket token comes as a `bearer.<jwt>` subprotocol or a one-time ticket: both move into Authorization. */
function wsCredentials(tickets: WsTickets | undefined): Step {
  return async (ctx) => {
    const route = (ctx.route as CompiledRoute).config;
    ctx.protocolBearer = takeProtocolBearer(ctx.req, route);
    if (tickets) await takeTicket(ctx, route, tickets);
  };
}

/** 2. Route steps: the route's policy chain, built once per route at startup. */
/*
 * `notForwardAuth`: left out of a forward-auth check (src/auth/forward-auth/), where the edge
 * proxy serves the request: a step not flagged runs there too, so a new policy step is enforced
 * for edge proxies by default (fail closed).
 */
const ROUTE: readonly (Stage<(route: RouteConfig, p: RouteParts) => Step | undefined> & { ownPages?: true; upgradesOnly?: true; notForwardAuth?: string })[] = [
  { name: 'ip-allowlist', why: 'cheapest refusal first; it guards the gateway\'s own pages on the route\'s host too', ownPages: true, build: (r) => createIpAllowlist(r) },
  { name: 'cors', why: 'before auth: preflights carry no credentials, and a foreign origin is refused early', notForwardAuth: 'its answer headers never reach the client through an edge, and a preflight passed as allowed would reach the app unauthenticated', build: (r) => createCors(r) },
  { name: 'rate-limit', why: 'before auth: an address over its budget is refused before any credential is checked (`by: ip` charges here)', build: (_r, p) => p.limit?.beforeAuth },
  {
    name: 'ws-credentials',
    why: "upgrades only: a browser's token as a subprotocol or a one-time ticket, moved into Authorization so authentication reads one place; after the limit, and a refused ticket is charged like a refused token",
    upgradesOnly: true,
    build: (_r, p) => chargeStopped(p.limit, wsCredentials(p.tickets)),
  },
  { name: 'authenticate', why: 'who is calling: JWT, session cookie or webhook signature; on `by: user` routes a request it (or authorize) stops is charged to its address, so guessing spends the budget too', build: (r, p) => chargeStopped(p.limit, createAuthenticate(r, p.deps)) },
  { name: 'account-blocks', why: 'containment: the first point where the user or API client is known; a blocked one is refused before anything is charged to it', build: (_r, p) => (p.deps.containment ? createAccountBlocks(p.deps.containment.blocks) : undefined) },
  { name: 'authorize', why: 'may they use this route: roles, then a second factor where the route or the roles need one', build: (r, p) => chargeStopped(p.limit, createAuthorize(r, p.deps.auth?.config)) },
  { name: 'user-rate-limit', why: '`by: user`: the first point where the principal is known; one Redis round trip charges the user and reads the address', build: (_r, p) => p.limit?.afterAuth },
  { name: 'csrf', why: 'after auth: only requests the session cookie carries need a same-site Origin', build: (r) => createCsrf(r) },
  { name: 'body-limit', why: 'a declared body over the limit is refused before a byte is read or goes upstream', notForwardAuth: 'the edge sends no body to a check; its own limit applies', build: (r) => createBodyLimit(r) },
  {
    name: 'openapi',
    why: "last: after auth, so the spec's shape is told only to callers allowed on the route, and after body-limit, so the JSON body it reads whole is bounded (and within the process-wide server.maxBufferedBodies); forwarded as the same bytes",
    build: (r, p) => createOpenApiValidation(r, p.deps.openapi, p.bodies, p.deps.log),
    notForwardAuth: 'it reads the body, which the edge keeps',
  },
];

/** 3. Terminal: what answers a request that passed its steps. */
const TERMINAL: readonly Stage<never>[] = [
  { name: 'auth-endpoints', why: "the gateway's own /auth/* pages and the assertion keys (/.well-known/crm-gateway/jwks.json) on every routed host, behind the route's IP allowlist only" },
  { name: 'forward-auth', why: "an edge proxy's check (forwardAuth.host + path): the checked route's steps run on the original request, nothing is forwarded" },
  { name: 'webhook', why: 'auth: whatsapp routes: the body is read, its signature verified and queued; never the plain proxy' },
  { name: 'proxy', why: 'header hygiene, forward (keep-alive, streaming, timeouts, websockets), response hygiene' },
];

/** The stated order, by name: docs/security-model.md's list is checked against this. */
export const PIPELINE_ORDER = {
  connection: CONNECTION.map((s) => s.name),
  upgrade: UPGRADE.map((s) => s.name),
  route: ROUTE.map((s) => s.name),
  terminal: TERMINAL.map((s) => s.name),
};

function compileRoute(route: RouteConfig, deps: GatewayDeps, tickets: WsTickets | undefined, bodies: BodyBuffers): CompiledRoute {
  const parts: RouteParts = { deps, limit: createRouteLimit(route, deps), tickets, bodies };
  const built = ROUTE.map((s) => ({ step: s.build?.(route, parts), stage: s }));
  const pick = (keep: (stage: (typeof ROUTE)[number]) => boolean): Step[] => built.flatMap((b) => (b.step && keep(b.stage) ? [b.step] : []));
  return {
    name: route.name,
    config: route,
    target: new URL(route.upstream),
    steps: pick((s) => !s.upgradesOnly),
    upgradeSteps: pick(() => true),
    ownPageSteps: pick((s) => s.ownPages === true),
    forwardAuthSteps: pick((s) => !s.upgradesOnly && s.notForwardAuth === undefined),
    handler: webhookHandler(route, deps, bodies),
    assertion: routeAssertion(route, deps.assertions),
  };
}

/** The webhook terminal of `auth: whatsapp` routes. */
function webhookHandler(route: RouteConfig, deps: GatewayDeps, bodies: BodyBuffers): TerminalHandler | undefined {
  if (route.auth !== 'whatsapp') return undefined;
  // A webhook route never falls back to the plain proxy: without the webhook service it refuses.
  return deps.whatsapp?.handlerFor(route, bodies) ?? ((_ctx, _res, fail) => fail(new GatewayError('AUTH_UNAVAILABLE', `route ${route.name}: the WhatsApp webhook is not set up`)));
}

async function runSteps(ctx: RequestContext, steps: readonly Step[]): Promise<number | undefined> {
  for (const step of steps) {
    // Most steps are synchronous: awaiting only real promises saves a microtask hop per step.
    const pending = step(ctx);
    const result = pending instanceof Promise ? await pending : pending;
    if (result) return result.answer;
  }
  return undefined;
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
/** Where an ACME CA fetches HTTP-01 answers (RFC 8555 §8.3). */
const ACME_CHALLENGE_PREFIX = '/.well-known/acme-challenge/';

export function hstsValue(cfg: GatewayConfig): string | undefined {
  if (cfg.tls.hstsMaxAge <= 0) return undefined;
  return `max-age=${cfg.tls.hstsMaxAge}${cfg.tls.hstsIncludeSubDomains ? '; includeSubDomains' : ''}${cfg.tls.hstsPreload ? '; preload' : ''}`;
}

/** Makes a request's context: the `tls`, `request-id` and `client-ip` connection steps. */
function contextMaker(cfg: GatewayConfig, policy: ReplyPolicy): (req: IncomingMessage, kind: RequestContext['kind']) => RequestContext {
  const resolveAddress = createClientIpResolver(new IpSet(cfg.trustedProxies));
  return (req, kind) => {
    const socket = req.socket as TLSSocket;
    const address = resolveAddress(req);
    const offered = req.headers['x-request-id'];
    const id = address.peerTrusted && typeof offered === 'string' && REQUEST_ID.test(offered) ? offered : randomUUID();
    const secure = socket.encrypted === true;
    const servername = secure && typeof socket.servername === 'string' ? normalizeHost(socket.servername) : undefined;
    return { id, startedAt: performance.now(), kind, req, secure, servername, address, reply: new Reply(id, secure, policy), bytesIn: 0, bytesOut: 0 };
  };
}

/** The access line, the metrics and (for a refusal) the `request.denied` event, all read from the reply. */
function recorder(log: Logger, metrics: RequestMetrics, listener?: 'http'): (ctx: RequestContext) => void {
  return (ctx) => {
    const entry = accessEntry(ctx);
    if (listener) entry.listener = listener;
    log.access(entry);
    metrics.observeRequest(ctx);
    const err = ctx.reply.error;
    // Rate-limit refusals have their own sampled event (ratelimit.rejected): one per flood, not one per request.
    if (err && err.status < 500 && err.code !== 'RATE_LIMITED') {
      const event = deniedEvent(ctx);
      if (listener) event.listener = listener;
      log.security('request.denied', event);
    }
  };
}

export function createGateway(cfg: GatewayConfig, deps: GatewayDeps): Gateway {
  const forwarder = createForwarder(hstsValue(cfg), { sendTimeoutMs: cfg.server.sendTimeout });
  const log = deps.log;
  const newContext = contextMaker(cfg, { hsts: hstsValue(cfg), defaultLanguage: cfg.ui.defaultLanguage });
  const record = recorder(log, deps.metrics.requests);
  const wsTickets = deps.auth ? new WsTickets(deps.auth.kv) : undefined;
  // Owned here, one per gateway: every route's whole-body reads share it.
  const bodies = new BodyBuffers(cfg.server.maxBufferedBodies, cfg.server.bodyReadTimeout);
  const routes = cfg.routes.map((r) => compileRoute(r, deps, wsTickets, bodies));
  const router = createRouter(routes.map((r) => ({ ...r.config, compiled: r })));
  // The forward-auth endpoint is matched before the routes: its host need not be a routed one.
  const forwardAuth = cfg.forwardAuth ? createForwardAuth(cfg, cfg.forwardAuth, deps, (host, path) => router(host, path)?.compiled) : undefined;
  const match = (host: string, path: string): CompiledRoute | undefined => forwardAuth?.endpointFor(host, path) ?? router(host, path)?.compiled;
  const connection = CONNECTION.flatMap((s) => (s.build ? [s.build({ cfg, log, match, containment: deps.containment })] : []));
  const upgradeChecks = UPGRADE.flatMap((s) => (s.build ? [s.build()] : []));
  // Without an auth service the gateway's own pages refuse (fail closed).
  const authEndpoints = deps.auth
    ? createAuthEndpoints(cfg, deps.auth, log, { login: createLoginLimiter(deps, 'login'), token: createLoginLimiter(deps, 'token') }, deps.containment?.blocks)
    : undefined;
  const liveSockets = deps.auth ? new LiveSockets(deps.auth) : undefined;
  const websockets = new Set<WsSession>();
  let draining = false;

  const internal = (err: unknown): GatewayError => {
    if (isGatewayError(err)) return err;
    log.app('error', 'unexpected error in pipeline', { error: err instanceof Error ? err.stack : String(err) });
    return new GatewayError('INTERNAL', err instanceof Error ? err.message : String(err));
  };

  function runConnection(ctx: RequestContext): CompiledRoute {
    for (const step of connection) step(ctx);
    return ctx.route as CompiledRoute;
  }

  async function handleHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const ctx = newContext(req, 'http');
    const reply = ctx.reply;
    const refuse = (err: GatewayError): void => reply.refuse(res, err, wantsHtml(req));
    res.once('close', () => {
      // Whether a session renewal's Set-Cookie left with the headers (src/auth/request-auth.ts).
      for (const closed of ctx.onResponseClosed ?? []) closed(res.headersSent);
      // A forwarded response that never finished was cut short (the forwarder's own mark comes too late).
      if (!res.writableFinished) reply.aborted();
      reply.status ??= res.statusCode;
      record(ctx);
    });
    // During shutdown every answer closes its connection, so keep-alive clients move on.
    res.once('finish', () => {
      if (draining) req.socket.end();
    });
    if (draining) res.shouldKeepAlive = false;
    try {
      const route = runConnection(ctx);
      if (forwardAuth?.isEndpoint(route)) {
        forwardAuth.handle(ctx, res, refuse);
        return;
      }
      // 3. Terminal, chosen by path: the gateway's own pages take the allowlist alone.
      if (ctx.path === JWKS_PATH) {
        await runSteps(ctx, route.ownPageSteps);
        answerJwks(ctx, res, deps.assertions);
        return;
      }
      if (AUTH_PATHS.has(ctx.path ?? '') || authEndpoints?.owns(ctx.path ?? '')) {
        await runSteps(ctx, route.ownPageSteps);
        if (!authEndpoints) throw new GatewayError('AUTH_UNAVAILABLE', 'login is not enabled (API_SECRET_KEY is not set)');
        authEndpoints.handle(ctx, res, refuse);
        return;
      }
      const answer = await runSteps(ctx, route.steps);
      if (answer !== undefined) {
        reply.answer(res, answer);
        return;
      }
      reply.forwarded();
      if (route.handler) route.handler(ctx, res, refuse);
      else forwarder.web(ctx, route, res, refuse);
    } catch (err) {
      refuse(internal(err));
    }
  }

  async function handleUpgradeAsync(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const ctx = newContext(req, 'upgrade');
    let session: WsSession | undefined;
    const refuse = (err: GatewayError): void => {
      if (ctx.reply.refuseRaw(socket, err, session?.upgraded)) record(ctx);
    };
    try {
      if (draining) throw new GatewayError('SHUTTING_DOWN', 'upgrade during shutdown');
      const route = runConnection(ctx);
      for (const check of upgradeChecks) check(ctx);
      // The gateway's own document: never handed to an upstream, not even as a handshake.
      if (ctx.path === JWKS_PATH) throw new GatewayError('UPGRADE_NOT_ALLOWED', `upgrade on ${JWKS_PATH}`);
      if ((await runSteps(ctx, route.upgradeSteps)) !== undefined) throw new GatewayError('UPGRADE_NOT_ALLOWED', 'a step answered an upgrade');
      ctx.reply.forwarded(101);
      const ws = new WsSession(socket);
      session = ws;
      websockets.add(ws);
      ws.onGone(() => websockets.delete(ws));
      const bearer = ctx.protocolBearer;
      forwarder.ws(ctx, route, socket, head, refuse, (res, upstream) => {
        if (bearer) answerProtocol(res.headers, bearer);
        ws.accept(upstream);
      });
      if (liveSockets && ctx.principal) liveSockets.track(ws, ctx.principal);
      if (deps.containment && ctx.address) deps.containment.sockets.track(ws, { address: ctx.address.client, route: route.name, subject: ctx.principal?.subject });
      // Shutdown may have begun while the steps ran: this one closes as soon as it opens.
      if (draining) ws.close(WS_CLOSE.shutdown);
      socket.once('close', () => {
        if (!ctx.reply.error) record(ctx);
        // The close the gateway chose (revocation, expiry, disabled account, shutdown), for the audit trail.
        const closed = ws.closedWith;
        if (closed) log.security('websocket.closed', { requestId: ctx.id, closeCode: closed.code, reason: closed.reason, user: ctx.principal?.subject, tokenId: ctx.principal?.tokenId, route: route.name, clientIp: ctx.address?.client.address });
      });
    } catch (err) {
      refuse(internal(err));
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
      handleClientError(err, socket, log, newContext, record);
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

/**
 * The plain-HTTP listener (FORCE_HTTPS): the `request-id`, `client-ip`, `request-target` and
 * `path` connection steps, then a 308 to the same URL over HTTPS. Only hosts the gateway serves
 * are redirected, so the listener is not an open redirect for any Host a client sends. Its
 * access lines and events are those of the HTTPS listener, marked `listener: http`.
 */
export function createPlainHttpHandler(cfg: GatewayConfig, httpsPort: () => number, deps: Pick<GatewayDeps, 'log' | 'metrics' | 'acmeHttp01'>): (req: IncomingMessage, res: ServerResponse) => void {
  const { log, acmeHttp01 } = deps;
  const hosts = routeHosts(cfg.routes);
  const anyHostRoute = cfg.routes.some((r) => r.host === undefined);
  const served = (host: string): boolean =>
    hosts.has(host) || (anyHostRoute && (host === cfg.domain || host.endsWith(`.${cfg.domain}`) || host === 'localhost' || host === '127.0.0.1' || host === '[::1]'));
  // No HSTS over plain HTTP (RFC 6797 §7.2).
  const newContext = contextMaker(cfg, { hsts: undefined, defaultLanguage: cfg.ui.defaultLanguage });
  const record = recorder(log, deps.metrics.requests, 'http');
  return (req, res) => {
    const ctx = newContext(req, 'http');
    try {
      const target = readRequestTarget(req, cfg.server.maxUrlLength);
      ctx.target = target;
      const path = normalizePath(target.rawPath, { allowEncodedSlashes: true });
      ctx.path = path;
      // ACME HTTP-01 (RFC 8555 §8.3): the CA fetches this over plain HTTP and must not be redirected; the one exempt path, for the certificate's hosts only.
      if (acmeHttp01?.covers(target.host) && path.startsWith(ACME_CHALLENGE_PREFIX)) {
        void acmeHttp01(ctx, res, path.slice(ACME_CHALLENGE_PREFIX.length)).finally(() => record(ctx));
        return;
      }
      if (!served(target.host)) throw new GatewayError('ROUTE_NOT_FOUND', `redirect for unknown host ${target.host}`);
      const port = cfg.listen.publicHttpsPort ?? httpsPort();
      const authority = port === 443 ? target.host : `${target.host}:${port}`;
      ctx.reply.redirect(res, 308, `https://${authority}${path}${target.query ? `?${target.query}` : ''}`);
    } catch (err) {
      ctx.reply.refuse(res, err instanceof GatewayError ? err : new GatewayError('BAD_REQUEST', String(err)), false);
    }
    record(ctx);
  };
}

/** Requests Node's parser refused: a clear 4xx with a request id, logged, then the socket closes. */
function handleClientError(
  err: NodeJS.ErrnoException,
  socket: Duplex,
  log: Logger,
  newContext: ReturnType<typeof contextMaker>,
  record: (ctx: RequestContext) => void,
): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const remote = (socket as Duplex & { remoteAddress?: string }).remoteAddress;
  // A TLS-layer failure after the handshake (e.g. a refused renegotiation): no HTTP answer can
  // cross the broken session and `end()` would never finish, so the connection stayed open.
  if (err.code?.startsWith('ERR_SSL_') || (err as { library?: string }).library === 'SSL routines') {
    log.security('tls.connection_failed', { error: err.message, clientIp: remote });
    socket.destroy();
    return;
  }
  const code = err.code === 'HPE_HEADER_OVERFLOW' ? 'HEADERS_TOO_LARGE' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'REQUEST_TIMEOUT' : 'BAD_REQUEST';
  const gerr = new GatewayError(code, `${err.code ?? 'parse error'}: ${err.message}`);
  // No request was parsed: a context of the socket alone (its peer, no trusted hops).
  const ctx = newContext({ socket, headers: {}, rawHeaders: [] } as unknown as IncomingMessage, 'http');
  // As Node's own default: bytes after a request must not put a second answer into a response
  // already under way (it would corrupt it); that response ends or closes the connection.
  const underway = (socket as Duplex & { _httpMessage?: { headersSent: boolean } })._httpMessage?.headersSent === true;
  ctx.reply.refuseRaw(socket, gerr, underway);
  record(ctx);
}
