import http from 'node:http';
import tls from 'node:tls';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { Redis } from 'ioredis';
import { parseConfig } from '../../src/config/load.js';
import type { GatewayConfig } from '../../src/config/schema.js';
import { createMemoryLogger, type MemoryLogger } from '../../src/log/logger.js';
import { startGateway, type RunningGateway } from '../../src/server/start.js';
import { startEchoUpstream, type EchoUpstream } from '../../src/demo/echo-upstream.js';
import { createGatewayMetrics } from '../../src/metrics/gateway.js';
import { createAcme, type AcmeOptions, type AcmeService } from '../../src/tls/acme/service.js';
import type { Pebble } from './pebble.js';
import { waitFor } from './wait.js';

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

export interface ServedCertificate {
  authorized: boolean;
  error?: string;
  x509: X509Certificate;
}

/** The certificate a real TLS client gets for `servername`, and whether it verified against `ca`. */
export function servedCertificate(port: number, servername: string, ca: string): Promise<ServedCertificate> {
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

/** The built gateway, as operators run it (dist/ from `npm run build`). */
const BUILT_MAIN = join(import.meta.dirname, '../../dist/main.js');

/** Two routes, so one ACME order has to cover two names (api. and nocodb. under acme.test). */
const DEPLOYMENT_YAML = 'routes:\n  - name: api\n    host: api.${GATEWAY_DOMAIN}\n    upstream: http://127.0.0.1:9\n    auth: jwt\n  - name: nocodb\n    host: nocodb.${GATEWAY_DOMAIN}\n    upstream: http://127.0.0.1:9\n    auth: jwt\n';

/**
 * A production deployment folder: writes `dir/gateway.yaml` and returns the environment, with
 * the certificate under DATA_DIR as a fresh install has it. `acme` (a Pebble fits) adds the ACME
 * settings pointing at its directory; without it the gateway needs a certificate on disk.
 */
export function productionDeployment(dir: string, ports: { https: number; http: number; admin: number }, acme?: { directoryUrl: string; caFile: string }): Record<string, string> {
  writeFileSync(join(dir, 'gateway.yaml'), DEPLOYMENT_YAML);
  return {
    GATEWAY_ENV: 'production',
    GATEWAY_CONFIG: join(dir, 'gateway.yaml'),
    GATEWAY_DOMAIN: 'acme.test',
    LISTEN_ADDRESS: '127.0.0.1',
    HTTPS_PORT: String(ports.https),
    HTTP_PORT: String(ports.http),
    ADMIN_PORT: String(ports.admin),
    TLS_CERT_FILE: join(dir, 'data/tls/gateway.crt'),
    TLS_KEY_FILE: join(dir, 'data/tls/gateway.key'),
    DATA_DIR: join(dir, 'data'),
    LOG_DIR: join(dir, 'logs'),
    API_SECRET_KEY: 'ab'.repeat(32),
    LOG_HASH_KEY: 'cd'.repeat(32),
    CORS_ORIGINS: 'https://app.acme.test',
    ...(acme ? { ACME_DIRECTORY_URL: acme.directoryUrl, ACME_CA_FILE: acme.caFile, ACME_EMAIL: 'ops@acme.test' } : {}),
  };
}

export interface BuiltGateway {
  readonly child: ChildProcess;
  /** performance.now() just before the spawn: the start of "start to certificate served". */
  readonly startedAt: number;
  /** The exit code, once the process ends. */
  readonly exited: Promise<number | null>;
  stderr(): string;
}

/**
 * dist/main.js in `dir` with `env` and PATH only (no inherited settings), resolved once it
 * listens, asserted still running then. SIGKILLed after the test if the test did not stop it.
 */
export async function spawnBuiltGateway(t: TestContext, dir: string, env: Record<string, string>): Promise<BuiltGateway> {
  const startedAt = performance.now();
  const child = spawn(process.execPath, [BUILT_MAIN], { cwd: dir, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdout.on('data', () => undefined);
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  await waitFor(() => stderr.includes('gateway listening') || child.exitCode !== null, 'the gateway to listen', 15_000, 50);
  assert.equal(child.exitCode, null, stderr);
  return { child, startedAt, exited, stderr: () => stderr };
}

/**
 * Waits up to `timeoutMs` until the gateway on `httpsPort` serves api.acme.test a certificate
 * from pebble's issuing root, then reads the one nocodb.acme.test gets (the order covers both).
 * `tookMs` runs from the spawn to the first verified handshake.
 */
export async function acmeCertificateServed(gateway: BuiltGateway, httpsPort: number, pebble: Pebble, timeoutMs: number): Promise<{ tookMs: number; served: ServedCertificate }> {
  const root = await pebble.issuingRoot();
  await waitFor(async () => (await servedCertificate(httpsPort, 'api.acme.test', root).catch(() => ({ authorized: false }))).authorized, `the ACME certificate served\n${gateway.stderr()}`, timeoutMs, 100);
  const tookMs = performance.now() - gateway.startedAt;
  return { tookMs, served: await servedCertificate(httpsPort, 'nocodb.acme.test', root) };
}
