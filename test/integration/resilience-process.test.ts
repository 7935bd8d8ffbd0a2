import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { testCertificate } from '../helpers/harness.js';
import { waitFor } from '../helpers/wait.js';
import { chattr, chattrSkipReason } from '../helpers/immutable.js';
import { ensureDevCertificate } from '../../src/tls/certificates.js';

/**
 * Faults on the gateway's own process (issue #8), on the real thing: `src/main.ts` in a child
 * process, under load. The log folder made unwritable, the certificate replaced with garbage,
 * SIGTERM with requests in flight. The process never exits on a fault, serves again by itself
 * once the fault is gone, and on SIGTERM finishes what it has started.
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const HUNG_MS = 10_000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Child {
  readonly process: ChildProcess;
  readonly port: number;
  stderr(): string;
  /** Resolves with the exit code once the process has exited. */
  readonly exited: Promise<number | null>;
}

/** `node --import tsx src/main.ts` with a minimal environment; resolves once it listens. */
async function startChild(t: TestContext, work: string, upstreamUrl: string, env: Record<string, string>): Promise<Child> {
  const config = join(work, 'gateway.yaml');
  writeFileSync(config, `routes:\n  - name: api\n    host: api.test.local\n    upstream: ${upstreamUrl}\n    auth: none\n`);
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: work,
      GATEWAY_CONFIG: config,
      GATEWAY_ENV: 'development',
      GATEWAY_DOMAIN: 'test.local',
      HTTPS_PORT: '0',
      HTTP_PORT: '0',
      ADMIN_PORT: '0',
      LISTEN_ADDRESS: '127.0.0.1',
      LOG_DIR: join(work, 'logs'),
      LOG_HASH_KEY: 'resilience-test-hash-key-0123456789',
      DATA_DIR: join(work, 'data'),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  child.stdout?.resume();
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let port = 0;
  await waitFor(() => {
    const m = /"message":"gateway listening".*?"https":(\d+)/.exec(stderr);
    if (m) port = Number(m[1]);
    return port > 0 || child.exitCode !== null;
  }, 'the gateway to listen', 30_000);
  assert.ok(port > 0, `the gateway did not start:\n${stderr.slice(-3000)}`);
  return { process: child, port, stderr: () => stderr, exited };
}

async function upstream(t: TestContext, delayMs: () => number = () => 0): Promise<{ url: string; finished: Set<string> }> {
  const finished = new Set<string>();
  const server = http.createServer((req, res) => {
    req.resume();
    setTimeout(() => {
      res.once('finish', () => finished.add(req.url ?? ''));
      res.writeHead(200, { 'content-type': 'text/plain' }).end(`ok ${req.url}`);
    }, delayMs());
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, finished };
}

interface Outcome {
  path: string;
  at: number;
  end: number;
  status?: number;
  code?: string;
  complete?: boolean;
  fingerprint?: string;
  /** Set when the connection failed; `headers` tells whether any answer had begun. */
  error?: string;
  headers: boolean;
}

function request(port: number, ca: string | undefined, path: string, agent: https.Agent | false): Promise<Outcome> {
  return new Promise((resolve) => {
    const at = Date.now();
    let headers = false;
    let settled = false;
    const done = (o: Partial<Outcome>): void => {
      if (settled) return;
      settled = true;
      resolve({ path, at, end: Date.now(), headers, ...o });
    };
    const trust = ca === undefined ? { rejectUnauthorized: false } : { ca, checkServerIdentity: () => undefined };
    const req = https.request({ host: '127.0.0.1', port, path, agent, servername: 'api.test.local', headers: { host: 'api.test.local' }, ...trust }, (res) => {
      headers = true;
      const fingerprint = (res.socket as TLSSocket).getPeerCertificate?.()?.fingerprint256;
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => {
        let code: string | undefined;
        if ((res.statusCode ?? 0) >= 400) code = (JSON.parse(body) as { error: { code: string } }).error.code;
        done({ status: res.statusCode, code, complete: res.complete, fingerprint });
      });
      res.on('error', (err) => done({ status: res.statusCode, error: err.message }));
    });
    req.setTimeout(HUNG_MS, () => req.destroy(new Error('HUNG')));
    req.on('error', (err) => done({ error: (err as NodeJS.ErrnoException).code ?? err.message }));
    req.end();
  });
}

/** Loops of requests (keep-alive, or a new TLS connection each when `fresh`) until stopped. */
function load(t: TestContext, port: number, ca: string | undefined, opts: { loops: number; fresh?: boolean; prefix: string; pauseMs?: number }): { outcomes: Outcome[]; stop(): Promise<Outcome[]> } {
  const agent = opts.fresh ? false : new https.Agent({ keepAlive: true, maxSockets: opts.loops });
  const outcomes: Outcome[] = [];
  let running = true;
  let n = 0;
  const loops = Array.from({ length: opts.loops }, async () => {
    while (running) {
      const o = await request(port, ca, `${opts.prefix}/${n++}`, agent);
      outcomes.push(o);
      // A refused connection comes back at once: do not spin on it.
      if (o.error || opts.pauseMs) await sleep(o.error ? 20 : (opts.pauseMs ?? 0));
    }
  });
  const stop = async (): Promise<Outcome[]> => {
    running = false;
    await Promise.all(loops);
    if (agent) agent.destroy();
    return outcomes;
  };
  // Stopped however the test ends, or its loops would keep the test process alive.
  t.after(stop);
  return { outcomes, stop };
}

/** chattr +i: even root cannot create, open for writing, or write to the folder's files. */
function accessPaths(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => n.startsWith('access') && n.endsWith('.log'))
    .flatMap((n) => readFileSync(join(dir, n), 'utf8').split('\n'))
    .filter((l) => l !== '')
    .map((l) => String((JSON.parse(l) as { path?: string }).path));
}

async function sigterm(child: Child, ms = 20_000): Promise<number | null> {
  child.process.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([child.exited, new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), ms)))]);
  clearTimeout(timer);
  assert.notEqual(code, 'timeout', 'the process exits after SIGTERM');
  return code as number | null;
}

test('log folder made unwritable under load: the process keeps serving, alerts, and writes every line once the folder is back', { timeout: 80_000 }, async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'crm-gw-res-logs-'));
  const logs = join(work, 'logs');
  const files = (): string[] => readdirSync(logs).map((f) => join(logs, f));
  t.after(() => {
    chattr('-i', [logs, ...files()]);
    rmSync(work, { recursive: true, force: true });
  });
  const cert = await testCertificate();
  const up = await upstream(t);
  const child = await startChild(t, work, up.url, { TLS_CERT_FILE: cert.cert, TLS_KEY_FILE: cert.key });
  const ca = readFileSync(cert.cert, 'utf8');
  const l = load(t, child.port, ca, { loops: 6, prefix: '/ld' });
  await sleep(800);
  if (!chattr('+i', [...files(), logs])) {
    await l.stop();
    t.skip(chattrSkipReason(logs));
    return;
  }
  await waitFor(() => /"alert":"log_unwritable"/.test(child.stderr()), 'the log_unwritable alert on the console', 10_000);
  await sleep(1_500);
  assert.ok(chattr('-i', [logs, ...files()]));
  await waitFor(() => /"alert":"log_recovered"/.test(child.stderr()), 'the log_recovered notice', 15_000);
  await sleep(500);
  const outcomes = await l.stop();
  for (const o of outcomes) assert.deepEqual([o.status, o.complete, o.error], [200, true, undefined], `${o.path} served throughout`);
  assert.equal(await sigterm(child), 0, child.stderr().slice(-2000));
  const logged = accessPaths(logs).filter((p) => p.startsWith('/ld/'));
  const counts = new Map<string, number>();
  for (const p of logged) counts.set(p, (counts.get(p) ?? 0) + 1);
  const missing = outcomes.filter((o) => counts.get(o.path) !== 1);
  assert.deepEqual(missing.map((o) => `${o.path}×${counts.get(o.path) ?? 0}`), [], 'every request logged exactly once');
  t.diagnostic(`${outcomes.length} requests served while the folder was refused and after; each logged once`);
});

test('AUDIT_FAIL_CLOSED=true: 503 while the log folder is unwritable, served again by itself once it is back', { timeout: 80_000 }, async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'crm-gw-res-logs-'));
  const logs = join(work, 'logs');
  const files = (): string[] => readdirSync(logs).map((f) => join(logs, f));
  t.after(() => {
    chattr('-i', [logs, ...files()]);
    rmSync(work, { recursive: true, force: true });
  });
  const cert = await testCertificate();
  const up = await upstream(t);
  const child = await startChild(t, work, up.url, { TLS_CERT_FILE: cert.cert, TLS_KEY_FILE: cert.key, AUDIT_FAIL_CLOSED: 'true' });
  const ca = readFileSync(cert.cert, 'utf8');
  const l = load(t, child.port, ca, { loops: 4, prefix: '/fc', pauseMs: 10 });
  await sleep(500);
  if (!chattr('+i', [...files(), logs])) {
    await l.stop();
    t.skip(chattrSkipReason(logs));
    return;
  }
  const faultAt = Date.now();
  await waitFor(() => l.outcomes.some((o) => o.status === 503), 'requests refused while nothing can be recorded', 10_000);
  assert.ok(chattr('-i', [logs, ...files()]));
  const clearedAt = Date.now();
  await waitFor(() => l.outcomes.filter((o) => o.at > clearedAt).slice(-8).length === 8 && l.outcomes.filter((o) => o.at > clearedAt).slice(-8).every((o) => o.status === 200), 'serving again', 20_000);
  const outcomes = await l.stop();
  for (const o of outcomes) {
    assert.equal(o.error, undefined, `${o.path}: ${o.error}`);
    if (o.status === 200) continue;
    assert.deepEqual([o.status, o.code], [503, 'AUDIT_UNAVAILABLE']);
    assert.ok(o.at >= faultAt - 50, `${o.path} refused only during the fault`);
  }
  assert.equal(child.process.exitCode, null, 'still running');
  assert.equal(await sigterm(child), 0);
});

test('certificate files replaced with garbage under load: the old pair keeps serving new handshakes; a good pair is taken by itself', { timeout: 80_000 }, async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'crm-gw-res-cert-'));
  t.after(() => rmSync(work, { recursive: true, force: true }));
  const original = await testCertificate();
  const certFile = join(work, 'gateway.crt');
  const keyFile = join(work, 'gateway.key');
  copyFileSync(original.cert, certFile);
  copyFileSync(original.key, keyFile);
  // The good pair the operator puts in place later.
  const next = mkdtempSync(join(tmpdir(), 'crm-gw-res-cert2-'));
  t.after(() => rmSync(next, { recursive: true, force: true }));
  await ensureDevCertificate(join(next, 'n.crt'), join(next, 'n.key'), 'test.local');
  // Not verified here (both are self-signed with the same subject, which OpenSSL's trust store
  // cannot tell apart): what is checked is which certificate the server presents.
  const ca = undefined;
  const up = await upstream(t);
  const child = await startChild(t, work, up.url, { TLS_CERT_FILE: certFile, TLS_KEY_FILE: keyFile });
  const fresh = load(t, child.port, ca, { loops: 3, fresh: true, prefix: '/hs' });
  const kept = load(t, child.port, ca, { loops: 2, prefix: '/ka' });
  await sleep(500);
  const before = fresh.outcomes.at(-1)?.fingerprint;
  assert.ok(before);

  // In place, as a botched copy would leave them; then a SIGHUP on top.
  writeFileSync(certFile, '-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n');
  writeFileSync(keyFile, 'not a key at all');
  await waitFor(() => /certificate reload failed/.test(child.stderr()), 'the failed reload to be reported', 10_000);
  child.process.kill('SIGHUP');
  await sleep(1_500);
  const garbageUntil = Date.now();

  // The operator puts a good new pair in place, by rename (as renewal tools do).
  renameSync(join(next, 'n.key'), keyFile);
  renameSync(join(next, 'n.crt'), certFile);
  await waitFor(() => fresh.outcomes.slice(-3).every((o) => o.fingerprint !== undefined && o.fingerprint !== before), 'new handshakes to get the new certificate', 10_000);
  const all = [...(await fresh.stop()), ...(await kept.stop())];
  for (const o of all) assert.deepEqual([o.status, o.complete, o.error], [200, true, undefined], `${o.path} served throughout`);
  const handshakes = all.filter((o) => o.path.startsWith('/hs/'));
  assert.ok(handshakes.filter((o) => o.at < garbageUntil).every((o) => o.fingerprint === before), 'while the files held garbage, the old pair served every handshake');
  assert.equal(child.process.exitCode, null, 'still running');
  assert.equal(await sigterm(child), 0);
  t.diagnostic(`${handshakes.length} new TLS handshakes and ${all.length - handshakes.length} keep-alive requests, all answered`);
});

test('SIGTERM under load: every request in flight completes, the rest get a clean refusal, none hangs, exit 0', { timeout: 80_000 }, async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'crm-gw-res-term-'));
  t.after(() => rmSync(work, { recursive: true, force: true }));
  const cert = await testCertificate();
  // Slow answers, so that many requests are in flight when the signal comes.
  const up = await upstream(t, () => 200 + Math.floor(Math.random() * 600));
  const child = await startChild(t, work, up.url, { TLS_CERT_FILE: cert.cert, TLS_KEY_FILE: cert.key });
  const ca = readFileSync(cert.cert, 'utf8');
  const keepAlive = load(t, child.port, ca, { loops: 16, prefix: '/ka' });
  const fresh = load(t, child.port, ca, { loops: 4, fresh: true, prefix: '/nc' });
  await sleep(1_500);
  const termAt = Date.now();
  child.process.kill('SIGTERM');
  await sleep(2_500);
  const all = [...(await keepAlive.stop()), ...(await fresh.stop())];
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([child.exited, new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), 20_000)))]);
  clearTimeout(timer);
  assert.equal(code, 0, `exit code after SIGTERM:\n${child.stderr().slice(-2000)}`);

  // Sent well before the signal (a request written the very instant an idle keep-alive
  // connection is closed meets HTTP/1.1's own race, which clients retry) and still unanswered.
  const inFlight = all.filter((o) => o.at < termAt - 100 && o.end > termAt);
  assert.ok(inFlight.length >= 8, `requests were in flight at SIGTERM (${inFlight.length})`);
  // A clean refusal: the connection is refused or closed before any answer began.
  const CLEAN = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE']);
  for (const o of all) {
    assert.notEqual(o.error, 'HUNG', `${o.path} hung`);
    if (o.status === 200) assert.equal(o.complete, true, `${o.path}: a started answer is finished`);
    else if (o.status !== undefined) assert.deepEqual([o.status, o.code], [503, 'SHUTTING_DOWN'], o.path);
    else assert.ok(!o.headers && CLEAN.has(String(o.error)), `${o.path}: ${o.error} is not a clean refusal`);
  }
  // Whatever reached the upstream was answered to the client.
  const byPath = new Map(all.map((o) => [o.path, o]));
  for (const path of up.finished) assert.equal(byPath.get(path)?.status ?? 200, 200, `${path}: the upstream answered, so must the gateway`);
  for (const o of inFlight) assert.equal(o.status, 200, `${o.path} was in flight at SIGTERM and completes`);
  t.diagnostic(`${all.length} requests, ${inFlight.length} in flight at SIGTERM (all completed), ${all.filter((o) => o.error).length} refused cleanly afterwards`);
});
