import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { startTestGateway, type TestGateway } from '../helpers/harness.js';
import { startTestAudit, tempDir, type TestAudit } from '../helpers/audit.js';
import { addClient, addUser, claimsFor, expectRefused, randomSecret, ringToken } from '../helpers/auth-gateway.js';
import { SessionClient } from '../helpers/session-client.js';
import { waitFor } from '../helpers/wait.js';
import { parseConfig } from '../../src/config/load.js';
import { createAuthService, type AuthService } from '../../src/auth/service.js';
import { SecurityOverview, type OverviewSnapshot } from '../../src/audit/overview/overview-data.js';
import { dailyReport, formatDailyReport } from '../../src/audit/offline/report.js';
import type { RequestMetrics } from '../../src/metrics/requests.js';

const ROUTES = `
  - name: public
    host: api.test.local
    path: /public
    upstream: UPSTREAM
    auth: none
  - name: limited
    host: api.test.local
    path: /limited
    upstream: UPSTREAM
    auth: none
    rateLimit: { window: 1m, max: 2 }
  - name: api
    host: api.test.local
    upstream: UPSTREAM
    auth: jwt
    roles: [api]
  - name: app
    host: app.test.local
    upstream: UPSTREAM
    auth: session
    roles: [staff]
`;
/** Each sign-in client comes through a trusted hop with its own address. */
const ENV = { TRUSTED_PROXIES: '127.0.0.1' };
const PASSWORD = 'alice-long-password-1';

/** The traffic, as the test sends it: every figure below is counted from these. */
const N_PUBLIC = 10;
const N_LIMITED_OK = 2;
const M_RATE_LIMITED = 7;
const N_API_OK = 3;
const T_FORGED = 3;
const T_EXPIRED = 2;
const S_SIGNED_IN = 2;
const K_BOB = 3;
/** Mallory's fifth failure locks her account; her next attempts are refused as locked. */
const K_MALLORY = 5;
const L_LOCKED = 2;
const C_CLIENT_SECRET = 1;
/** Every sign-in attempt is the form (GET) and its post. */
const REQUESTS = N_PUBLIC + N_LIMITED_OK + M_RATE_LIMITED + N_API_OK + T_FORGED + T_EXPIRED + 2 * (S_SIGNED_IN + K_BOB + K_MALLORY + L_LOCKED) + C_CLIENT_SECRET;
const DENIALS = M_RATE_LIMITED + T_FORGED + T_EXPIRED + K_BOB + K_MALLORY + L_LOCKED + C_CLIENT_SECRET;

let audit: TestAudit;
let auth: AuthService;
let gw: TestGateway | undefined;
/** The request metrics of the gateway that served the traffic. */
let requests: RequestMetrics;
let dataDir: string;
let bob: SessionClient;
let mallory: SessionClient;
let day: string;

async function attempt(c: SessionClient, user: string, password: string, status: number): Promise<void> {
  const form = await c.openLogin();
  const res = await c.postLogin({ csrf: form.csrf, rd: form.rd, username: user, password });
  assert.equal(res.status, status, `${user}: ${res.body.slice(0, 200)}`);
}

before(async () => {
  audit = await startTestAudit({}, { keep: true });
  const secret = randomSecret();
  dataDir = tempDir('crm-gw-overview-data-');
  const env = { API_SECRET_KEY: secret, DATA_DIR: dataDir, ...ENV };
  auth = (await createAuthService(parseConfig(`routes:\n${ROUTES.replaceAll('UPSTREAM', 'http://127.0.0.1:9')}`, { ...env, GATEWAY_DOMAIN: 'test.local' }), { log: audit.log })) as AuthService;
  await addUser(auth, 'alice', PASSWORD, ['api', 'staff']);
  await addUser(auth, 'bob', 'bob-long-password-22', ['staff']);
  await addUser(auth, 'mallory', 'mallory-long-password', ['staff']);
  await addClient(auth, 'reports', ['api']);
  const g = await startTestGateway(ROUTES, env, '', { auth, log: audit.log });
  gw = g;
  requests = g.running.metrics.requests;
  day = new Date().toISOString().slice(0, 10);

  for (let i = 0; i < N_PUBLIC; i++) assert.equal((await g.request({ host: 'api.test.local', path: `/public/p${i % 3}` })).status, 200);
  for (let i = 0; i < N_LIMITED_OK; i++) assert.equal((await g.request({ host: 'api.test.local', path: '/limited/x' })).status, 200);
  for (let i = 0; i < M_RATE_LIMITED; i++) await expectRefused(g, { host: 'api.test.local', path: '/limited/x' }, 429, 'RATE_LIMITED');
  const good = ringToken(secret, claimsFor('alice', { roles: ['api'] }));
  for (let i = 0; i < N_API_OK; i++) assert.equal((await g.request({ host: 'api.test.local', path: '/contacts', headers: { authorization: `Bearer ${good}` } })).status, 200);
  for (let i = 0; i < T_FORGED; i++) await expectRefused(g, { host: 'api.test.local', path: '/contacts', headers: { authorization: `Bearer ${ringToken(randomSecret(), claimsFor('alice'))}` } }, 401, 'AUTH_INVALID');
  const now = Math.floor(Date.now() / 1000);
  const expired = ringToken(secret, claimsFor('alice', { iat: now - 700, exp: now - 100 }));
  for (let i = 0; i < T_EXPIRED; i++) await expectRefused(g, { host: 'api.test.local', path: '/contacts', headers: { authorization: `Bearer ${expired}` } }, 401, 'AUTH_EXPIRED');

  const alice = new SessionClient(g, 'app.test.local');
  for (let i = 0; i < S_SIGNED_IN; i++) await attempt(alice, 'alice', PASSWORD, 303);
  bob = new SessionClient(g, 'app.test.local');
  for (let i = 0; i < K_BOB; i++) await attempt(bob, 'bob', 'not-his-password', 401);
  mallory = new SessionClient(g, 'app.test.local');
  for (let i = 0; i < K_MALLORY; i++) await attempt(mallory, 'mallory', 'guess-number-' + String(i), 401);
  for (let i = 0; i < L_LOCKED; i++) await attempt(mallory, 'mallory', 'mallory-long-password', 429);
  const basic = Buffer.from('reports:wrong-secret').toString('base64');
  for (let i = 0; i < C_CLIENT_SECRET; i++) {
    await expectRefused(g, { method: 'POST', host: 'api.test.local', path: '/auth/token', headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials' }, 401, 'AUTH_FAILED');
  }
  await g.close();
  gw = undefined;
  assert.ok(await audit.log.flush(5_000));
});

after(async () => {
  await gw?.close();
  await auth?.close();
  await audit?.close();
  rmSync(audit.dir, { recursive: true, force: true });
  rmSync(dataDir, { recursive: true, force: true });
});

function accessLines(): Record<string, unknown>[] {
  return readdirSync(audit.dir)
    .filter((n) => n.startsWith('access-') && n.endsWith('.log'))
    .flatMap((n) => readFileSync(join(audit.dir, n), 'utf8').split('\n'))
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The figures the test knows, as the snapshot holds them. */
function assertKnownFigures(s: OverviewSnapshot): void {
  assert.equal(s.totalRequests, REQUESTS);
  assert.equal(s.totalDenials, DENIALS);
  assert.equal(s.rateLimited, M_RATE_LIMITED);
  assert.deepEqual(
    [...s.denialsByReason].sort((a, b) => a.reason.localeCompare(b.reason)),
    [
      { reason: 'AUTH_EXPIRED', count: T_EXPIRED },
      { reason: 'AUTH_FAILED', count: K_BOB + K_MALLORY + C_CLIENT_SECRET },
      { reason: 'AUTH_INVALID', count: T_FORGED },
      { reason: 'AUTH_LOCKED', count: L_LOCKED },
      { reason: 'RATE_LIMITED', count: M_RATE_LIMITED },
    ],
  );
  const { overTime, ...signIns } = s.signIns;
  assert.deepEqual(signIns, { succeeded: S_SIGNED_IN, failed: K_BOB + K_MALLORY, locked: L_LOCKED, rejectedTokens: T_FORGED + T_EXPIRED, clientCredentialsFailed: C_CLIENT_SECRET });
  assert.deepEqual(
    overTime.reduce((a, p) => ({ succeeded: a.succeeded + p.succeeded, failed: a.failed + p.failed, locked: a.locked + p.locked }), { succeeded: 0, failed: 0, locked: 0 }),
    { succeeded: S_SIGNED_IN, failed: K_BOB + K_MALLORY, locked: L_LOCKED },
  );
  assert.equal(s.overTime.reduce((n, p) => n + p.requests, 0), REQUESTS);
  assert.equal(s.overTime.reduce((n, p) => n + p.denied, 0), DENIALS);
  const route = (name: string): OverviewSnapshot['routes'][number] | undefined => s.routes.find((r) => r.route === name);
  assert.deepEqual([route('public')?.requests, route('public')?.denied], [N_PUBLIC, 0]);
  assert.ok(route('public')?.upstreamMs && route('public')!.upstreamMs!.p50 > 0, 'forwarded requests have an upstream latency');
  assert.deepEqual([route('limited')?.requests, route('limited')?.denied, route('limited')?.denialRatio], [N_LIMITED_OK + M_RATE_LIMITED, M_RATE_LIMITED, M_RATE_LIMITED / (N_LIMITED_OK + M_RATE_LIMITED)]);
  // The token endpoint answers on the api host, so the refused client secret is that route's too.
  assert.deepEqual([route('api')?.requests, route('api')?.denied], [N_API_OK + T_FORGED + T_EXPIRED + C_CLIENT_SECRET, T_FORGED + T_EXPIRED + C_CLIENT_SECRET]);
  assert.deepEqual(
    s.top.addresses.find((a) => a.value === mallory.ip),
    { value: mallory.ip, count: 2 * (K_MALLORY + L_LOCKED), denied: K_MALLORY + L_LOCKED },
  );
  assert.equal(s.top.users.find((u) => u.value === 'alice')?.count, N_API_OK + S_SIGNED_IN, 'her API calls and the posts that signed her in');
}

test('the overview counts exactly the requests, denials, rate-limit refusals and sign-ins the test sent', () => {
  assert.equal(accessLines().length, REQUESTS, 'one access line per request');
  for (const range of ['24h', '7d', '30d'] as const) assertKnownFigures(audit.log.overview.snapshot(range));
});

test('the same figures as the metrics of the same requests', async () => {
  // The gateway's own metrics (it is closed by now; its registry stays readable).
  const { denialsTotal, requestsTotal } = requests;
  const sum = async (metric: typeof denialsTotal | typeof requestsTotal, filter: (labels: Record<string, unknown>) => boolean = () => true): Promise<number> =>
    (await metric.get()).values.filter((v) => filter(v.labels)).reduce((n, v) => n + v.value, 0);
  const s = audit.log.overview.snapshot();
  assert.equal(await sum(requestsTotal), s.totalRequests);
  assert.equal(await sum(denialsTotal), s.totalDenials);
  assert.equal(await sum(denialsTotal, (l) => l.reason === 'RATE_LIMITED'), s.rateLimited);
});

test('audit report counts the day the same way: rate-limit refusals from access lines, three sign-in figures', async () => {
  const r = await dailyReport(audit.dir, day);
  assert.equal(r.requests, REQUESTS);
  assert.equal(r.denials, DENIALS);
  assert.equal(r.rateLimited, M_RATE_LIMITED);
  assert.deepEqual(r.signIns, { succeeded: S_SIGNED_IN, failed: K_BOB + K_MALLORY, locked: L_LOCKED, rejectedTokens: T_FORGED + T_EXPIRED, clientCredentialsFailed: C_CLIENT_SECRET });
  assert.deepEqual(r.failedSignInsByUser, [
    { user: 'mallory', count: K_MALLORY },
    { user: 'bob', count: K_BOB },
  ]);
  // The plain address, whether the events hold it as `ip:<address>` (older lines) or as it is.
  assert.deepEqual(r.failedSignInsByIp, [
    { ip: mallory.ip, count: K_MALLORY },
    { ip: bob.ip, count: K_BOB },
  ]);
  const live = audit.log.overview.snapshot();
  assert.deepEqual(r.denialsByReason, live.denialsByReason);
  // What `npx crm-gateway audit report` prints for the day.
  const cli = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `import { run } from './src/cli/main.ts'; process.exitCode = await run(${JSON.stringify(['audit', 'report', '--day', day])});`], {
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, GATEWAY_CONFIG: '/nonexistent.yaml', LOG_DIR: audit.dir, DATABASE_URL: '' },
  });
  assert.equal(cli.status, 0, cli.stderr);
  for (const text of [formatDailyReport(r), cli.stdout]) {
    assert.match(text, new RegExp(`^requests: ${REQUESTS} `, 'm'));
    assert.match(text, new RegExp(`^denials: ${DENIALS}$`, 'm'));
    assert.match(text, new RegExp(`^rate-limit refusals: ${M_RATE_LIMITED}$`, 'm'));
    assert.match(text, new RegExp(`^sign-ins: ${S_SIGNED_IN} succeeded, ${K_BOB + K_MALLORY} failed, ${L_LOCKED} refused while locked$`, 'm'));
    assert.match(text, new RegExp(`^rejected tokens: ${T_FORGED + T_EXPIRED}$`, 'm'));
    assert.match(text, new RegExp(`^rejected client credentials: ${C_CLIENT_SECRET}$`, 'm'));
  }
});

test('read back from the files, the overview shows the same figures', async () => {
  const fresh = new SecurityOverview();
  assert.ok((await fresh.backfill(audit.dir)) > REQUESTS);
  const strip = (s: OverviewSnapshot): unknown => ({ ...s, to: undefined });
  for (const range of ['24h', '7d', '30d'] as const) {
    assertKnownFigures(fresh.snapshot(range));
    assert.deepEqual(strip(fresh.snapshot(range)), strip(audit.log.overview.snapshot(range)));
  }
  assert.equal(await fresh.backfill(audit.dir), 0, 'a second backfill reads nothing, so counts nothing twice');
});

test('after a restart, lines from before it are read back and lines written meanwhile count once', async () => {
  await audit.close();
  const again = await startTestAudit({ dir: audit.dir }, { keep: true });
  try {
    // Written while the new logger's backfill is reading the same files.
    for (let i = 0; i < 5; i++) again.log.access({ requestId: `late-${i}`, clientIp: '192.0.2.50', method: 'GET', path: '/limited/x', route: 'limited', status: 429, outcome: 'denied', code: 'RATE_LIMITED' });
    again.log.security('auth.login_failed', { requestId: 'late-f', user: 'mallory', clientIp: '192.0.2.50', reason: 'wrong password' });
    await waitFor(() => again.log.overview.snapshot().totalRequests === REQUESTS + 5, 'the backfill of the earlier lines');
    await again.log.flush(5_000);
    await new Promise((r) => setTimeout(r, 200));
    const s = again.log.overview.snapshot();
    assert.equal(s.totalRequests, REQUESTS + 5);
    assert.equal(s.rateLimited, M_RATE_LIMITED + 5);
    assert.equal(s.signIns.failed, K_BOB + K_MALLORY + 1);
  } finally {
    await again.close();
  }
});
