import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchBrowser, type TestBrowser } from '../helpers/browser.js';
import { httpsRequest, startTestGateway, testCertificate, testConfig, type TestResponse } from '../helpers/harness.js';
import { startTestAudit, type TestAudit } from '../helpers/audit.js';
import { addClient, addUser, randomSecret } from '../helpers/auth-gateway.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';
import { startEchoUpstream, type EchoUpstream } from '../../src/demo/echo-upstream.js';
import { createAuthService, type AuthService } from '../../src/auth/service.js';
import { createAdminAuth } from '../../src/auth/admin-auth.js';
import { createContainment, type Containment } from '../../src/containment/service.js';
import { startGateway, type RunningGateway } from '../../src/server/start.js';
import { loginAttempt } from '../../src/auth/lockout.js';
import { normalizeIp } from '../../src/net/ip.js';

// Issue 18, items 8-10: a person signs in to the overview with a browser (admin accounts of the
// gateway), reads figures of traffic whose every request this test made, switches the range;
// scripts keep their bearer tokens; /readyz stays 200 with one upstream down.

const ADMIN = { name: 'root', password: 'correct horse battery staple 42' };
const STAFF = { name: 'val', password: 'another long enough password 7' };
/** Bogotá keeps UTC-5 all year: the local times on the page are known without a DST table. */
const ZONE = 'America/Bogota';
const OFFSET_MS = -5 * 3_600_000;

let browser: TestBrowser;
let audit: TestAudit;
let upstream: EchoUpstream;
let auth: AuthService;
let running: RunningGateway;
let dataDir: string;
let ca: string;
let adminUrl: string;
let containment: Containment;
let deadUpstream: string;

function routes(dead: string): string {
  return `
  - name: internal
    host: api.test.local
    path: /internal
    upstream: UPSTREAM
    auth: none
    ipAllowlist: [10.0.0.0/8]
  - name: public
    host: api.test.local
    upstream: UPSTREAM
    auth: none
    rateLimit: { window: 1m, max: 3 }
  - name: broken
    host: broken.test.local
    upstream: ${dead}
    auth: none
  - name: crm
    host: crm.test.local
    upstream: UPSTREAM
    auth: jwt
`;
}

before(async () => {
  audit = await startTestAudit();
  upstream = await startEchoUpstream('overview-upstream');
  dataDir = mkdtempSync(join(tmpdir(), 'crm-gw-overview-'));
  const cert = await testCertificate();
  ca = readFileSync(cert.cert, 'utf8');
  deadUpstream = `http://127.0.0.1:${await freePort()}`;
  const config = testConfig(routes(deadUpstream), upstream.url, cert, { API_SECRET_KEY: randomSecret(), DATA_DIR: dataDir, LOG_DIR: audit.dir }, `admin: { timeZone: ${ZONE} }\nauth: { mfa: { requiredRoles: [] } }`);
  const made = await createAuthService(config, { log: audit.log, redis: undefined, postgres: undefined });
  assert.ok(made);
  auth = made;
  await addUser(auth, ADMIN.name, ADMIN.password, ['admin']);
  await addUser(auth, STAFF.name, STAFF.password, ['staff']);
  containment = await createContainment(config, { log: audit.log });
  running = await startGateway(config, { log: audit.log, auth, adminAuth: createAdminAuth(auth), securityOverview: audit.log.overview, containment });
  adminUrl = `http://127.0.0.1:${running.ports.admin}`;
  // The traffic the figures must show, every request of it made here:
  const send = (path: string, host = 'api.test.local', headers: Record<string, string> = {}): Promise<TestResponse> => httpsRequest(running.ports.https, ca, { path, host, headers });
  for (let i = 0; i < 3; i++) assert.equal((await send('/internal/x')).status, 403); // IP_DENIED
  const limited = [];
  for (let i = 0; i < 5; i++) limited.push((await send('/public/y')).status);
  assert.deepEqual(limited, [200, 200, 200, 429, 429]);
  assert.equal((await send('/', 'broken.test.local')).status, 502);
  await addClient(auth, 'ops', ['api']);
  const bearer = (sub: string): Record<string, string> => ({ authorization: `Bearer ${auth.tokens.issue({ sub, roles: ['api'], ttlMs: 60_000, typ: 'access' }).token}` });
  for (let i = 0; i < 2; i++) assert.equal((await send('/records', 'crm.test.local', bearer(ADMIN.name))).status, 200);
  assert.equal((await send('/records', 'crm.test.local', bearer('client:ops'))).status, 200);
  assert.equal((await send('/records', 'crm.test.local', { authorization: 'Bearer not.a.token' })).status, 401); // AUTH_INVALID
  audit.log.raise('upstream_down', 'broken', 'upstream of route broken failed 5 times within 1m', { route: 'broken' });
  // A value an attacker controls, shown on the page: it must stay text.
  audit.log.raise('new_ip_for_user', '<img src=x onerror=alert(1)>', 'user <script>alert(1)</script> seen from a new address', {});
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await running?.shutdown();
  await containment?.close();
  await auth?.close();
  await upstream?.close();
  await audit?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function adminRequest(path: string, opts: { method?: string; headers?: Record<string, string>; body?: string; port?: number } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: opts.port ?? running.ports.admin, path, method: opts.method ?? 'GET', headers: opts.headers ?? {}, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

function errorCode(a: Answer): string {
  const parsed = JSON.parse(a.body) as { error: { code: string; message: string; requestId: string } };
  assert.equal(typeof parsed.error.message, 'string');
  assert.equal(typeof parsed.error.requestId, 'string');
  return parsed.error.code;
}

/** The sign-in form's token and its paired cookie, as a browser would hold them. */
async function signInForm(): Promise<{ csrf: string; cookie: string }> {
  const page = await adminRequest('/security/login');
  assert.equal(page.status, 200);
  const csrf = /name="csrf" value="([^"]+)"/.exec(page.body)?.[1];
  const cookie = (page.headers['set-cookie'] ?? []).find((c) => c.startsWith('crmgw_admin_csrf='))?.split(';')[0];
  assert.ok(csrf && cookie);
  return { csrf, cookie };
}

async function postSignIn(user: string, password: string, headers: Record<string, string> = {}): Promise<Answer> {
  const form = await signInForm();
  return adminRequest('/security/login', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'accept-language': 'en', cookie: form.cookie, origin: adminUrl, 'sec-fetch-site': 'same-origin', ...headers },
    body: new URLSearchParams({ csrf: form.csrf, rd: '/security', username: user, password }).toString(),
  });
}

async function securityLog(): Promise<Record<string, unknown>[]> {
  await audit.log.flush(5_000);
  return readdirSync(audit.dir)
    .filter((n) => n.startsWith('security-'))
    .flatMap((n) => readFileSync(join(audit.dir, n), 'utf8').split('\n'))
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

test('sign-in refusals: wrong password, a non-admin account, a cross-site POST, a foreign Host; each in the documented format and none opens a session', async () => {
  const wrong = await postSignIn(ADMIN.name, 'not the password');
  assert.equal(wrong.status, 401);
  assert.match(wrong.body, /Wrong user name or password/);
  assert.equal((wrong.headers['set-cookie'] ?? []).some((c) => c.startsWith('crmgw_admin=')), false);

  const staff = await postSignIn(STAFF.name, STAFF.password);
  assert.equal(staff.status, 403, 'a right password without the admin role');
  assert.match(staff.body, /needs the admin role/);
  assert.equal((staff.headers['set-cookie'] ?? []).some((c) => c.startsWith('crmgw_admin=')), false);

  // A page on another site posting the form (its own Origin), even with a valid token pair.
  const crossSite = await postSignIn(ADMIN.name, ADMIN.password, { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' });
  assert.equal(crossSite.status, 403);
  assert.equal(errorCode(crossSite), 'CSRF_REJECTED');
  assert.equal((crossSite.headers['set-cookie'] ?? []).some((c) => c.startsWith('crmgw_admin=')), false);
  // Same Origin claimed, but the browser says the request came from another site.
  assert.equal(errorCode(await postSignIn(ADMIN.name, ADMIN.password, { 'sec-fetch-site': 'cross-site' })), 'CSRF_REJECTED');
  // Neither Origin nor Referer: refused too.
  const form = await signInForm();
  const bare = await adminRequest('/security/login', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: form.cookie },
    body: new URLSearchParams({ csrf: form.csrf, username: ADMIN.name, password: ADMIN.password }).toString(),
  });
  assert.equal(errorCode(bare), 'CSRF_REJECTED');
  // The right origin but no token cookie: the form again, no session.
  const noCookie = await adminRequest('/security/login', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: adminUrl },
    body: new URLSearchParams({ csrf: form.csrf, username: ADMIN.name, password: ADMIN.password }).toString(),
  });
  assert.equal(noCookie.status, 403);
  assert.equal((noCookie.headers['set-cookie'] ?? []).some((c) => c.startsWith('crmgw_admin=')), false);
  // DNS rebinding: a foreign name pointed at 127.0.0.1.
  const rebound = await adminRequest('/security/login', { headers: { host: `attacker.example:${running.ports.admin}` } });
  assert.equal(rebound.status, 400);
  assert.equal(errorCode(rebound), 'HOST_INVALID');

  const events = await securityLog();
  const failed = events.filter((e) => e.event === 'auth.login_failed' && e.user === ADMIN.name);
  assert.equal(failed.length, 1, 'the wrong password is a failed sign-in, as at /auth/login');
  assert.ok(events.some((e) => e.event === 'admin.overview_denied' && e.reason === 'not an admin' && e.user === STAFF.name));
  assert.equal(events.filter((e) => e.event === 'auth.login_succeeded').length, 0);
});

test('scripts keep bearer tokens; refusals on the admin listener use the documented error format', async () => {
  const admin = auth.tokens.issue({ sub: ADMIN.name, roles: ['admin'], ttlMs: 60_000, typ: 'access' }).token;
  const staff = auth.tokens.issue({ sub: STAFF.name, roles: ['staff'], ttlMs: 60_000, typ: 'access' }).token;
  const ok = await adminRequest('/security.json?range=7d', { headers: { authorization: `Bearer ${admin}` } });
  assert.equal(ok.status, 200);
  const data = JSON.parse(ok.body) as { range: string; totalRequests: number; timeZone: string; status: { upstreams: { route: string; ok: boolean }[] } };
  assert.equal(data.range, '7d');
  assert.equal(data.totalRequests, 13);
  assert.equal(data.timeZone, ZONE);
  assert.deepEqual(
    data.status.upstreams.map((u) => [u.route, u.ok]),
    [
      ['internal', true],
      ['public', true],
      ['broken', false],
      ['crm', true],
    ],
  );
  const cases: [Answer, number, string][] = [
    [await adminRequest('/security.json'), 401, 'AUTH_REQUIRED'],
    [await adminRequest('/security.json', { headers: { authorization: 'Bearer forged' } }), 401, 'AUTH_INVALID'],
    [await adminRequest('/security.json', { headers: { authorization: `Bearer ${staff}` } }), 403, 'ROLE_FORBIDDEN'],
    [await adminRequest('/security', { headers: { authorization: `Bearer ${staff}`, accept: 'application/json' } }), 403, 'ROLE_FORBIDDEN'],
    [await adminRequest('/security.json?range=1y', { headers: { authorization: `Bearer ${admin}` } }), 400, 'BAD_REQUEST'],
    [await adminRequest('/security.json', { method: 'DELETE', headers: { authorization: `Bearer ${admin}` } }), 405, 'METHOD_NOT_ALLOWED'],
    [await adminRequest('/nothing-here'), 404, 'ROUTE_NOT_FOUND'],
  ];
  for (const [answer, status, code] of cases) {
    assert.equal(answer.status, status, answer.body);
    assert.equal(errorCode(answer), code);
  }
  // Fail closed: no auth service and no bearer check wired, nothing opens.
  const bare = await startTestGateway(routes(deadUpstream), {}, '', { log: audit.log, securityOverview: audit.log.overview });
  try {
    const refused = await adminRequest('/security', { port: bare.running.ports.admin, headers: { authorization: `Bearer ${admin}` } });
    assert.equal(refused.status, 401);
    assert.equal(errorCode(refused), 'AUTH_UNAVAILABLE');
    assert.equal(errorCode(await adminRequest('/security/login', { port: bare.running.ports.admin })), 'AUTH_UNAVAILABLE');
  } finally {
    await bare.close();
  }
});

test('/readyz is 200 with one upstream down, and reports that route down beside it', async () => {
  const ready = await adminRequest('/readyz');
  assert.equal(ready.status, 200, ready.body);
  const body = JSON.parse(ready.body) as { status: string; upstreams: Record<string, { ok: boolean; upstream: string }> };
  assert.equal(body.status, 'ready');
  assert.equal(body.upstreams.broken?.ok, false);
  assert.equal(body.upstreams.broken?.upstream, deadUpstream);
  assert.equal(body.upstreams.public?.ok, true);
});

test('Chromium: sign in (a wrong password first), read the known figures in local time, switch range, sign out', async () => {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const requested: string[] = [];
    const problems: string[] = [];
    page.on('request', (r) => requested.push(r.url()));
    page.on('console', (m) => {
      // A 401/403 form answer is logged as a failed resource load; a CSP violation is not that.
      if ((m.type() === 'error' || m.type() === 'warning') && !/Failed to load resource/.test(m.text())) problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(e.message));
    page.on('dialog', (d) => {
      problems.push(`dialog: ${d.message()}`);
      void d.dismiss();
    });

    // No session: the browser is sent to the sign-in page.
    await page.goto(`${adminUrl}/security`);
    assert.equal(new URL(page.url()).pathname, '/security/login');
    await page.fill('#username', ADMIN.name);
    await page.fill('#password', 'wrong again');
    const [wrong] = await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    assert.equal(wrong?.status(), 401);
    assert.match((await page.textContent('.err')) ?? '', /Wrong user name or password/);
    await page.fill('#password', ADMIN.password);
    await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    assert.equal(new URL(page.url()).pathname, '/security');
    assert.equal(await page.title(), 'Security overview · crm-gateway');
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === 'crmgw_admin');
    assert.ok(session);
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Strict');
    assert.equal(session.path, '/security');

    const figure = (kind: string): Promise<string> => page.$eval(`[data-figure="${kind}"] b`, (el) => el.textContent ?? '');
    assert.equal(await figure('requests'), '13');
    assert.equal(await figure('denials'), '6');
    assert.equal(await figure('denial-ratio'), '46.2%');
    assert.equal(await figure('rate-limited'), '2');
    assert.equal(await figure('rejected-tokens'), '1');
    assert.equal(await figure('signins-succeeded'), '1');
    assert.equal(await figure('signins-failed'), '2', 'the wrong password over plain HTTP and the one in the browser');

    const routeRows = await page.$$eval('[data-route]', (els) =>
      els.map((el) => {
        const row = el.querySelector('tr[data-requests]');
        return [el.getAttribute('data-route'), Number(row?.getAttribute('data-requests')), Number(row?.getAttribute('data-denied')), el.querySelector('[data-health]')?.getAttribute('data-health'), el.querySelector('code.cmd')?.textContent];
      }),
    );
    assert.deepEqual(routeRows, [
      ['internal', 3, 3, 'up', 'npx crm-gateway audit search --since 24h --route internal'],
      ['public', 5, 2, 'up', 'npx crm-gateway audit search --since 24h --route public'],
      ['broken', 1, 0, 'down', 'npx crm-gateway audit search --since 24h --route broken'],
      ['crm', 4, 1, 'up', 'npx crm-gateway audit search --since 24h --route crm'],
    ]);
    const reasons = await page.$$eval('svg[data-chart="denials"] g.row', (rows) => rows.map((r) => [r.getAttribute('data-label'), Number(r.getAttribute('data-count'))]));
    assert.deepEqual(reasons, [
      ['IP_DENIED', 3],
      ['RATE_LIMITED', 2],
      ['AUTH_INVALID', 1],
    ]);
    const reasonCommands = await page.$$eval('table[data-list="reasons"] code.cmd', (els) => els.map((e) => e.textContent));
    assert.deepEqual(reasonCommands, [
      'npx crm-gateway audit search --since 24h --reason IP_DENIED',
      'npx crm-gateway audit search --since 24h --status 429',
      'npx crm-gateway audit search --since 24h --reason AUTH_INVALID',
    ]);
    const top = (kind: string): Promise<(string | number | null | undefined)[][]> =>
      page.$$eval(`table[data-top="${kind}"] tr[data-value]`, (rows) => rows.map((r) => [r.getAttribute('data-value'), Number(r.getAttribute('data-count')), r.querySelector('code')?.textContent]));
    assert.deepEqual(await top('users'), [[ADMIN.name, 2, 'npx crm-gateway audit search --since 24h --user root']]);
    assert.deepEqual(await top('clients'), [['client:ops', 1, 'npx crm-gateway audit search --since 24h --user client:ops']]);
    assert.deepEqual(await top('addresses'), [['127.0.0.1', 13, 'npx crm-gateway audit search --since 24h --ip 127.0.0.1']]);
    const paths = await page.$$eval('table[data-top="paths"] tr[data-value]', (rows) => rows.map((r) => [r.getAttribute('data-value'), Number(r.getAttribute('data-count')), Number(r.getAttribute('data-denied'))]));
    assert.deepEqual(paths, [
      ['/public/y', 5, 2],
      ['/records', 4, 1],
      ['/internal/x', 3, 3],
      ['/', 1, 0],
    ]);
    // Requests over time: 24 hourly columns holding the 13 requests, 6 of them denied.
    const columns = await page.$$eval('svg[data-chart="requests"] g.col', (cols) => cols.map((c) => (c.getAttribute('data-values') ?? '').split(',').map(Number)));
    assert.equal(columns.length, 24);
    assert.deepEqual(
      columns.reduce((a, [ok = 0, den = 0]) => [a[0] + ok, a[1] + den], [0, 0]),
      [7, 6],
    );
    const alerts = await page.$$eval('table[data-list="alerts"] tr[data-alert]', (rows) => rows.map((r) => r.getAttribute('data-alert')));
    assert.deepEqual(alerts, ['new_ip_for_user', 'upstream_down']);
    assert.equal(await page.$$eval('table[data-list="alerts"] img, table[data-list="alerts"] script', (els) => els.length), 0, 'attacker text stays text');

    // Status cards: the test certificate, today's audit chains, backups off.
    assert.equal(await page.getAttribute('[data-status="certificate"]', 'data-state'), 'ok');
    assert.match((await page.textContent('[data-status="certificate"]')) ?? '', /expires in \d+ days/);
    assert.equal(await page.getAttribute('[data-status="audit-chain"]', 'data-state'), 'ok');
    assert.equal(await page.getAttribute('[data-status="backup"]', 'data-state'), 'off');
    assert.equal(await page.getAttribute('[data-status="upstreams"]', 'data-state'), 'fail');

    // Local time: the period in Bogotá time (UTC-5), by the snapshot's own UTC bounds.
    const token = auth.tokens.issue({ sub: ADMIN.name, roles: ['admin'], ttlMs: 60_000, typ: 'access' }).token;
    const snap = JSON.parse((await adminRequest('/security.json', { headers: { authorization: `Bearer ${token}` } })).body) as { from: string };
    const localFrom = new Date(Date.parse(snap.from) + OFFSET_MS).toISOString().slice(0, 16).replace('T', ' ');
    const period = (await page.textContent('[data-period]')) ?? '';
    assert.ok(period.includes(localFrom) && period.includes('GMT-5') && period.includes(ZONE), period);

    // The bars are drawn under the CSP (hashed inline style applied).
    const box = await (await page.$('svg[data-chart="denials"] rect.bar'))?.boundingBox();
    assert.ok(box && box.width > 10 && box.height > 5, JSON.stringify(box));
    assert.equal(await page.$eval('svg[data-chart="requests"] rect.den', (el) => (globalThis as unknown as { getComputedStyle(e: unknown): { fill: string } }).getComputedStyle(el).fill), 'rgb(192, 57, 43)');
    await page.setViewportSize({ width: 1100, height: 900 });
    await page.screenshot({ path: '/tmp/overview.png', fullPage: true });

    // Range: links, no script.
    await Promise.all([page.waitForNavigation(), page.click('a[data-range="7d"]')]);
    assert.equal(new URL(page.url()).search, '?range=7d');
    assert.equal(await page.getAttribute('a[data-range="7d"]', 'aria-current'), 'page');
    assert.equal(await figure('requests'), '13');
    assert.equal(await page.$$eval('svg[data-chart="requests"] g.col', (c) => c.length), 28);
    assert.equal(await page.textContent('[data-route="internal"] code.cmd'), 'npx crm-gateway audit search --since 7d --route internal');
    await Promise.all([page.waitForNavigation(), page.click('a[data-range="30d"]')]);
    assert.equal(await page.$$eval('svg[data-chart="requests"] g.col', (c) => c.length), 30);
    assert.equal(await figure('denials'), '6');

    assert.deepEqual([...new Set(requested.map((u) => new URL(u).origin))], [adminUrl], `only the admin listener was asked: ${requested.join(', ')}`);
    assert.deepEqual(problems, []);

    // A page on another site (another origin on this very machine) posts the sign-out form at the
    // overview: refused, and the session still opens the page.
    const evil = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<!doctype html><form method="post" action="${adminUrl}/security/logout"><input type="hidden" name="csrf" value="guess"><button id="go">win a prize</button></form>`);
    });
    await new Promise<void>((r) => evil.listen(0, '127.0.0.1', r));
    try {
      await page.goto(`http://evil.localhost:${(evil.address() as AddressInfo).port}/`);
      const [crossSite] = await Promise.all([page.waitForNavigation(), page.click('#go')]);
      assert.equal(crossSite?.status(), 403);
      assert.match((await page.textContent('body')) ?? '', /CSRF_REJECTED/);
    } finally {
      await new Promise<void>((r) => evil.close(() => r()));
    }
    await page.goto(`${adminUrl}/security`);
    assert.equal(new URL(page.url()).pathname, '/security', 'still signed in');

    // Sign out: the session is gone on the server, not only in this browser.
    await Promise.all([page.waitForNavigation(), page.click('form.out button')]);
    assert.equal(new URL(page.url()).pathname, '/security/login');
    const replay = await adminRequest('/security.json', { headers: { cookie: `crmgw_admin=${session.value}` } });
    assert.equal(replay.status, 401);
    const events = await securityLog();
    assert.ok(events.some((e) => e.event === 'auth.login_succeeded' && e.user === ADMIN.name && e.surface === 'admin'));
    assert.ok(events.some((e) => e.event === 'admin.overview_viewed' && e.user === ADMIN.name && e.via === 'sign-in' && e.range === '30d'));
    assert.ok(events.some((e) => e.event === 'auth.logout' && e.user === ADMIN.name && e.surface === 'admin'));
  } finally {
    await context.close();
  }
});

test('a session cookie opens nothing when the account loses the admin role, and a cross-site sign-out is refused', async () => {
  const answer = await postSignIn(ADMIN.name, ADMIN.password);
  assert.equal(answer.status, 303);
  const cookie = (answer.headers['set-cookie'] ?? []).find((c) => c.startsWith('crmgw_admin='))?.split(';')[0] as string;
  assert.equal((await adminRequest('/security.json', { headers: { cookie } })).status, 200);
  const forged = await adminRequest('/security/logout', { method: 'POST', headers: { cookie, origin: 'https://evil.example', 'content-type': 'application/x-www-form-urlencoded' }, body: 'csrf=x' });
  assert.equal(errorCode(forged), 'CSRF_REJECTED');
  assert.equal((await adminRequest('/security.json', { headers: { cookie } })).status, 200, 'still signed in');
  await auth.store.updateUser(ADMIN.name, { roles: ['staff'] });
  try {
    const refused = await adminRequest('/security.json', { headers: { cookie } });
    assert.equal(refused.status, 403);
    assert.equal(errorCode(refused), 'ROLE_FORBIDDEN');
  } finally {
    await auth.store.updateUser(ADMIN.name, { roles: ['admin'] });
  }
});

test('the overview sign-in shares the lockout of /auth/login: after 5 wrong passwords the account is locked, even for the right one', async () => {
  const name = 'lock-me';
  await addUser(auth, name, 'the right password for lock-me', ['admin']);
  for (let i = 0; i < 5; i++) assert.equal((await postSignIn(name, `wrong ${i}`)).status, 401);
  const locked = await postSignIn(name, 'the right password for lock-me');
  assert.equal(locked.status, 429);
  assert.ok(Number(locked.headers['retry-after']) > 0);
  assert.equal((locked.headers['set-cookie'] ?? []).some((c) => c.startsWith('crmgw_admin=')), false);
  // The same lock /auth/login checks (one store of failures and locks for both sign-ins).
  await assert.rejects(auth.lockout.check({ name, ipKey: 'elsewhere', requestId: 'x' }), /AUTH_LOCKED|locked/);
  const events = await securityLog();
  assert.ok(events.some((e) => e.event === 'auth.lockout' && String(e.subject).includes(name)));
  assert.ok(events.some((e) => e.event === 'auth.login_locked' && e.user === name && e.surface === 'admin'));
});

/** Runs the CLI from the sources, as `npx crm-gateway` would run the build, and returns its JSON lines. */
function auditSearch(args: string[]): Promise<Record<string, unknown>[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', 'const c = await import("./src/cli/main.ts"); process.exitCode = await c.run(JSON.parse(process.argv[1]));', JSON.stringify(args)], {
      cwd: process.cwd(),
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', LOG_DIR: audit.dir },
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.on('error', reject);
    child.on('close', () => resolve(out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>)));
  });
}

test('the command lines on the page find the very requests each row counts (bearer token in a browser)', async () => {
  await audit.log.flush(5_000);
  const token = auth.tokens.issue({ sub: ADMIN.name, roles: ['admin'], ttlMs: 60_000, typ: 'access' }).token;
  const context = await browser.newContext({ extraHTTPHeaders: { authorization: `Bearer ${token}` } });
  try {
    const page = await context.newPage();
    assert.equal((await page.goto(`${adminUrl}/security`))?.status(), 200);
    assert.equal(await page.$('form.out'), null, 'a bearer viewer has no sign-out form');
    const rows = [
      ...(await page.$$eval('[data-route]', (els) => els.map((el) => [Number(el.querySelector('tr[data-requests]')?.getAttribute('data-requests')), el.querySelector('code.cmd')?.textContent ?? '']))),
      ...(await page.$$eval('table[data-top="users"] tr[data-value], table[data-top="clients"] tr[data-value], table[data-top="addresses"] tr[data-value], table[data-top="paths"] tr[data-value]', (els) =>
        els.map((el) => [Number(el.getAttribute('data-count')), el.querySelector('code.cmd')?.textContent ?? '']),
      )),
      ...(await page.$$eval('table[data-list="reasons"] tr[data-reason]', (els) => els.map((el) => [Number(el.querySelector('td.n')?.textContent), el.querySelector('code.cmd')?.textContent ?? '']))),
    ] as [number, string][];
    assert.equal(rows.length, 4 + 3 + 4 + 3);
    for (const [count, command] of rows) {
      assert.doesNotMatch(command, /['"|]/, 'plain words: split as a shell would');
      const words = command.split(' ');
      assert.deepEqual(words.slice(0, 2), ['npx', 'crm-gateway']);
      const found = (await auditSearch([...words.slice(2), '--dir', audit.dir, '--json'])).filter((m) => m.stream === 'access');
      assert.equal(found.length, count, command);
    }
  } finally {
    await context.close();
  }
});

test('the admin listener answers only its own names on every path, and says which methods a path takes', async () => {
  for (const path of ['/readyz', '/metrics', '/healthz']) {
    const rebound = await adminRequest(path, { headers: { host: `attacker.example:${running.ports.admin}` } });
    assert.equal(rebound.status, 400, path);
    assert.equal(errorCode(rebound), 'HOST_INVALID', path);
    assert.doesNotMatch(rebound.body, /upstream|crmgw_/, `${path} tells a rebound page nothing`);
  }
  for (const [path, method, allow] of [
    ['/readyz', 'OPTIONS', 'GET, HEAD'],
    ['/security', 'TRACE', 'GET, HEAD'],
    ['/security/login', 'PUT', 'GET, HEAD, POST'],
  ] as const) {
    const refused = await adminRequest(path, { method });
    assert.equal(refused.status, 405, `${method} ${path}`);
    assert.equal(refused.headers.allow, allow, `${method} ${path}`);
  }
});

test('the sign-in page speaks the browser language: Spanish by default, English when asked', async () => {
  const es = await adminRequest('/security/login');
  assert.match(es.body, /<html lang="es">/);
  assert.match(es.body, /Iniciar sesión|Inicie sesión/);
  assert.equal(es.headers['content-language'], 'es');
  const en = await adminRequest('/security/login', { headers: { 'accept-language': 'en-GB,en;q=0.8' } });
  assert.match(en.body, /<html lang="en">/);
  assert.match(en.body, /admin role/);
  assert.match(en.headers.vary ?? '', /Accept-Language/);
});

test('a blocked admin account reads no overview: its bearer token and its sign-in are refused with ACCOUNT_BLOCKED', async () => {
  const name = 'blocked-admin';
  const password = 'the password of blocked-admin';
  await addUser(auth, name, password, ['admin']);
  const token = auth.tokens.issue({ sub: name, roles: ['admin'], ttlMs: 60_000, typ: 'access' }).token;
  assert.equal((await adminRequest('/security.json', { headers: { authorization: `Bearer ${token}` } })).status, 200);
  await containment.store.add({ kind: 'user', target: name, reason: 'token leaked', until: Date.now() + 60_000, createdAt: Date.now(), by: 'test', source: 'manual' });
  await waitFor(() => containment.blocks.subject(name) !== undefined, 'the block is in force');
  const bearer = await adminRequest('/security.json', { headers: { authorization: `Bearer ${token}` } });
  assert.equal(bearer.status, 403);
  assert.equal(errorCode(bearer), 'ACCOUNT_BLOCKED');
  const signIn = await postSignIn(name, password);
  assert.equal(signIn.status, 403);
  assert.match(signIn.body, /This account is blocked/);
  assert.equal((signIn.headers['set-cookie'] ?? []).some((c) => c.startsWith('crmgw_admin=')), false);
  const events = await securityLog();
  assert.ok(events.some((e) => e.event === 'admin.overview_denied' && e.reason === 'account blocked' && e.user === name));
});

// Last in the file: it locks 127.0.0.1 for every sign-in of this gateway.
test('one address budget for every sign-in: failures counted at /auth/login lock the overview sign-in too, and its events carry the plain address', async () => {
  const client = normalizeIp('127.0.0.1');
  // What /auth/login records for 20 wrong passwords from this address, each for another name.
  for (let i = 0; i < 20; i++) await auth.lockout.failed(loginAttempt(`someone-${i}`, client, `r${i}`), 'unknown user');
  const locked = await postSignIn(ADMIN.name, ADMIN.password);
  assert.equal(locked.status, 429, 'the right admin password from a locked address');
  assert.equal((locked.headers['set-cookie'] ?? []).some((c) => c.startsWith('crmgw_admin=')), false);
  const events = await securityLog();
  const lockedEvent = events.find((e) => e.event === 'auth.login_locked' && e.user === ADMIN.name && e.surface === 'admin');
  assert.ok(lockedEvent);
  assert.equal(lockedEvent.clientIp, '127.0.0.1');
  for (const e of events.filter((x) => x.event === 'auth.login_failed' || x.event === 'auth.lockout')) {
    assert.doesNotMatch(String(e.clientIp), /^ip:/, 'the plain address, never the lockout key');
    assert.doesNotMatch(String(e.subject ?? ''), /ip:ip:/);
  }
});
