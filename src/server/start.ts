import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { GatewayConfig } from '../config/schema.js';
import { createGateway, createPlainHttpHandler, type Gateway } from '../app.js';
import type { GatewayDeps } from '../deps.js';
import { loadCertificatePair, type CertificateInfo, type CertificatePair } from '../tls/certificates.js';
import { createCertificateReloader, type CertificateReloader, type CertificateVeto } from '../tls/reloader.js';
import { certificateFindings } from '../config/policy.js';
import { tlsPolicy } from '../tls/options.js';
import { clientCertHosts, createClientCertRequest, loadClientCa, type ClientCertRequest } from '../tls/client-certs.js';
import { createAdminHandler } from '../admin/server.js';
import { createGatewayMetrics, type GatewayMetrics } from '../metrics/gateway.js';
import { createWhatsappWebhooks } from '../webhook/service.js';
import { holdUntilServed, type Held } from './hold.js';

export interface RunningGateway {
  readonly gateway: Gateway;
  /** This gateway's metrics (what its admin listener serves at /metrics). */
  readonly metrics: GatewayMetrics;
  readonly httpsServer: https.Server;
  readonly httpServer: http.Server;
  readonly adminServer: http.Server;
  readonly ports: { https: number; http: number; admin: number };
  readonly certificates: CertificateReloader;
  /** Stops accepting, lets in-flight requests finish within `shutdownTimeout`, then closes the rest. */
  shutdown(): Promise<void>;
}

/** How often Node checks for clients that are too slow to send headers or a request. */
const SLOW_CLIENT_SWEEP_MS = 1_000;

/** A listener could not be opened: one line for the operator, naming the setting. */
export class ListenFailed extends Error {
  constructor(
    readonly setting: string,
    readonly address: string,
    readonly code: string | undefined,
  ) {
    const why =
      code === 'EADDRINUSE'
        ? 'the address is in use: another gateway (perhaps one still draining after SIGTERM) or another program listens there; stop it or choose another port'
        : code === 'EACCES'
          ? 'permission denied (ports below 1024 need privileges)'
          : (code ?? 'unknown error');
    super(`cannot listen on ${address} (${setting}): ${why}`);
    this.name = 'ListenFailed';
  }
}

function listen(server: http.Server, port: number, host: string, setting: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new ListenFailed(setting, `${host}:${port}`, err.code)));
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Node's slow-client defenses, set on every public listener. */
function harden(server: http.Server, cfg: GatewayConfig): void {
  server.headersTimeout = cfg.server.headersTimeout;
  server.requestTimeout = cfg.server.requestTimeout;
  server.keepAliveTimeout = cfg.server.keepAliveTimeout;
  server.maxRequestsPerSocket = 1000;
}

/**
 * Production refuses to start with a self-signed or expired certificate or a key others can
 * read; a reload (file change, SIGHUP) must not bring one in either. Development takes any pair.
 */
function reloadVeto(cfg: GatewayConfig): CertificateVeto | undefined {
  if (cfg.env !== 'production') return undefined;
  return (info) => {
    const findings = certificateFindings(cfg, info);
    return findings.length > 0 ? `refused by the production policy: ${findings.map((f) => `[${f.id}] ${f.message}`).join('; ')}` : undefined;
  };
}

/**
 * With ACME: the pair on disk when ACME would keep it (a CA's, valid now, covering the routed
 * hosts), else an in-memory placeholder until the first order completes: a fresh machine, or
 * one that was off longer than its certificate's life (src/tls/acme/on-disk.ts).
 */
async function acmeStartPair(cfg: GatewayConfig): Promise<CertificatePair> {
  const onDisk = (await import('../tls/acme/on-disk.js')).readAcmeOnDisk(cfg);
  if (onDisk.pair && !onDisk.unservable) return onDisk.pair;
  return (await import('../tls/acme/placeholder.js')).placeholderPair((await import('../tls/acme/hosts.js')).acmeHosts(cfg).names);
}

/** Process wiring that is not config: set by a cluster worker. */
export interface StartOptions {
  /** TLS session-ticket keys shared by every worker (48 bytes), so resumption works across them. */
  ticketKeys?: Buffer | undefined;
}

/** The public and admin listeners, bound and accepting, with no gateway behind them yet. */
export interface BoundGateway {
  readonly httpsServer: https.Server;
  readonly httpServer: http.Server;
  readonly adminServer: http.Server;
  readonly ports: { https: number; http: number; admin: number };
  /** Builds the pipeline on these listeners; requests that arrived meanwhile are served first. */
  serve(deps: GatewayDeps): RunningGateway;
  /** Closes the listeners, for a startup that fails before `serve`. */
  close(): Promise<void>;
}

/**
 * Opens the HTTPS, HTTP and admin listeners, and nothing else: no log line, no file. main()
 * binds before it opens the audit log, so a second instance on the same ports fails with
 * EADDRINUSE before it has written a line that would fork the chains (issue 12, item 8).
 */
export async function bindGateway(cfg: GatewayConfig, opts: StartOptions = {}): Promise<BoundGateway> {
  const pair = cfg.tls.acme ? await acmeStartPair(cfg) : loadCertificatePair(cfg.tls.certFile, cfg.tls.keyFile);
  // WHATSAPP_MTLS: a client certificate asked for on the webhook hosts only (src/tls/client-certs.ts).
  const clientCerts = cfg.whatsapp.mtls && cfg.whatsapp.mtlsCaFile ? createClientCertRequest(clientCertHosts(cfg), loadClientCa(cfg.whatsapp.mtlsCaFile), pair.cert, pair.key) : undefined;
  const httpsServer = https.createServer({
    ...serverOptions(cfg),
    ...tlsPolicy(),
    // Node's default is 120 s; headersTimeout only starts once the handshake is done, so a client
    // that never finishes it (or never sends a ClientHello) held its connection that long.
    handshakeTimeout: cfg.server.headersTimeout,
    cert: pair.cert,
    key: pair.key,
    ...(opts.ticketKeys ? { ticketKeys: opts.ticketKeys } : {}),
    ...(clientCerts ? { SNICallback: clientCerts.SNICallback } : {}),
  });
  const httpServer = http.createServer(serverOptions(cfg));
  const adminServer = http.createServer();
  const held = [httpsServer, httpServer, adminServer].map((s) => holdUntilServed(s)) as [Held, Held, Held];
  for (const s of [httpsServer, httpServer]) harden(s, cfg);
  // Every TCP connection of the public listeners. Upgraded websockets (and unfinished TLS
  // handshakes) are outside the HTTP servers' own tracking: closeAllConnections() misses them,
  // and close() would wait on them past the shutdown timeout, for as long as they stay open.
  const sockets = new Set<Socket>();
  for (const s of [httpsServer, httpServer]) {
    s.on('connection', (socket: Socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    });
  }

  const servers = [httpsServer, httpServer, adminServer];
  const close = async (): Promise<void> => {
    await Promise.all(servers.map((s) => (s.listening ? new Promise<void>((r) => s.close(() => r())) : undefined)));
    for (const s of servers) s.closeAllConnections();
  };
  let ports: BoundGateway['ports'];
  try {
    ports = {
      https: await listen(httpsServer, cfg.listen.httpsPort, cfg.listen.address, 'HTTPS_PORT'),
      http: await listen(httpServer, cfg.listen.httpPort, cfg.listen.address, 'HTTP_PORT'),
      admin: await listen(adminServer, cfg.listen.adminPort, cfg.listen.adminAddress, 'ADMIN_PORT'),
    };
  } catch (err) {
    await close();
    throw err;
  }
  let served = false;
  return {
    httpsServer,
    httpServer,
    adminServer,
    ports,
    close,
    serve(deps) {
      if (served) throw new Error('bindGateway: serve() called twice');
      served = true;
      return serveGateway(cfg, deps, { httpsServer, httpServer, adminServer, ports, held, sockets, pair, clientCerts });
    },
  };
}

/** GatewayDeps, with metrics of their own made here when none are given (tests, the benchmark). */
export type StartDeps = Omit<GatewayDeps, 'metrics'> & { readonly metrics?: GatewayMetrics | undefined };

/** Builds the pipeline and opens the HTTPS, HTTP and admin listeners. */
export async function startGateway(cfg: GatewayConfig, deps: StartDeps, opts: StartOptions = {}): Promise<RunningGateway> {
  return (await bindGateway(cfg, opts)).serve({ ...deps, metrics: deps.metrics ?? createGatewayMetrics() });
}

/**
 * A cluster primary serves nothing (its workers listen, through node:cluster), so it cannot
 * hold the ports; it tries each once before it opens the audit log, so a second gateway on the
 * same ports still stops with EADDRINUSE before writing. The folder lock is the real guard.
 */
export async function probePorts(cfg: GatewayConfig): Promise<void> {
  const probes: [number, string, string][] = [
    [cfg.listen.httpsPort, cfg.listen.address, 'HTTPS_PORT'],
    [cfg.listen.httpPort, cfg.listen.address, 'HTTP_PORT'],
    [cfg.listen.adminPort, cfg.listen.adminAddress, 'ADMIN_PORT'],
  ];
  for (const [port, host, setting] of probes) {
    const server = http.createServer();
    await listen(server, port, host, setting);
    await new Promise<void>((r) => server.close(() => r()));
  }
}

function serverOptions(cfg: GatewayConfig): http.ServerOptions {
  return {
    maxHeaderSize: cfg.server.maxHeaderSize,
    insecureHTTPParser: false,
    requireHostHeader: true,
    joinDuplicateHeaders: false,
    // headersTimeout/requestTimeout are enforced by a sweep; Node's default sweep is every 30 s.
    connectionsCheckingInterval: SLOW_CLIENT_SWEEP_MS,
  };
}

interface Bound {
  readonly httpsServer: https.Server;
  readonly httpServer: http.Server;
  readonly adminServer: http.Server;
  readonly ports: BoundGateway['ports'];
  readonly held: readonly [Held, Held, Held];
  readonly sockets: Set<Socket>;
  readonly pair: CertificatePair;
  readonly clientCerts: ClientCertRequest | undefined;
}

function serveGateway(cfg: GatewayConfig, deps: GatewayDeps, bound: Bound): RunningGateway {
  const log = deps.log;
  const { httpsServer, httpServer, adminServer, ports, sockets, pair } = bound;
  const [heldHttps, heldHttp, heldAdmin] = bound.held;
  const metrics = deps.metrics;
  for (const s of [httpsServer, httpServer]) metrics.requests.countConnections(s);
  // The WhatsApp webhook's handlers and delivery worker (one per process; a Redis lease elects the deliverer).
  const whatsapp = createWhatsappWebhooks(cfg, deps);
  const gateway = createGateway(cfg, { ...deps, whatsapp });

  httpsServer.on('clientError', (err, socket) => gateway.handleClientError(err, socket));
  httpsServer.on('tlsClientError', (err, socket) => {
    log.security('tls.handshake_failed', { error: err.message, clientIp: socket.remoteAddress });
  });
  heldHttps.serve({
    request: gateway.handleRequest,
    upgrade: (req, socket, head) => gateway.handleUpgrade(req, socket, head),
    // Unheard, Node drops a CONNECT with no answer and no log line; the raw-socket path refuses it (405) and logs it.
    connect: (req, socket, head) => gateway.handleUpgrade(req, socket, head),
  });

  httpServer.on('clientError', (err, socket) => gateway.handleClientError(err, socket));
  heldHttp.serve({
    request: cfg.forceHttps ? createPlainHttpHandler(cfg, () => ports.https, deps) : gateway.handleRequest,
    upgrade: cfg.forceHttps ? (_req, socket) => socket.destroy() : (req, socket, head) => gateway.handleUpgrade(req, socket, head),
  });

  let draining = false;
  heldAdmin.serve({
    request: createAdminHandler(cfg, () => draining, {
      log,
      adminAuth: deps.adminAuth,
      overview: deps.securityOverview,
      blocks: deps.containment?.blocks,
      auth: deps.auth,
      redis: deps.redis,
      postgres: deps.postgres,
      listening: () => httpsServer.listening,
      assertions: deps.assertions,
      metrics,
    }),
  });

  const certificates = createCertificateReloader([httpsServer], cfg.tls.certFile, cfg.tls.keyFile, pair.info as CertificateInfo, log, {
    watch: cfg.tls.watch,
    veto: reloadVeto(cfg),
    onReload: bound.clientCerts ? (p) => bound.clientCerts?.update(p.cert, p.key) : undefined,
    metrics: metrics.tls,
  });
  // OpenAPI specs reload on the same signal; a spec that fails keeps the previous one (src/openapi/registry.ts).
  const stopSpecReload = deps.openapi?.reloadOnSighup();

  whatsapp?.start();
  if (bound.clientCerts) log.app('info', 'webhook client certificates asked for', { mode: cfg.whatsapp.mtls, hosts: [...clientCertHosts(cfg)], ca: cfg.whatsapp.mtlsCaFile });
  log.app('info', 'gateway listening', { https: ports.https, http: ports.http, admin: `${cfg.listen.adminAddress}:${ports.admin}`, env: cfg.env, routes: cfg.routes.map((r) => r.name) });

  let stopping: Promise<void> | undefined;
  const shutdown = (): Promise<void> => {
    stopping ??= (async () => {
      draining = true;
      gateway.drain();
      certificates.close();
      stopSpecReload?.();
      const publicServers = [httpsServer, httpServer];
      const closed = Promise.all(publicServers.map((s) => new Promise<void>((r) => s.close(() => r()))));
      for (const s of publicServers) s.closeIdleConnections();
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        closed.then(() => false),
        new Promise<boolean>((r) => {
          timer = setTimeout(() => r(true), cfg.server.shutdownTimeout);
        }),
      ]);
      clearTimeout(timer);
      if (timedOut) {
        log.app('warn', 'shutdown timeout: closing remaining connections', { timeoutMs: cfg.server.shutdownTimeout });
        for (const s of publicServers) s.closeAllConnections();
        for (const socket of sockets) socket.destroy();
        await closed;
      }
      // After in-flight requests: a webhook request may still wait on its delivery.
      await whatsapp?.stop();
      gateway.close();
      await new Promise<void>((r) => adminServer.close(() => r()));
      adminServer.closeAllConnections();
      log.app('info', 'gateway stopped');
    })();
    return stopping;
  };

  return { gateway, metrics, httpsServer, httpServer, adminServer, ports, certificates, shutdown };
}
