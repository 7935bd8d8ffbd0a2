import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { appendFileSync, existsSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { startTestAudit, tempDir, type TestAudit } from '../helpers/audit.js';
import { addClient, claimsFor, randomSecret, ringToken } from '../helpers/auth-gateway.js';
import { httpsRequest, testCertificate, testEnv } from '../helpers/harness.js';
import { runId, SHARED_REDIS_URL } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';
import { createAuthService } from '../../src/auth/service.js';
import { CLIENT_SUBJECT_PREFIX } from '../../src/auth/store/types.js';
import { parseConfig } from '../../src/config/load.js';
import { startEchoUpstream } from '../../src/demo/echo-upstream.js';
import { createMemoryLogger } from '../../src/log/logger.js';
import { EMPTY_CHAIN, recordJson, seal, type ChainState } from '../../src/audit/writer/chain.js';
import { gzipClosedFile } from '../../src/audit/writer/compress.js';
import { fileNameFor } from '../../src/audit/writer/files.js';
import { FOLLOW_INTERVAL_MS, SecurityOverview, type OverviewSnapshot } from '../../src/audit/overview/overview-data.js';

// Regression (reviewer, GATEWAY_WORKERS > 1): each worker's overview counted only the traffic it
// logged itself, so 50 requests split 15/35 showed as 15 or 35, and the CLI's security events
// reached the page only at the next restart. Every logger here is real and writes real files
// into one folder, as cluster workers (w1, w2) and a CLI process (cli-x) do.

const W1_REQUESTS = 15;
const W2_REQUESTS = 35;
const W1_SIGNED_IN = 3;
const W2_FAILED = 4;
const CLI_FAILED = 2;
/** What a pass needs at most to have been made, with room for a slow machine. */
const CONVERGE_MS = 4 * FOLLOW_INTERVAL_MS + 5_000;

let dir: string;
let w1: TestAudit;
let w2: TestAudit;
let cli: TestAudit;

const today = (): string => new Date().toISOString().slice(0, 10);

function requests(a: TestAudit, n: number, tag: string): void {
  for (let i = 0; i < n; i++) a.log.access({ requestId: `${tag}-${i}`, clientIp: '192.0.2.10', method: 'GET', path: `/p${i % 4}`, route: 'crm', status: 200, outcome: 'forwarded', durationMs: 3, upstreamMs: 2 });
}

/** The figures compared across overviews (`to` moves with the clock). */
function figures(s: OverviewSnapshot): { requests: number; succeeded: number; failed: number; alerts: number } {
  return { requests: s.totalRequests, succeeded: s.signIns.succeeded, failed: s.signIns.failed, alerts: s.recentAlerts.filter((a) => a.alert === 'account_locked').length };
}

/** A chain written line by line by this test: a stand-in for another process's file, torn lines included. */
class HandChain {
  private state: ChainState = EMPTY_CHAIN;
  readonly path: string;
  private n = 0;
  constructor(readonly chain: string) {
    this.path = join(dir, fileNameFor(chain, today()));
  }
  line(): string {
    const record = { time: new Date().toISOString(), requestId: `${this.chain}-${++this.n}`, clientIp: '192.0.2.20', method: 'GET', path: '/hand', route: 'crm', status: 403, outcome: 'denied', code: 'IP_DENIED', durationMs: 1 };
    const sealed = seal(recordJson(record), this.state);
    this.state = sealed;
    return `${sealed.line}\n`;
  }
  append(text: string): void {
    appendFileSync(this.path, text);
  }
}

const overviews = (): SecurityOverview[] => [w1.log.overview, w2.log.overview, cli.log.overview];

async function converge(expected: ReturnType<typeof figures>, list: SecurityOverview[] = overviews()): Promise<void> {
  await waitFor(() => list.every((o) => JSON.stringify(figures(o.snapshot())) === JSON.stringify(expected)), `every overview at ${JSON.stringify(expected)}; now ${JSON.stringify(list.map((o) => figures(o.snapshot())))}`, CONVERGE_MS, 50);
}

/** Passes beyond convergence (the timer's and explicit ones) change nothing: no line counts twice. */
async function stable(expected: ReturnType<typeof figures>, list: SecurityOverview[] = overviews()): Promise<void> {
  for (const o of list) {
    await o.followPass(dir);
    await o.followPass(dir);
  }
  await new Promise((r) => setTimeout(r, FOLLOW_INTERVAL_MS + 500));
  for (const o of list) assert.deepEqual(figures(o.snapshot()), expected);
}

let expected: ReturnType<typeof figures>;

before(async () => {
  dir = tempDir('crm-gw-overview-workers-');
  w1 = await startTestAudit({ dir, instance: 'w1' }, { keep: true });
  w2 = await startTestAudit({ dir, instance: 'w2' }, { keep: true });
  cli = await startTestAudit({ dir, instance: 'cli-x' }, { keep: true });
  // A name that points at a device, as another test leaves them: never read.
  symlinkSync('/dev/full', join(dir, fileNameFor('access.w7', today())));
});

after(async () => {
  for (const a of [w1, w2, cli]) await a?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('regression (GATEWAY_WORKERS > 1): each worker sees the requests and sign-ins of every worker and the CLI, within a few seconds, once each', async () => {
  requests(w1, W1_REQUESTS, 'w1');
  requests(w2, W2_REQUESTS, 'w2');
  for (let i = 0; i < W1_SIGNED_IN; i++) w1.log.security('auth.login_succeeded', { requestId: `s-${i}`, user: 'alice', clientIp: '192.0.2.10', method: 'password' });
  for (let i = 0; i < W2_FAILED; i++) w2.log.security('auth.login_failed', { requestId: `f-${i}`, user: 'bob', clientIp: '192.0.2.11', reason: 'wrong password' });
  for (let i = 0; i < CLI_FAILED; i++) cli.log.security('auth.login_failed', { requestId: `c-${i}`, user: 'carol', clientIp: '192.0.2.12', reason: 'wrong password' });
  cli.log.raise('account_locked', 'carol', 'carol was locked from the command line');
  for (const a of [w1, w2, cli]) assert.ok(await a.log.flush(5_000));
  expected = { requests: W1_REQUESTS + W2_REQUESTS, succeeded: W1_SIGNED_IN, failed: W2_FAILED + CLI_FAILED, alerts: 1 };
  await converge(expected);
  await stable(expected);
});

test('a torn last line is left for a later pass and counted once completed', async () => {
  const x9 = new HandChain('access.x9');
  const whole = x9.line() + x9.line() + x9.line();
  const fourth = x9.line();
  x9.append(whole + fourth.slice(0, 100));
  expected = { ...expected, requests: expected.requests + 3 };
  await converge(expected);
  await stable(expected);
  x9.append(fourth.slice(100));
  expected = { ...expected, requests: expected.requests + 1 };
  await converge(expected);
  await stable(expected);
});

test('a compressed file is not read again; lines it got after the last pass are read from the .gz', async () => {
  // Driven by hand (no timer), so both ways of meeting a `.gz` happen for certain.
  const solo = new SecurityOverview();
  await solo.backfill(dir);
  assert.deepEqual(figures(solo.snapshot()), expected);

  // Read to its end, then compressed: the trailer's length says there is nothing new.
  const x9 = join(dir, fileNameFor('access.x9', today()));
  await gzipClosedFile(x9);
  assert.equal(await solo.followPass(dir), 0);

  // Read in part, then the writer adds two lines and closes the day: those two are read from the archive.
  const x8 = new HandChain('access.x8');
  x8.append(x8.line() + x8.line());
  assert.equal(await solo.followPass(dir), 2);
  x8.append(x8.line() + x8.line());
  await gzipClosedFile(x8.path);
  assert.equal(await solo.followPass(dir), 2);
  assert.equal(await solo.followPass(dir), 0);
  expected = { ...expected, requests: expected.requests + 4 };
  assert.deepEqual(figures(solo.snapshot()), expected);
  await converge(expected);
  await stable(expected);
});

test('a flood is read a bounded slice per pass, and adds up to the same figures', async () => {
  // Without a backfill (and no chain of its own) an overview follows every chain from its start.
  const sliced = new SecurityOverview();
  let passes = 0;
  for (let counted = -1; counted !== 0; passes++) counted = await sliced.followPass(dir, 2_000);
  assert.ok(passes > 10, `${passes} passes of 2,000 bytes`);
  assert.deepEqual(figures(sliced.snapshot()), expected);
});

test('after a restart (a fresh logger that reads the files back), and with traffic on meanwhile, every line counts once', async () => {
  await w1.close();
  w1 = await startTestAudit({ dir, instance: 'w1' }, { keep: true });
  requests(w2, 5, 'w2-late');
  requests(w1, 2, 'w1-late');
  for (const a of [w1, w2]) assert.ok(await a.log.flush(5_000));
  expected = { ...expected, requests: expected.requests + 7 };
  await converge(expected);
  await stable(expected);
});

test('cost: microseconds per followed line', async (t) => {
  const LINES = 20_000;
  const big = new HandChain('access.x6');
  let text = '';
  for (let i = 0; i < LINES; i++) text += big.line();
  writeFileSync(big.path, text);
  const o = new SecurityOverview();
  const started = performance.now();
  let counted = 0;
  for (let n = -1; n !== 0; ) counted += n = await o.followPass(dir);
  const ms = performance.now() - started;
  t.diagnostic(`${counted} lines (${(text.length / LINES).toFixed(0)} bytes each for the flood) in ${ms.toFixed(0)} ms: ${((ms * 1000) / counted).toFixed(1)} µs per line`);
  assert.equal(o.snapshot().totalRequests, expected.requests + LINES);
  await converge({ ...expected, requests: expected.requests + LINES });
});

/** GET on the admin listener, on a fresh connection each time (so either worker may answer). */
function adminGet(port: number, path: string, authorization: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, agent: false, headers: { authorization } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('GATEWAY_WORKERS=2: /security.json counts every request sent, whichever worker answers', { timeout: 240_000 }, async (t) => {
  const REQUESTS = 40;
  const cert = await testCertificate();
  const ca = readFileSync(cert.cert, 'utf8');
  const upstream = await startEchoUpstream('overview-workers-upstream');
  t.after(() => upstream.close());
  const root = tempDir('crm-gw-overview-cluster-');
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const logDir = join(root, 'logs');
  const secret = randomSecret();
  const yaml = `routes:\n  - name: ${runId('ow')}\n    host: api.test.local\n    upstream: ${upstream.url}\n    auth: none\n`;
  writeFileSync(join(root, 'gateway.yaml'), yaml);
  const env = { ...testEnv(cert), API_SECRET_KEY: secret, DATA_DIR: join(root, 'data'), LOG_DIR: logDir };
  // An API client with the admin role, in the store the workers read.
  const auth = await createAuthService(parseConfig(yaml, env), { log: createMemoryLogger() });
  assert.ok(auth);
  await addClient(auth, 'ops', ['admin']);
  await auth.close();
  const bearer = `Bearer ${ringToken(secret, claimsFor(`${CLIENT_SUBJECT_PREFIX}ops`, { roles: ['admin'] }))}`;

  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: new URL('../..', import.meta.url).pathname,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH, GATEWAY_CONFIG: join(root, 'gateway.yaml'), GATEWAY_WORKERS: '2', REDIS_URL: SHARED_REDIS_URL, ...env },
  });
  const exited = once(child, 'exit');
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let output = '';
  for (const stream of [child.stdout, child.stderr]) stream.on('data', (c: Buffer) => (output += c.toString('utf8')));
  const listening = (): Record<string, unknown>[] =>
    output
      .split('\n')
      .filter((l) => l.includes('"gateway listening"'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  await waitFor(() => listening().length >= 2 || child.exitCode !== null, 'two workers listening', 120_000, 100);
  assert.equal(child.exitCode, null, output.slice(-2000));
  const httpsPort = Number(listening()[0]?.https);
  const adminPort = Number(String(listening()[0]?.admin).split(':').pop());

  for (let i = 0; i < REQUESTS; i++) assert.equal((await httpsRequest(httpsPort, ca, { path: `/n${i}` })).status, 200);
  // Both workers answered some of them: each writes its own access chain.
  const perWorker = (): number[] =>
    (existsSync(logDir) ? readdirSync(logDir) : [])
      .filter((f) => /^access\.w\d+-.*\.log$/.test(f))
      .map((f) => readFileSync(join(logDir, f), 'utf8').split('\n').filter((l) => l.includes('"/n')).length);
  await waitFor(() => perWorker().reduce((a, b) => a + b, 0) === REQUESTS, 'every access line on disk', 30_000, 100);
  assert.equal(perWorker().filter((n) => n > 0).length, 2, `split ${perWorker().join('/')}`);

  const total = async (): Promise<number> => {
    const res = await adminGet(adminPort, '/security.json', bearer);
    assert.equal(res.status, 200, res.body.slice(0, 300));
    return (JSON.parse(res.body) as { totalRequests: number }).totalRequests;
  };
  await waitFor(async () => (await total()) === REQUESTS, `totalRequests ${REQUESTS} on the admin page`, CONVERGE_MS, 200);
  // Several answers, from either worker, all the same (and none counts a line twice).
  await new Promise((r) => setTimeout(r, FOLLOW_INTERVAL_MS + 500));
  const seen: number[] = [];
  for (let i = 0; i < 8; i++) seen.push(await total());
  assert.deepEqual(seen, Array(8).fill(REQUESTS));
  const viewsPerWorker = readdirSync(logDir)
    .filter((f) => /^security\.w\d+-.*\.log$/.test(f))
    .map((f) => readFileSync(join(logDir, f), 'utf8').split('\n').filter((l) => l.includes('"admin.overview_viewed"')).length);
  assert.equal(viewsPerWorker.filter((n) => n > 0).length, 2, `both workers answered the admin page (${viewsPerWorker.join('/')})`);

  child.kill('SIGTERM');
  const [code] = (await exited) as [number | null];
  assert.equal(code, 0, output.slice(-2000));
});
