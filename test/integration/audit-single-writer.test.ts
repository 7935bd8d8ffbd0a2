import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { testCertificate, testEnv } from '../helpers/harness.js';
import { waitFor } from '../helpers/wait.js';
import { lockFilePath, lockLogDir } from '../../src/audit/writer/writer-lock.js';
import { freePort } from '../helpers/ports.js';

/**
 * Issue 12, item 8: a second gateway started on the same LOG_DIR (here while the first drained
 * after SIGTERM) wrote seq 6–7 of the chains the first one then wrote again, and `audit verify`
 * reported tampering that never happened. One writer per chain: the ports are bound before the
 * log is opened, and the log folder is locked. Real processes (`src/main.ts` under tsx).
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const START_MS = 30_000;
const API_SECRET_KEY = 'ab'.repeat(32);

interface Proc {
  readonly process: ChildProcess;
  stderr(): string;
  stdout(): string;
  readonly exited: Promise<number | null>;
}

function spawnNode(t: TestContext, args: string[], env: Record<string, string>): Proc {
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: ROOT, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  child.stdout?.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { process: child, stderr: () => stderr, stdout: () => stdout, exited };
}

async function ports(): Promise<Record<string, string>> {
  return { HTTPS_PORT: String(await freePort()), HTTP_PORT: String(await freePort()), ADMIN_PORT: String(await freePort()) };
}

/** One work folder (config, logs, data) and the environment every process of a test shares. */
async function workFolder(t: TestContext, upstreamUrl: string): Promise<{ dir: string; logs: string; env: Record<string, string> }> {
  const dir = mkdtempSync(join(tmpdir(), 'crm-gw-writer-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'gateway.yaml');
  writeFileSync(config, `server: { shutdownTimeout: 20s }\nroutes:\n  - name: api\n    host: api.test.local\n    upstream: ${upstreamUrl}\n    auth: none\n`);
  const logs = join(dir, 'logs');
  const env = {
    ...testEnv(await testCertificate()),
    HOME: dir,
    GATEWAY_CONFIG: config,
    GATEWAY_ENV: 'development',
    LOG_DIR: logs,
    LOG_HASH_KEY: 'single-writer-test-hash-key-0123456789',
    DATA_DIR: join(dir, 'data'),
    API_SECRET_KEY,
  };
  return { dir, logs, env };
}

/** The exit code of a process that must stop by itself: one that serves instead fails the test, not hangs it. */
async function refused(p: Proc): Promise<number | null> {
  await waitFor(() => p.process.exitCode !== null || /"message":"gateway listening"/.test(p.stderr()), 'the process to exit', START_MS);
  assert.notEqual(p.process.exitCode, null, `it started instead of refusing:\n${p.stderr().slice(-2000)}`);
  return p.exited;
}

function startGateway(t: TestContext, env: Record<string, string>): Proc {
  return spawnNode(t, ['src/main.ts'], env);
}

async function listening(p: Proc): Promise<void> {
  await waitFor(() => /"message":"gateway listening"/.test(p.stderr()) || p.process.exitCode !== null, 'the gateway to listen', START_MS);
  assert.ok(p.process.exitCode === null, `the gateway did not start:\n${p.stderr().slice(-3000)}`);
}

/** The CLI as `npx crm-gateway` runs it, from the sources. */
function cli(t: TestContext, args: string[], env: Record<string, string>): Proc {
  const code = `import { run } from ${JSON.stringify(join(ROOT, 'src/cli/main.ts'))}; process.exitCode = await run(${JSON.stringify(args)});`;
  return spawnNode(t, ['--input-type=module', '-e', code], env);
}

/** Every file of the log folder with its content: what a refused process must leave as it was. */
function snapshot(logs: string): Map<string, string> {
  return new Map(readdirSync(logs).map((f) => [f, readFileSync(join(logs, f), 'latin1')]));
}

function chainLines(logs: string, prefix: string): Record<string, unknown>[] {
  return readdirSync(logs)
    .filter((f) => f.startsWith(`${prefix}-`) && f.endsWith('.log'))
    .flatMap((f) => readFileSync(join(logs, f), 'utf8').split('\n').filter(Boolean))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function verify(t: TestContext, env: Record<string, string>, logs: string): Promise<{ code: number | null; out: string }> {
  const v = cli(t, ['audit', 'verify', logs], env);
  const code = await v.exited;
  return { code, out: `${v.stdout()}${v.stderr()}` };
}

/** An upstream that answers only when told: a request held there keeps a gateway draining. */
async function heldUpstream(t: TestContext): Promise<{ url: string; arrived: Promise<void>; answer(): void }> {
  let arrived!: () => void;
  const arrival = new Promise<void>((r) => (arrived = r));
  const waiting: http.ServerResponse[] = [];
  const server = http.createServer((req, res) => {
    req.resume();
    waiting.push(res);
    arrived();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    arrived: arrival,
    answer: () => {
      for (const res of waiting.splice(0)) res.writeHead(200, { 'content-type': 'text/plain' }).end('done');
    },
  };
}

function get(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, path, servername: 'api.test.local', headers: { host: 'api.test.local' }, rejectUnauthorized: false, agent: false }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode ?? 0));
    });
    req.once('error', reject);
  });
}

test('regression: a second gateway on the same ports and LOG_DIR exits 1 with one clear line and writes nothing; on free ports the folder lock refuses it', { timeout: 90_000 }, async (t) => {
  const up = await heldUpstream(t);
  const { logs, env } = await workFolder(t, up.url);
  const first = startGateway(t, { ...env, ...(await ports()) });
  await listening(first);
  const used = /"https":(\d+),"http":(\d+),"admin":"127\.0\.0\.1:(\d+)"/.exec(first.stderr());
  assert.ok(used);
  const samePorts = { HTTPS_PORT: used[1] as string, HTTP_PORT: used[2] as string, ADMIN_PORT: used[3] as string };
  // Once its heads are recorded (every 5 s) an idle gateway leaves the folder as it is.
  await waitFor(() => existsSync(join(logs, '.chain-heads.json')), 'the chain heads to be recorded', 15_000);
  const before = snapshot(logs);

  const second = startGateway(t, { ...env, ...samePorts });
  assert.equal(await refused(second), 1);
  const failure = second.stderr().split('\n').filter((l) => l.startsWith('crm-gateway: '));
  assert.equal(failure.length, 1, second.stderr());
  assert.match(failure[0] as string, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${used[1]} \\(HTTPS_PORT\\): the address is in use`));
  assert.doesNotMatch(second.stderr(), /\n\s+at /, 'no stack trace');
  assert.deepEqual(snapshot(logs), before, 'the second process changed nothing in the log folder');

  const third = startGateway(t, { ...env, ...(await ports()) });
  assert.equal(await refused(third), 1);
  const refusal = third.stderr().split('\n').filter((l) => l.startsWith('crm-gateway: '));
  assert.equal(refusal.length, 1, third.stderr());
  assert.match(refusal[0] as string, new RegExp(`the audit logs in ${logs.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} are being written by another process: pid ${first.process.pid} on host `));
  assert.match(refusal[0] as string, /\.gateway\.lock.*delete/);
  assert.deepEqual(snapshot(logs), before, 'the third process changed nothing in the log folder');
  assert.doesNotMatch(third.stderr(), /audit logs open|gateway listening/);

  first.process.kill('SIGTERM');
  assert.equal(await first.exited, 0, first.stderr().slice(-2000));
  assert.equal(existsSync(lockFilePath(logs, 'gateway')), false, 'released on a clean shutdown');
  const v = await verify(t, env, logs);
  assert.equal(v.code, 0, v.out);
});

/** Each chain's seq runs 1, 2, 3, … with no number twice: one writer wrote it. */
function assertOneWriter(logs: string, chain: string): number {
  const seqs = chainLines(logs, chain).map((l) => l.seq as number);
  assert.deepEqual(
    seqs,
    seqs.map((_, i) => i + 1),
    `${chain}: ${seqs.join(',')}`,
  );
  return seqs.length;
}

test('regression: a gateway started on the same ports and LOG_DIR while the first drains after SIGTERM is refused (EADDRINUSE, or the lock on free ports); once the first has exited a new one starts, and audit verify passes', { timeout: 120_000 }, async (t) => {
  const up = await heldUpstream(t);
  const { logs, env } = await workFolder(t, up.url);
  const samePorts = await ports();
  const first = startGateway(t, { ...env, ...samePorts });
  await listening(first);
  // A request held at the upstream keeps the first gateway draining after SIGTERM.
  const inFlight = get(Number(samePorts.HTTPS_PORT), '/slow');
  inFlight.catch(() => undefined);
  await up.arrived;
  first.process.kill('SIGTERM');
  await waitFor(() => /"message":"shutting down"/.test(first.stderr()), 'the first gateway to start draining', 10_000);

  // The same ports: its admin listener is still open while it drains, so this one stops there.
  const samePortsStart = startGateway(t, { ...env, ...samePorts });
  assert.equal(await refused(samePortsStart), 1, samePortsStart.stderr());
  assert.match(samePortsStart.stderr(), /crm-gateway: error: cannot listen on 127\.0\.0\.1:\d+ \((HTTPS|HTTP|ADMIN)_PORT\): the address is in use/);
  // Free ports: the lock on the folder stops it.
  const second = startGateway(t, { ...env, ...(await ports()) });
  assert.equal(await refused(second), 1, second.stderr());
  assert.match(second.stderr(), new RegExp(`crm-gateway: error: the audit logs in \\S+ are being written by another process: pid ${first.process.pid} `));
  assert.match(second.stderr(), /drains for up to server\.shutdownTimeout after SIGTERM/);
  assert.equal(first.process.exitCode, null, 'the first one is still draining');

  up.answer();
  assert.equal(await inFlight, 200, 'the request in flight completed');
  assert.equal(await first.exited, 0, first.stderr().slice(-2000));

  const third = startGateway(t, { ...env, ...samePorts });
  await listening(third);
  third.process.kill('SIGTERM');
  assert.equal(await third.exited, 0, third.stderr().slice(-2000));

  for (const chain of ['access', 'security', 'app']) assertOneWriter(logs, chain);
  const opened = chainLines(logs, 'app').filter((l) => l.message === 'audit logs open');
  assert.equal(opened.length, 2, 'the first and the last opened the logs; the refused ones never did');
  const v = await verify(t, env, logs);
  assert.equal(v.code, 0, v.out);
});

test('regression: the lock left by a SIGKILLed gateway is taken over at the next start, with a log line naming the dead process; audit verify passes', { timeout: 90_000 }, async (t) => {
  const up = await heldUpstream(t);
  const { logs, env } = await workFolder(t, up.url);
  const p = await ports();
  const killed = startGateway(t, { ...env, ...p });
  await listening(killed);
  // Lines on disk and their heads recorded, as a gateway that ran for a while has.
  await waitFor(() => existsSync(join(logs, '.chain-heads.json')), 'the chain heads to be recorded', 15_000);
  killed.process.kill('SIGKILL');
  await killed.exited;
  const left = JSON.parse(readFileSync(lockFilePath(logs, 'gateway'), 'utf8')) as { pid: number; host: string };
  assert.equal(left.pid, killed.process.pid);
  assert.equal(left.host, hostname());

  const next = startGateway(t, { ...env, ...p });
  await listening(next);
  const tookOver = (): Record<string, unknown> | undefined => chainLines(logs, 'app').find((l) => l.message === 'took over the log folder lock of a process that is gone');
  await waitFor(() => tookOver() !== undefined, 'the takeover line in the app log', 10_000);
  const line = tookOver() as Record<string, unknown>;
  assert.equal((line.previous as { pid: number }).pid, killed.process.pid);
  assert.equal((JSON.parse(readFileSync(lockFilePath(logs, 'gateway'), 'utf8')) as { pid: number }).pid, next.process.pid);
  next.process.kill('SIGTERM');
  assert.equal(await next.exited, 0);
  for (const chain of ['security', 'app']) assertOneWriter(logs, chain);
  const v = await verify(t, env, logs);
  assert.equal(v.code, 0, v.out);
});

test('CLI actions: beside a running gateway they write their own chain under their own lock; a second CLI action waits for the first instead of forking the cli chain', { timeout: 90_000 }, async (t) => {
  const up = await heldUpstream(t);
  const { logs, env } = await workFolder(t, up.url);
  const gw = startGateway(t, { ...env, ...(await ports()) });
  await listening(gw);
  const issue = ['tokens', 'issue', '--client', 'ops', '--roles', 'admin', '--ttl', '15m'];
  const free = cli(t, issue, env);
  assert.equal(await free.exited, 0, free.stderr());

  // Another CLI action holding the cli chain: this one waits, then writes after it.
  const other = await lockLogDir(logs, 'cli', { node: 'other-cli' });
  const waiting = cli(t, issue, env);
  await new Promise((r) => setTimeout(r, 2_000));
  assert.equal(waiting.process.exitCode, null, `it waited for the lock:\n${waiting.stderr()}`);
  other.release();
  assert.equal(await waiting.exited, 0, waiting.stderr());
  assert.doesNotMatch(waiting.stderr(), /WARNING: audit log/);

  const issued = chainLines(logs, 'security.cli').filter((l) => l.event === 'admin.token_issued');
  assert.equal(issued.length, 2);
  assertOneWriter(logs, 'security.cli');
  assert.equal(existsSync(lockFilePath(logs, 'cli')), false, 'each CLI process released its lock');
  gw.process.kill('SIGTERM');
  assert.equal(await gw.exited, 0);
  const v = await verify(t, env, logs);
  assert.equal(v.code, 0, v.out);
});
