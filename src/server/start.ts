import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { GatewayConfig } from '../config/schema.js';
import { createGateway, hstsValue, type Gateway } from '../app.js';
import type { GatewayDeps } from '../deps.js';
import { loadCertificatePair, type CertificateInfo } from '../tls/certificates.js';
import { createCertificateReloader, type CertificateReloader, type CertificateVeto } from '../tls/reloader.js';
import { certificateFindings } from '../config/policy.js';
import { tlsPolicy } from '../tls/options.js';
import { createRedirectHandler } from './redirect.js';
import { createAdminServer } from '../admin/server.js';
import { countConnections } from '../audit/metrics.js';
import { createWhatsappWebhooks } from '../webhook/service.js';

export interface RunningGateway {
  readonly gateway: Gateway;
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

function listen(server: http.Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
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

/** Process wiring that is not config: set by a cluster worker. */
export interface StartOptions {
  /** TLS session-ticket keys shared by every worker (48 bytes), so resumption works across them. */
  ticketKeys?: Buffer | undefined;
}

/** Builds the pipeline and opens the HTTPS, HTTP and admin listeners. */
export async function startGateway(cfg: GatewayConfig, deps: GatewayDeps, opts: StartOptions = {}): Promise<RunningGateway> {
  const log = deps.log;
  const pair = loadCertificatePair(cfg.tls.certFile, cfg.tls.keyFile);
  // The WhatsApp webhook's handlers and delivery worker (one per process; a Redis lease elects the deliverer).
  const whatsapp = createWhatsappWebhooks(cfg, deps, hstsValue(cfg));
  const gateway = createGateway(cfg, { ...deps, whatsapp });
  const serverOptions = {
    maxHeaderSize: cfg.server.maxHeaderSize,
    insecureHTTPParser: false,
    requireHostHeader: true,
    joinDuplicateHeaders: false,
    // headersTimeout/requestTimeout are enforced by a sweep; Node's default sweep is every 30 s.
    connectionsCheckingInterval: SLOW_CLIENT_SWEEP_MS,
  };

  const httpsServer = https.createServer(
    {
      ...serverOptions,
      ...tlsPolicy(),
      // Node's default is 120 s; headersTimeout only starts once the handshake is done, so a client
      // that never finishes it (or never sends a ClientHello) held its connection that long.
      handshakeTimeout: cfg.server.headersTimeout,
      cert: pair.cert,
      key: pair.key,
      ...(opts.ticketKeys ? { ticketKeys: opts.ticketKeys } : {}),
    },
    gateway.handleRequest,
  );
  harden(httpsServer, cfg);
  countConnections(httpsServer);
  httpsServer.on('upgrade', (req, socket, head) => gateway.handleUpgrade(req, socket, head));
  // Unheard, Node drops a CONNECT with no answer and no log line; the raw-socket path refuses it (405) and logs it.
  httpsServer.on('connect', (req, socket, head) => gateway.handleUpgrade(req, socket, head));
  httpsServer.on('clientError', (err, socket) => gateway.handleClientError(err, socket));
  httpsServer.on('tlsClientError', (err, socket) => {
    log.security('tls.handshake_failed', { error: err.message, clientIp: socket.remoteAddress });
  });

  let httpsPort = 0;
  const httpServer = http.createServer(
    serverOptions,
    cfg.forceHttps ? createRedirectHandler(cfg, () => httpsPort, deps.log) : gateway.handleRequest,
  );
  harden(httpServer, cfg);
  countConnections(httpServer);
  httpServer.on('clientError', (err, socket) => gateway.handleClientError(err, socket));
  if (!cfg.forceHttps) httpServer.on('upgrade', (req, socket, head) => gateway.handleUpgrade(req, socket, head));
  else httpServer.on('upgrade', (_req, socket: Socket) => socket.destroy());

  let draining = false;
  const adminServer = createAdminServer(cfg, () => draining, { log, adminAuth: deps.adminAuth, overview: deps.securityOverview });

  httpsPort = await listen(httpsServer, cfg.listen.httpsPort, cfg.listen.address);
  const httpPort = await listen(httpServer, cfg.listen.httpPort, cfg.listen.address);
  const adminPort = await listen(adminServer, cfg.listen.adminPort, cfg.listen.adminAddress);
  const certificates = createCertificateReloader([httpsServer], cfg.tls.certFile, cfg.tls.keyFile, pair.info as CertificateInfo, log, { watch: cfg.tls.watch, veto: reloadVeto(cfg) });

  whatsapp?.start();
  log.app('info', 'gateway listening', { https: httpsPort, http: httpPort, admin: `${cfg.listen.adminAddress}:${adminPort}`, env: cfg.env, routes: cfg.routes.map((r) => r.name) });

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

  let stopping: Promise<void> | undefined;
  const shutdown = (): Promise<void> => {
    stopping ??= (async () => {
      draining = true;
      gateway.drain();
      certificates.close();
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

  return { gateway, httpsServer, httpServer, adminServer, ports: { https: httpsPort, http: httpPort, admin: adminPort }, certificates, shutdown };
}
