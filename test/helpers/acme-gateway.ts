import http from 'node:http';
import tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { parseConfig } from '../../src/config/load.js';
import type { GatewayConfig } from '../../src/config/schema.js';
import { createMemoryLogger, type MemoryLogger } from '../../src/log/logger.js';
import { startGateway, type RunningGateway } from '../../src/server/start.js';
import { startEchoUpstream, type EchoUpstream } from '../../src/demo/echo-upstream.js';
import { createGatewayMetrics } from '../../src/metrics/gateway.js';
import { createAcme, type AcmeOptions, type AcmeService } from '../../src/tls/acme/service.js';
import type { Pebble } from './pebble.js';

/** Short waits for tests: the production backoff starts at 5 minutes. */
export const TEST_ACME_OPTIONS: AcmeOptions = { backoffFirstMs: 400, backoffMaxMs: 3_000, lockRecheckMs: 300 };

export interface AcmeGateway {
  readonly running: RunningGateway;
  readonly acme: AcmeService;
  readonly config: GatewayConfig;
  readonly log: MemoryLogger;
  readonly upstream: EchoUpstream;
  readonly alerts: { type: string; subject: string; message: string }[];
  readonly dir: string;
  events(name: string): Record<string, unknown>[];
  close(): Promise<void>;
}

export interface AcmeGatewayOptions {
  pebble: Pebble;
  hosts: string[];
  /** Where the files go; a temp folder of its own by default (two instances share one). */
  dir?: string;
  /** The plain-HTTP listener's port; pebble's httpPort by default (where it validates HTTP-01). */
  httpPort?: number;
  /** The HTTPS listener's port; 0 by default (pebble's tlsPort for TLS-ALPN-01). */
  httpsPort?: number;
  challenge?: 'http-01' | 'tls-alpn-01';
  directoryUrl?: string;
  redis?: Redis;
  options?: AcmeOptions;
  /** YAML put before the routes (e.g. `server: { headersTimeout: 2s }`). */
  yaml?: string;
}

/**
 * A gateway wired as main() wires it with ACME: the ACME service made first, its HTTP-01
 * responder on the plain listener, then started against the running listener and reloader.
 */
export async function startAcmeGateway(o: AcmeGatewayOptions): Promise<AcmeGateway> {
  const ownDir = o.dir === undefined;
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), 'crm-gw-acme-'));
  const upstream = await startEchoUpstream('acme-upstream');
  const routes = o.hosts.map((h, i) => `  - name: r${i}\n    host: ${h}\n    upstream: ${upstream.url}\n    auth: none\n`).join('');
  const config = parseConfig(`${o.yaml ?? ''}routes:\n${routes}`, {
    GATEWAY_DOMAIN: 'acme.test',
    HTTPS_PORT: String(o.httpsPort ?? 0),
    HTTP_PORT: String(o.httpPort ?? o.pebble.httpPort),
    ADMIN_PORT: '0',
    LISTEN_ADDRESS: '127.0.0.1',
    TLS_CERT_FILE: join(dir, 'certs/gateway.crt'),
    TLS_KEY_FILE: join(dir, 'certs/gateway.key'),
    DATA_DIR: join(dir, 'data'),
    ACME_DIRECTORY_URL: o.directoryUrl ?? o.pebble.directoryUrl,
    ACME_CA_FILE: o.pebble.caFile,
    ACME_EMAIL: 'ops@acme.test',
    ACME_CHALLENGE: o.challenge ?? 'http-01',
  });
  const log = createMemoryLogger();
  const alerts: AcmeGateway['alerts'] = [];
  // One gateway's metrics, as main.ts builds them: the ACME gauges sit beside the gateway's own.
  const metrics = createGatewayMetrics();
  const acme = await createAcme(config, { log, redis: o.redis, registry: metrics.registry, raise: (type, subject, message) => alerts.push({ type, subject, message }) }, { ...TEST_ACME_OPTIONS, ...o.options });
  const running = await startGateway(config, { log, metrics, acmeHttp01: acme.http01 });
  acme.start(running);
  return {
    running,
    acme,
    config,
    log,
    upstream,
    alerts,
    dir,
    events: (name) => log.securityEvents.filter((e) => e.event === name),
    close: async () => {
      await acme.stop(10_000);
      await running.shutdown();
      await upstream.close();
      if (ownDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The certificate a real TLS client gets for `servername`, and whether it verified against `ca`. */
export function servedCertificate(port: number, servername: string, ca: string): Promise<{ authorized: boolean; error?: string; x509: X509Certificate }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername, ca, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => {
      const raw = socket.getPeerX509Certificate();
      const authorized = socket.authorized;
      const error = socket.authorizationError ? String(socket.authorizationError) : undefined;
      socket.end();
      if (!raw) reject(new Error('no peer certificate'));
      else resolve({ authorized, ...(error ? { error } : {}), x509: raw });
    });
    socket.once('error', reject);
  });
}

/** A plain-HTTP request to the gateway's redirect listener. */
export function plainGet(port: number, path: string, host: string, method = 'GET'): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, headers: { host }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.once('error', reject);
    req.end();
  });
}
