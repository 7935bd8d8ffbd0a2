import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket, type ClientOptions } from 'ws';
import { startTestGateway, testCertificate, type TestGateway } from '../helpers/harness.js';
import { freePort } from '../helpers/ports.js';
import { notBuilt } from '../helpers/built.js';

/** Every wait in this file is bounded by this, so a regression fails instead of hanging. */
const WAIT_MS = 5_000;
/** A child gateway process gets longer: it compiles nothing, but it loads every module. */
const PROCESS_WAIT_MS = 15_000;
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = join(ROOT, 'dist/main.js');
const BIN = join(ROOT, 'bin/crm-gateway.js');
const NOT_BUILT = notBuilt('dist/main.js');

const ROUTES = `
  - name: api
    host: api.test.local
    upstream: UPSTREAM
    auth: none
`;

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function signal<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

async function gateway(t: TestContext, routes = ROUTES, env: Record<string, string> = {}, extraYaml = 'server: { shutdownTimeout: 1s }'): Promise<TestGateway> {
  const gw = await startTestGateway(routes, env, extraYaml);
  t.after(() => gw.close());
  return gw;
}

interface PlainResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A plain-HTTP request (admin listener, HTTP listener). */
function httpGet(port: number, path: string, host?: string): Promise<PlainResponse> {
  return new Promise((resolvePromise, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, headers: host ? { host } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('end', () => resolvePromise({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.once('error', reject);
  });
}

/** An upstream that calls `onRequest` and never answers by itself; its sockets are closed after the test. */
async function manualUpstream(t: TestContext, onRequest: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<string> {
  const server = http.createServer(onRequest);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function routeTo(upstream: string): string {
  return `
  - name: api
    host: api.test.local
    upstream: ${upstream}
    auth: none
`;
}

function tryConnect(port: number): Promise<'connected' | string> {
  return new Promise((resolvePromise) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolvePromise('connected');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolvePromise(err.code ?? err.message));
  });
}

// ---------------------------------------------------------------------------------------------
// Admin listener

test('admin /healthz answers 200 and /readyz 200 while every upstream accepts connections', async (t) => {
  const gw = await gateway(t);
  const health = await httpGet(gw.running.ports.admin, '/healthz');
  assert.equal(health.status, 200);
  assert.equal((JSON.parse(health.body) as { status: string }).status, 'ok');
  const ready = await httpGet(gw.running.ports.admin, '/readyz');
  assert.equal(ready.status, 200, ready.body);
  const body = JSON.parse(ready.body) as { status: string; checks: Record<string, { ok: boolean }>; upstreams: Record<string, { ok: boolean; upstream: string }> };
  assert.equal(body.status, 'ready');
  assert.equal(body.checks.listener?.ok, true);
  assert.deepEqual(
    Object.values(body.upstreams).map((u) => [u.upstream, u.ok]),
    [[gw.upstream.url, true]],
  );
});

// Issue 18, item 10: a load balancer must not pull the whole gateway because one application restarts.
test('admin /readyz answers 200 with one upstream down, and reports that route down beside it', async (t) => {
  const down = `http://127.0.0.1:${await freePort()}`;
  const gw = await gateway(
    t,
    `${ROUTES}
  - name: broken
    host: broken.test.local
    upstream: ${down}
    auth: none
`,
  );
  const ready = await httpGet(gw.running.ports.admin, '/readyz');
  assert.equal(ready.status, 200, ready.body);
  const body = JSON.parse(ready.body) as { status: string; upstreams: Record<string, { ok: boolean; upstream: string; error?: string }> };
  assert.equal(body.status, 'ready');
  assert.equal(body.upstreams.broken?.ok, false);
  assert.equal(body.upstreams.broken?.upstream, down);
  assert.equal(body.upstreams.broken?.error, 'ECONNREFUSED');
  const others = Object.entries(body.upstreams).filter(([name]) => name !== 'broken');
  assert.ok(others.length > 0 && others.every(([, u]) => u.ok && u.upstream === gw.upstream.url), ready.body);
});

test('admin /readyz answers 503 when a store the gateway needs is down (REDIS_URL refusing connections)', async (t) => {
  const gw = await gateway(t, ROUTES, { REDIS_URL: `redis://127.0.0.1:${await freePort()}` });
  const ready = await httpGet(gw.running.ports.admin, '/readyz');
  assert.equal(ready.status, 503, ready.body);
  const body = JSON.parse(ready.body) as { status: string; checks: Record<string, { ok: boolean }>; upstreams: Record<string, { ok: boolean }> };
  assert.equal(body.status, 'not ready');
  assert.equal(body.checks.redis?.ok, false);
  assert.equal(body.upstreams.api?.ok, true, 'the upstream is fine: the store is what is missing');
});

test('the admin listener is bound to 127.0.0.1 only, and /healthz on the public port is an ordinary routed request', async (t) => {
  const gw = await gateway(t);
  assert.equal((gw.running.adminServer.address() as AddressInfo).address, '127.0.0.1');
  // Unknown host on the public port: no route, never the admin answer.
  const unknown = await gw.request({ path: '/healthz', host: 'nowhere.test.local' });
  assert.equal(unknown.status, 404);
  assert.equal((unknown.json() as { error: { code: string } }).error.code, 'ROUTE_NOT_FOUND');
  assert.doesNotMatch(unknown.body, /uptimeSeconds|"pid"/);
  // Known host: proxied to the upstream like any other path.
  const routed = await gw.request({ path: '/healthz' });
  assert.equal(routed.status, 200);
  assert.deepEqual(
    gw.upstream.seen.map((s) => s.url),
    ['/healthz'],
  );
  assert.doesNotMatch(routed.body, /uptimeSeconds/);
  for (const path of ['/readyz', '/metrics']) {
    const r = await gw.request({ path, host: 'nowhere.test.local' });
    assert.equal(r.status, 404, path);
  }
});

// ---------------------------------------------------------------------------------------------
// Plain-HTTP listener

test('the HTTP listener answers 308 to https with the same path and query, on the HTTPS listener port', async (t) => {
  const gw = await gateway(t);
  const res = await httpGet(gw.running.ports.http, '/a/b?x=1&y=%20z', `api.test.local:${gw.running.ports.http}`);
  assert.equal(res.status, 308);
  assert.equal(res.headers.location, `https://api.test.local:${gw.running.ports.https}/a/b?x=1&y=%20z`);
  assert.equal(gw.upstream.seen.length, 0);
});

test('the HTTP listener gives no redirect for a Host the gateway does not serve (not an open redirect)', async (t) => {
  const gw = await gateway(t);
  for (const host of ['evil.example', 'evil.example:80', 'api.test.local.evil.example']) {
    const res = await httpGet(gw.running.ports.http, '/x', host);
    assert.equal(res.status, 404, host);
    assert.equal(res.headers.location, undefined, host);
  }
  assert.equal(gw.upstream.seen.length, 0);
});

test('the HTTP listener logs every request: an access line per redirect and refusal, a security event per refusal', async (t) => {
  const gw = await gateway(t);
  const ok = await httpGet(gw.running.ports.http, '/a?token=s3cret', `api.test.local:${gw.running.ports.http}`);
  const refused = await httpGet(gw.running.ports.http, '/x', 'evil.example');
  const okId = ok.headers['x-request-id'];
  const refusedId = refused.headers['x-request-id'];
  assert.ok(typeof okId === 'string' && typeof refusedId === 'string', 'both answers carry a request id');
  const okLine = gw.log.accessEntries.find((e) => e.requestId === okId);
  assert.equal(okLine?.status, 308);
  assert.equal(okLine?.listener, 'http');
  assert.equal(okLine?.clientIp, '127.0.0.1');
  const refusedLine = gw.log.accessEntries.find((e) => e.requestId === refusedId);
  assert.equal(refusedLine?.status, 404);
  assert.equal(refusedLine?.code, 'ROUTE_NOT_FOUND');
  assert.ok(gw.log.securityEvents.some((e) => e.event === 'request.denied' && e.requestId === refusedId && e.code === 'ROUTE_NOT_FOUND'));
  assert.ok(!gw.log.securityEvents.some((e) => e.requestId === okId), 'a redirect is not a denial');
});

test('with FORCE_HTTPS=false the HTTP listener proxies instead of redirecting', async (t) => {
  const gw = await gateway(t, ROUTES, { FORCE_HTTPS: 'false' });
  const res = await httpGet(gw.running.ports.http, '/plain?q=1', 'api.test.local');
  assert.equal(res.status, 200);
  assert.equal(res.headers.location, undefined);
  assert.equal(gw.upstream.seen.length, 1);
  assert.equal(gw.upstream.seen[0]?.url, '/plain?q=1');
  assert.equal(gw.upstream.seen[0]?.headers['x-forwarded-proto'], 'http');
  // No HSTS over plain HTTP.
  assert.equal(res.headers['strict-transport-security'], undefined);
});

// ---------------------------------------------------------------------------------------------
// Graceful shutdown

test('shutdown lets an in-flight request finish with 200, refuses new connections, and resolves', async (t) => {
  const arrived = signal();
  const upstream = await manualUpstream(t, (_req, res) => {
    arrived.resolve();
    setTimeout(() => res.end('slow answer'), 800);
  });
  const gw = await gateway(t, routeTo(upstream), {}, 'server: { shutdownTimeout: 5s }');
  const inFlight = gw.request({ path: '/slow' });
  await within(arrived.promise, WAIT_MS, 'the request to reach the upstream');

  let resolved = false;
  const stopping = gw.running.shutdown().then(() => {
    resolved = true;
  });
  assert.equal(await tryConnect(gw.port), 'ECONNREFUSED');
  assert.equal(await tryConnect(gw.running.ports.http), 'ECONNREFUSED');
  const ready = await httpGet(gw.running.ports.admin, '/readyz');
  assert.equal(ready.status, 503);
  assert.equal((JSON.parse(ready.body) as { status: string }).status, 'draining');

  const res = await within(inFlight, WAIT_MS, 'the in-flight request');
  assert.equal(res.status, 200);
  assert.equal(res.body, 'slow answer');
  assert.equal(res.headers.connection, 'close');
  await within(stopping, WAIT_MS, 'shutdown to resolve');
  assert.equal(resolved, true);
});

test('shutdown resolves in bounded time when an upstream never answers (server.shutdownTimeout)', async (t) => {
  const arrived = signal();
  const upstream = await manualUpstream(t, () => arrived.resolve());
  const gw = await gateway(t, routeTo(upstream), {}, 'server: { shutdownTimeout: 500ms }');
  const inFlight = gw.request({ path: '/never' }).then(
    (r) => `status ${r.status}`,
    (err: NodeJS.ErrnoException) => err.code ?? err.message,
  );
  await within(arrived.promise, WAIT_MS, 'the request to reach the upstream');
  const started = performance.now();
  await within(gw.running.shutdown(), WAIT_MS, 'shutdown to resolve after the shutdown timeout');
  const took = performance.now() - started;
  assert.ok(took >= 400, `shutdown waited ${Math.round(took)} ms: it should give in-flight requests the timeout`);
  // The client that was waiting is cut off rather than left hanging.
  assert.match(await within(inFlight, WAIT_MS, 'the cut-off client'), /ECONNRESET|socket hang up|status 50\d/);
  assert.equal(gw.log.appMessages.some((m) => String(m.message).includes('shutdown timeout')), true);
});

test('shutdown resolves in bounded time with an open websocket and a client stuck before its TLS handshake', async (t) => {
  const gw = await gateway(t, ROUTES, {}, 'server: { shutdownTimeout: 500ms }');
  // `servername` goes through to tls.connect (SNI must match Host); ws's types leave it out.
  const wsOptions: ClientOptions & { servername: string } = { ca: gw.ca, servername: 'api.test.local', headers: { host: 'api.test.local' }, handshakeTimeout: WAIT_MS };
  const ws = new WebSocket(`wss://127.0.0.1:${gw.port}/live`, wsOptions);
  t.after(() => ws.terminate());
  await within(
    new Promise((r, j) => {
      ws.once('open', r);
      ws.once('error', j);
    }),
    WAIT_MS,
    'the websocket to open',
  );
  const wsClosed = new Promise((r) => ws.once('close', r));
  // A TCP client that never starts TLS: outside the HTTP server's connection tracking too.
  const silent = net.connect({ host: '127.0.0.1', port: gw.port });
  t.after(() => silent.destroy());
  await within(new Promise((r) => silent.once('connect', r)), WAIT_MS, 'the silent TCP connection');
  const silentClosed = new Promise((r) => silent.once('close', r));

  await within(gw.running.shutdown(), WAIT_MS, 'shutdown to resolve with a websocket and a silent connection open');
  await within(wsClosed, WAIT_MS, 'the websocket to be closed by shutdown');
  await within(silentClosed, WAIT_MS, 'the silent connection to be closed by shutdown');
});

// ---------------------------------------------------------------------------------------------
// Process level (the built gateway as operators run it)

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

interface Child {
  /** Resolves with the first stderr text matching `pattern`. */
  waitFor(pattern: RegExp, ms: number): Promise<string>;
  kill(signal: NodeJS.Signals): void;
  exited: Promise<Exit>;
}

/** A temporary directory (config, logs, data) removed after the test. */
function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'crm-gw-life-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Runs `node <args>` in `cwd` with only the given environment (plus PATH); killed after the test. */
function run(t: TestContext, args: string[], env: Record<string, string>, cwd: string): Child {
  const child = spawn(process.execPath, args, { cwd, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const waiters: { pattern: RegExp; resolve: (s: string) => void }[] = [];
  child.stdout.on('data', (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
    for (const w of [...waiters]) {
      const m = w.pattern.exec(stderr);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m[0]);
      }
    }
  });
  const exited = new Promise<Exit>((r) => child.once('exit', (code, sig) => setImmediate(() => r({ code, signal: sig, stdout, stderr }))));
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return {
    waitFor(pattern, ms) {
      const m = pattern.exec(stderr);
      if (m) return Promise.resolve(m[0]);
      const found = new Promise<string>((r) => waiters.push({ pattern, resolve: r }));
      const early = exited.then((e) => {
        throw new Error(`the process exited (code ${e.code}) before printing ${pattern}:\n${e.stderr}`);
      });
      return within(Promise.race([found, early]), ms, `${pattern} on stderr (so far: ${stderr.slice(-2000)})`);
    },
    kill: (sig) => child.kill(sig),
    exited,
  };
}

async function gatewayEnv(dir: string, extra: Record<string, string> = {}): Promise<Record<string, string>> {
  const cert = await testCertificate();
  const [https_, http_, admin] = [await freePort(), await freePort(), await freePort()];
  return {
    HTTPS_PORT: String(https_),
    HTTP_PORT: String(http_),
    ADMIN_PORT: String(admin),
    LISTEN_ADDRESS: '127.0.0.1',
    GATEWAY_DOMAIN: 'test.local',
    TLS_CERT_FILE: cert.cert,
    TLS_KEY_FILE: cert.key,
    LOG_DIR: join(dir, 'logs'),
    DATA_DIR: join(dir, 'data'),
    ...extra,
  };
}

function writeConfig(dir: string, yaml: string): string {
  const file = join(dir, 'gateway.yaml');
  writeFileSync(file, yaml);
  return file;
}

const VALID_YAML = `
routes:
  - name: api
    host: api.\${GATEWAY_DOMAIN}
    upstream: http://127.0.0.1:9
    auth: none
`;

const INVALID_YAML = `
listen:
  httpsPort: 99999
  bogusKey: 1
routes:
  - name: api
    host: api.\${CRM_GW_TEST_UNSET_VAR}
    upstream: http://127.0.0.1:9
    auth: none
`;

/** The three problems of INVALID_YAML, each with its path. */
function assertInvalidConfigReport(stderr: string): void {
  assert.match(stderr, /listen\.httpsPort[^\n]*:[^\n]*(65535|too big|less than|<=)/i, `bad port not reported with its path:\n${stderr}`);
  assert.match(stderr, /listen[^\n]*:[^\n]*bogusKey/, `unknown key not reported with its path:\n${stderr}`);
  assert.match(stderr, /routes\[0\]\.host[^\n]*:[^\n]*CRM_GW_TEST_UNSET_VAR[^\n]*not set/, `missing \${VAR} not reported with its path:\n${stderr}`);
}

test('process: node dist/main.js starts, logs "gateway listening", serves HTTPS, and exits 0 on SIGTERM', { skip: NOT_BUILT }, async (t) => {
  const dir = tempDir(t);
  const env = await gatewayEnv(dir, { GATEWAY_CONFIG: writeConfig(dir, VALID_YAML) });
  const child = run(t, [MAIN], env, dir);
  await child.waitFor(/gateway listening/, PROCESS_WAIT_MS);
  const cert = await testCertificate();
  const status = await new Promise<number>((resolvePromise, reject) => {
    const req = https.get(
      {
        host: '127.0.0.1',
        port: Number(env.HTTPS_PORT),
        path: '/nowhere',
        servername: 'nohost.test.local',
        headers: { host: 'nohost.test.local' },
        ca: readFileSync(cert.cert),
        checkServerIdentity: () => undefined,
        agent: false,
      },
      (res) => {
        res.resume();
        resolvePromise(res.statusCode ?? 0);
      },
    );
    req.once('error', reject);
  });
  assert.equal(status, 404);
  child.kill('SIGTERM');
  const exit = await within(child.exited, PROCESS_WAIT_MS, 'the process to exit after SIGTERM');
  assert.equal(exit.code, 0, `exit code ${exit.code}, signal ${exit.signal}:\n${exit.stderr}`);
});

test('process: an invalid config exits 1 and lists every problem with its path', { skip: NOT_BUILT }, async (t) => {
  const dir = tempDir(t);
  const env = { GATEWAY_CONFIG: writeConfig(dir, INVALID_YAML), LOG_DIR: join(dir, 'logs'), DATA_DIR: join(dir, 'data') };
  const exit = await within(run(t, [MAIN], env, dir).exited, PROCESS_WAIT_MS, 'the process to exit');
  assert.equal(exit.code, 1, exit.stderr);
  assertInvalidConfigReport(exit.stderr);
});

const INSECURE = { FORCE_HTTPS: 'false', CORS_ORIGINS: '*', TRUSTED_PROXIES: '0.0.0.0/0' };
const INSECURE_FINDINGS = ['force-https-off', 'certificate-self-signed', 'cors-wildcard', 'trusted-proxies-everything'];

test('process: production refuses to start with a self-signed cert, FORCE_HTTPS=false, CORS *, TRUSTED_PROXIES 0.0.0.0/0', { skip: NOT_BUILT }, async (t) => {
  const dir = tempDir(t);
  const env = await gatewayEnv(dir, { GATEWAY_CONFIG: writeConfig(dir, VALID_YAML), GATEWAY_ENV: 'production', ...INSECURE });
  const exit = await within(run(t, [MAIN], env, dir).exited, PROCESS_WAIT_MS, 'the process to exit');
  assert.equal(exit.code, 1, exit.stderr);
  assert.match(exit.stderr, /refusing to start in production/);
  for (const id of INSECURE_FINDINGS) assert.match(exit.stderr, new RegExp(`\\[${id}\\]`), `${id} not named:\n${exit.stderr}`);
  assert.doesNotMatch(exit.stderr, /gateway listening/);
});

test('process: development starts with the same settings and prints a WARNING line for each', { skip: NOT_BUILT }, async (t) => {
  const dir = tempDir(t);
  const env = await gatewayEnv(dir, { GATEWAY_CONFIG: writeConfig(dir, VALID_YAML), GATEWAY_ENV: 'development', ...INSECURE });
  const child = run(t, [MAIN], env, dir);
  const stderr = await child.waitFor(/[^]*gateway listening/, PROCESS_WAIT_MS);
  const warnings = stderr.split('\n').filter((l) => l.startsWith('WARNING: '));
  for (const id of INSECURE_FINDINGS) assert.ok(warnings.some((l) => l.includes(`(${id};`)), `no WARNING line for ${id}:\n${stderr}`);
  child.kill('SIGTERM');
  const exit = await within(child.exited, PROCESS_WAIT_MS, 'the process to exit after SIGTERM');
  assert.equal(exit.code, 0, `exit code ${exit.code}, signal ${exit.signal}:\n${exit.stderr}`);
});

test('process: `crm-gateway config check <file>` exits 0 for a valid config and 1 (listing the problems) for an invalid one', { skip: NOT_BUILT }, async (t) => {
  const dir = tempDir(t);
  const cert = await testCertificate();
  const env = { GATEWAY_DOMAIN: 'test.local', TLS_CERT_FILE: cert.cert, TLS_KEY_FILE: cert.key, LOG_DIR: join(dir, 'logs'), DATA_DIR: join(dir, 'data') };
  const good = writeConfig(dir, VALID_YAML);
  const ok = await within(run(t, [BIN, 'config', 'check', good], env, dir).exited, PROCESS_WAIT_MS, 'config check (valid)');
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /config OK: 1 routes \(api\)/);

  const badFile = join(dir, 'bad.yaml');
  writeFileSync(badFile, INVALID_YAML);
  const bad = await within(run(t, [BIN, 'config', 'check', badFile], env, dir).exited, PROCESS_WAIT_MS, 'config check (invalid)');
  assert.equal(bad.code, 1, bad.stderr);
  assertInvalidConfigReport(bad.stderr);
});
