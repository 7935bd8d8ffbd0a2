import https from 'node:https';
import tls from 'node:tls';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClientRequest, IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { parseConfig } from '../../src/config/load.js';
import type { GatewayConfig } from '../../src/config/schema.js';
import { createMemoryLogger, type Logger, type MemoryLogger } from '../../src/log/logger.js';
import { startGateway, type RunningGateway, type StartDeps } from '../../src/server/start.js';
import { devCaPaths, ensureDevCertificate } from '../../src/tls/certificates.js';
import { startEchoUpstream, type EchoUpstream } from '../../src/demo/echo-upstream.js';

/** A test certificate: the leaf (followed by its CA) and key, and the development CA that issued it. */
export interface TestCertificate {
  dir: string;
  /** The leaf then the CA: usable as `ca` by node clients as it always was. */
  cert: string;
  key: string;
  /** The development CA alone, for a browser to import (test/helpers/browser.ts does). */
  ca: string;
}

/**
 * Hosts browser tests may use besides api/nocodb/metabase: Chromium resolves `*.localhost` to
 * loopback by itself, but ignores the `*.localhost` wildcard, so each is named in the leaf.
 */
export const TEST_BROWSER_HOSTS = ['other.localhost', 'evil.localhost', 'app.localhost', 'static.localhost', 'auth.localhost'];

let certCache: TestCertificate | undefined;

/**
 * One pair per test process (localhost, *.localhost, *.test.local and TEST_BROWSER_HOSTS),
 * issued by a development CA of its own, so a browser that imports the CA trusts it for real.
 */
export async function testCertificate(): Promise<TestCertificate> {
  if (!certCache) {
    const dir = mkdtempSync(join(tmpdir(), 'crm-gw-cert-'));
    const cert = join(dir, 'gateway.crt');
    const key = join(dir, 'gateway.key');
    await ensureDevCertificate(cert, key, 'test.local', { extraHosts: TEST_BROWSER_HOSTS });
    certCache = { dir, cert, key, ca: devCaPaths(cert).cert };
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  return certCache;
}

export interface TestGateway {
  readonly running: RunningGateway;
  readonly config: GatewayConfig;
  readonly upstream: EchoUpstream;
  readonly log: MemoryLogger;
  readonly port: number;
  readonly ca: string;
  /** An HTTPS request through the gateway; `host` sets both SNI and Host unless `servername` is given. */
  request(opts: RequestOptions): Promise<TestResponse>;
  close(): Promise<void>;
}

export interface RequestOptions {
  method?: string;
  path: string;
  host?: string;
  servername?: string | false;
  headers?: Record<string, string | string[]>;
  body?: string | Buffer;
}

export interface TestResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  json<T = Record<string, unknown>>(): T;
}

/**
 * The config of a test gateway: `routesYaml` (with `UPSTREAM` replaced by `upstreamUrl`) after
 * `extraYaml`, on port 0 of loopback, with the test certificate and domain `test.local`.
 */
export function testConfig(routesYaml: string, upstreamUrl: string, cert: { cert: string; key: string }, env: Record<string, string> = {}, extraYaml = ''): GatewayConfig {
  return parseConfig(`${extraYaml}\nroutes:\n${routesYaml.replaceAll('UPSTREAM', upstreamUrl)}`, { ...testEnv(cert), ...env });
}

/** The environment of every test gateway: domain `test.local`, port 0 on loopback, the test certificate. */
export function testEnv(cert: { cert: string; key: string }): Record<string, string> {
  return {
    GATEWAY_DOMAIN: 'test.local',
    HTTPS_PORT: '0',
    HTTP_PORT: '0',
    ADMIN_PORT: '0',
    LISTEN_ADDRESS: '127.0.0.1',
    TLS_CERT_FILE: cert.cert,
    TLS_KEY_FILE: cert.key,
  };
}

/**
 * A gateway on port 0 with real TLS in front of a real echo upstream. `routesYaml` is the
 * routes section; `UPSTREAM` in it is replaced by the echo upstream's URL.
 */
export async function startTestGateway(
  routesYaml: string,
  env: Record<string, string> = {},
  extraYaml = '',
  /** Stores (e.g. a real Redis client) handed to the gateway besides the memory logger. */
  deps: Omit<StartDeps, 'log'> & { /** A real logger (the audit logger) that gets every line too. */ log?: Logger } = {},
): Promise<TestGateway> {
  const cert = await testCertificate();
  const upstream = await startEchoUpstream('test-upstream');
  const config = testConfig(routesYaml, upstream.url, cert, env, extraYaml);
  const log = createMemoryLogger();
  const running = await startGateway(config, { ...deps, log: deps.log ? teeLogger(log, deps.log) : log });
  const ca = readFileSync(cert.cert, 'utf8');
  const port = running.ports.https;
  return {
    running,
    config,
    upstream,
    log,
    port,
    ca,
    request: (opts) => httpsRequest(port, ca, opts),
    close: async () => {
      await running.shutdown();
      await upstream.close();
    },
  };
}

/** Every line to both loggers; `accepting` (AUDIT_FAIL_CLOSED) is the real logger's. */
function teeLogger(memory: Logger, real: Logger): Logger {
  return {
    access: (entry) => (memory.access(entry), real.access(entry)),
    security: (event, fields) => (memory.security(event, fields), real.security(event, fields)),
    app: (level, message, fields) => (memory.app(level, message, fields), real.app(level, message, fields)),
    ...(real.accepting ? { accepting: () => (real.accepting as () => boolean)() } : {}),
  };
}

export function httpsRequest(port: number, ca: string, opts: RequestOptions): Promise<TestResponse> {
  const host = opts.host ?? 'api.test.local';
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        method: opts.method ?? 'GET',
        path: opts.path,
        ca,
        servername: opts.servername === false ? undefined : (opts.servername ?? host.replace(/:\d+$/, '')),
        headers: { host, ...opts.headers },
        agent: false,
        checkServerIdentity: () => undefined,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body) });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

/**
 * Sends raw bytes over TLS and returns everything the gateway wrote back before closing (or
 * before `waitMs`). For request shapes no well-behaved client library would send.
 */
export function rawTlsExchange(port: number, ca: string, bytes: string | Buffer, opts: { servername?: string; waitMs?: number } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca, servername: opts.servername ?? 'api.test.local', checkServerIdentity: () => undefined }, () => {
      socket.write(bytes);
    });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(), opts.waitMs ?? 2000);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (err) => {
      clearTimeout(timer);
      if (chunks.length > 0) resolve(Buffer.concat(chunks).toString('latin1'));
      else reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
  });
}

/** Status code of the first response in a raw exchange. */
export function firstStatus(raw: string): number {
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(raw);
  return m ? Number(m[1]) : 0;
}

/** An HTTPS request through the gateway (api.test.local) whose body and response the test drives itself. */
export function openRequest(gw: TestGateway, opts: { method?: string; path: string; headers?: Record<string, string>; agent?: https.Agent }): { req: ClientRequest; response: Promise<IncomingMessage> } {
  const req = https.request({
    host: '127.0.0.1',
    port: gw.port,
    method: opts.method ?? 'GET',
    path: opts.path,
    ca: gw.ca,
    servername: 'api.test.local',
    headers: { host: 'api.test.local', ...opts.headers },
    agent: opts.agent ?? false,
    checkServerIdentity: () => undefined,
  });
  const response = new Promise<IncomingMessage>((resolve, reject) => {
    req.once('response', resolve);
    req.once('error', reject);
  });
  return { req, response };
}

/** The whole body of a response (resumed, should the test have paused it). */
export function readBody(res: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.once('end', () => resolve(Buffer.concat(chunks)));
    res.once('error', reject);
    res.resume();
  });
}
