import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { httpsRequest, testCertificate, testConfig } from '../helpers/harness.js';
import { startTestAudit, type TestAudit } from '../helpers/audit.js';
import { addUser, randomSecret } from '../helpers/auth-gateway.js';
import { SessionClient } from '../helpers/session-client.js';
import { startEchoUpstream, type EchoUpstream } from '../../src/demo/echo-upstream.js';
import { createAuthService, type AuthService } from '../../src/auth/service.js';
import { createAdminAuth } from '../../src/auth/admin-auth.js';
import { startGateway, type RunningGateway } from '../../src/server/start.js';
import { ACCESS_COOKIE } from '../../src/auth/cookies.js';
import { logLines } from '../helpers/gateway-process.js';
import { waitFor } from '../helpers/wait.js';
import { runCli } from '../helpers/cli.js';

// Issue 14, item 4: the security overview lists staff sessions and an admin revokes one there.
// Embedded stores (no Redis): the registry is data/sessions.json, the end a revocations.json entry.

const ADMIN = { name: 'root', password: 'correct horse battery staple 42' };
const STAFF = { name: 'val', password: 'another long enough password 7' };

let audit: TestAudit;
let upstream: EchoUpstream;
let auth: AuthService;
let running: RunningGateway;
let dataDir: string;
let ca: string;
let adminUrl: string;
const secret = randomSecret();
const ROUTES = `
  - name: nocodb
    host: nocodb.test.local
    upstream: UPSTREAM
    auth: session
    roles: [staff]
  - name: metabase
    host: metabase.test.local
    upstream: UPSTREAM
    auth: session
    roles: [staff]
`;

before(async () => {
  audit = await startTestAudit();
  upstream = await startEchoUpstream('overview-sessions-upstream');
  dataDir = mkdtempSync(join(tmpdir(), 'crm-gw-overview-sessions-'));
  const cert = await testCertificate();
  ca = readFileSync(cert.cert, 'utf8');
  // No second factor required of admins here (src/auth/mfa/; test/e2e/mfa.test.ts covers it).
  const config = testConfig(ROUTES, upstream.url, cert, { API_SECRET_KEY: secret, DATA_DIR: dataDir, LOG_DIR: audit.dir, TRUSTED_PROXIES: '127.0.0.1', PUBLIC_HTTPS_PORT: '8443' }, 'auth: { mfa: { requiredRoles: [] } }');
  const made = await createAuthService(config, { log: audit.log, redis: undefined, postgres: undefined });
  assert.ok(made);
  auth = made;
  await addUser(auth, ADMIN.name, ADMIN.password, ['admin']);
  await addUser(auth, STAFF.name, STAFF.password, ['staff']);
  running = await startGateway(config, { log: audit.log, auth, adminAuth: createAdminAuth(auth), securityOverview: audit.log.overview });
  adminUrl = `http://127.0.0.1:${running.ports.admin}`;
});

after(async () => {
  await running?.shutdown();
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

function adminRequest(path: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: running.ports.admin, path, method: opts.method ?? 'GET', headers: opts.headers ?? {}, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

const staffBrowser = (): SessionClient => new SessionClient({ request: (o) => httpsRequest(running.ports.https, ca, o) }, 'nocodb.test.local');

/** The admin signed in to the overview: its session cookie and the page's form token. */
async function adminSignIn(): Promise<{ cookie: string; csrf: string }> {
  const form = await adminRequest('/security/login');
  const csrf = /name="csrf" value="([^"]+)"/.exec(form.body)?.[1] as string;
  const formCookie = (form.headers['set-cookie'] ?? []).find((c) => c.startsWith('crmgw_admin_csrf='))?.split(';')[0] as string;
  const posted = await adminRequest('/security/login', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: formCookie, origin: adminUrl, 'sec-fetch-site': 'same-origin' },
    body: new URLSearchParams({ csrf, rd: '/security', username: ADMIN.name, password: ADMIN.password }).toString(),
  });
  assert.equal(posted.status, 303, posted.body);
  const cookie = (posted.headers['set-cookie'] ?? []).find((c) => c.startsWith('crmgw_admin='))?.split(';')[0] as string;
  const page = await adminRequest('/security', { headers: { cookie, accept: 'text/html' } });
  assert.equal(page.status, 200);
  const pageCsrf = /action="\/security\/sessions\/revoke"><input type="hidden" name="csrf" value="([^"]+)"/.exec(page.body)?.[1];
  return { cookie, csrf: pageCsrf ?? (/name="csrf" value="([^"]+)"/.exec(page.body)?.[1] as string) };
}

const sidOf = (c: SessionClient): string => String((JSON.parse(Buffer.from((c.jar.get(ACCESS_COOKIE) as string).split('.')[1] as string, 'base64url').toString()) as { sid: string }).sid);

test('the overview lists staff sessions; an admin revokes one with its form, and that session is refused on every host at once', async () => {
  const staff = staffBrowser();
  await staff.login(STAFF.name, STAFF.password);
  const sid = sidOf(staff);
  assert.equal(statSync(join(dataDir, 'sessions.json')).mode & 0o777, 0o600, 'the embedded registry is private');
  const admin = await adminSignIn();
  const page = await adminRequest('/security', { headers: { cookie: admin.cookie, accept: 'text/html' } });
  assert.match(page.body, new RegExp(`<tr data-session="${sid}" data-user="${STAFF.name}">`));
  assert.match(page.body, /<h2>Staff sessions <span data-total-sessions="1">/);
  const json = JSON.parse((await adminRequest('/security.json', { headers: { cookie: admin.cookie } })).body) as { sessions: { id: string; subject: string }[] };
  assert.deepEqual(json.sessions.map((s) => [s.id, s.subject]), [[sid, STAFF.name]]);

  const before = upstream.seen.length;
  const revoke = (fields: Record<string, string>, headers: Record<string, string> = {}): Promise<Answer> =>
    adminRequest('/security/sessions/revoke', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: admin.cookie, origin: adminUrl, 'sec-fetch-site': 'same-origin', ...headers }, body: new URLSearchParams(fields).toString() });
  // Hostile first: cross-site, no token, a wrong token, an unknown id, no sign-in.
  assert.equal((await revoke({ csrf: admin.csrf, id: sid }, { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' })).status, 403);
  assert.equal((await revoke({ id: sid })).status, 403);
  assert.equal((await revoke({ csrf: 'wrong', id: sid })).status, 403);
  const unknown = await revoke({ csrf: admin.csrf, id: 'A'.repeat(22) });
  assert.equal(unknown.status, 404);
  assert.equal((JSON.parse(unknown.body) as { error: { code: string } }).error.code, 'AUTH_SESSION_NOT_FOUND');
  const anonymous = await adminRequest('/security/sessions/revoke', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: adminUrl }, body: `id=${sid}` });
  assert.equal(anonymous.status, 401);
  assert.equal((await staff.send({ path: '/still', headers: { accept: 'application/json' } })).status, 200, 'none of those ended it');
  // The real thing.
  const done = await revoke({ csrf: admin.csrf, id: sid });
  assert.equal(done.status, 303, done.body);
  assert.equal(done.headers.location, '/security');
  const refused = await staff.send({ path: '/after', headers: { accept: 'application/json' } });
  assert.equal(refused.status, 401);
  assert.equal(refused.json<{ error: { code: string } }>().error.code, 'AUTH_REVOKED');
  assert.equal(upstream.seen.length, before + 1, 'only the one request before the revocation reached the upstream');
  const events = (): Record<string, unknown>[] => logLines(audit.dir, 'security');
  await waitFor(() => events().some((e) => e.event === 'auth.session_revoked'), 'the revocation event', 5_000);
  const event = events().find((e) => e.event === 'auth.session_revoked' && e.sessionId === sid);
  assert.ok(event && event.actor === ADMIN.name && event.reason === 'overview' && event.user === STAFF.name, JSON.stringify(event));
  assert.ok(events().some((e) => e.event === 'auth.session_revoke_refused'), 'the unknown id was recorded');
  const afterPage = await adminRequest('/security', { headers: { cookie: admin.cookie, accept: 'text/html' } });
  assert.doesNotMatch(afterPage.body, new RegExp(sid));
});

test('embedded stores: the CLI lists the running gateway\'s sessions from data/sessions.json and its revoke reaches it through revocations.json', async () => {
  const staff = staffBrowser();
  await staff.login(STAFF.name, STAFF.password);
  const sid = sidOf(staff);
  const work = mkdtempSync(join(tmpdir(), 'crm-gw-sessions-cli-'));
  try {
    writeFileSync(join(work, 'gateway.yaml'), `routes:${ROUTES.replace(/UPSTREAM/g, upstream.url)}`);
    const env = { GATEWAY_CONFIG: join(work, 'gateway.yaml'), API_SECRET_KEY: secret, DATA_DIR: dataDir, LOG_DIR: join(work, 'logs') };
    const listed = await runCli(['sessions', 'list', '--json'], env);
    assert.equal(listed.code, 0, listed.stderr);
    assert.ok((JSON.parse(listed.stdout) as { sessions: { id: string }[] }).sessions.some((s) => s.id === sid));
    const revoked = await runCli(['sessions', 'revoke', sid], env);
    assert.equal(revoked.code, 0, revoked.stderr);
    await waitFor(async () => (await staff.send({ path: '/poll', headers: { accept: 'application/json' } })).status === 401, 'the gateway to refuse the session', 5_000);
    const again = await runCli(['sessions', 'revoke', sid], env);
    assert.equal(again.code, 1, 'an ended session is no longer in the registry');
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
