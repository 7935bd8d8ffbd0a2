import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { Redis } from 'ioredis';
import { SSO_STATE_COOKIE } from '../../src/auth/cookies.js';
import { createAuthService, type AuthService } from '../../src/auth/service.js';
import { startEchoUpstream, type EchoUpstream } from '../../src/demo/echo-upstream.js';
import { startGateway, type RunningGateway } from '../../src/server/start.js';
import { createRedis } from '../../src/stores/redis.js';
import { shortTokenHash } from '../../src/audit/redact/identifiers.js';
import { startTestAudit, type TestAudit } from '../helpers/audit.js';
import { REDIS_URL, addUser, randomSecret, uniq } from '../helpers/auth-gateway.js';
import { httpsRequest, testCertificate, testConfig, type RequestOptions, type TestResponse } from '../helpers/harness.js';
import { HostBrowser, formField, setCookieLine } from '../helpers/session-client.js';

// The SSO hand-off's one-time code and state travel in URLs (src/auth/sso/handoff.ts): neither
// may reach the access or security log files (src/audit/redact/redact.ts, URL_CREDENTIAL_NAMES), while
// the gateway's own error codes stay readable in the same lines.

const PORT = 8443;
const S = 'nocodb.test.local';
const T = 'metabase.test.local';
const ROUTES = `
  - name: nocodb
    host: ${S}
    upstream: UPSTREAM
    auth: session
    roles: [staff]
  - name: metabase
    host: ${T}
    upstream: UPSTREAM
    auth: session
    roles: [staff]
`;
const PASSWORD = 'correct horse battery staple';

let audit: TestAudit;
let upstream: EchoUpstream;
let redis: Redis | undefined;
let auth: AuthService;
let running: RunningGateway;
let dataDir: string;
let requester: { request(opts: RequestOptions): Promise<TestResponse> };

before(async () => {
  audit = await startTestAudit();
  const cert = await testCertificate();
  upstream = await startEchoUpstream('test-upstream');
  dataDir = mkdtempSync(join(tmpdir(), 'crm-gw-sso-log-'));
  const config = testConfig(ROUTES, upstream.url, cert, { API_SECRET_KEY: randomSecret(), DATA_DIR: dataDir, REDIS_URL, TRUSTED_PROXIES: '127.0.0.1', PUBLIC_HTTPS_PORT: String(PORT) });
  redis = await createRedis(config, audit.log);
  const r = redis;
  if (r && r.status !== 'ready') await new Promise<void>((resolve) => r.once('ready', () => resolve()));
  auth = (await createAuthService(config, { log: audit.log, redis })) as AuthService;
  running = await startGateway(config, { log: audit.log, redis, auth });
  const ca = readFileSync(cert.cert, 'utf8');
  requester = { request: (r) => httpsRequest(running.ports.https, ca, r) };
});

after(async () => {
  await running?.shutdown();
  await auth?.close();
  await redis?.quit();
  await upstream?.close();
  await audit?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

const origin = (host: string): string => `https://${host}:${PORT}`;

function logText(stream: 'access' | 'security' | 'app'): string {
  return readdirSync(audit.dir)
    .filter((n) => n.startsWith(`${stream}-`))
    .map((n) => (n.endsWith('.gz') ? gunzipSync(readFileSync(join(audit.dir, n))).toString('utf8') : readFileSync(join(audit.dir, n), 'utf8')))
    .join('\n');
}

const records = (stream: 'access' | 'security'): Record<string, unknown>[] =>
  logText(stream)
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

test('an SSO hand-off (signed out, then signed in, then a replayed code): no code or state in the access or security log files', async () => {
  const b = new HostBrowser(requester);
  const name = uniq('ssolog');
  await addUser(auth, name, PASSWORD, ['staff']);

  // Signed out: T → begin → S start → S login form whose rd returns to start with the state.
  const first = await b.navigate(`${origin(T)}/report?page=3`);
  const form = first.at(-1) as { url: string; res: TestResponse };
  assert.equal(new URL(form.url).pathname, '/auth/login');
  const stateCookie = setCookieLine(first[1]?.res as TestResponse, SSO_STATE_COOKIE)?.value as string;
  const stateHash = new URL(String(first[1]?.res.headers.location)).searchParams.get('state') as string;
  assert.ok(stateCookie && stateHash, 'the state cookie and its hash in the start URL');
  const rd = formField(form.res.body, 'rd') as string;
  const posted = await b.on(S).postLogin({ csrf: formField(form.res.body, 'csrf') as string, rd, username: name, password: PASSWORD });
  assert.equal(posted.status, 303);
  const rest = await b.navigate(new URL(String(posted.headers.location), origin(S)).href);
  const callbackHop = rest.find((h) => new URL(h.url).pathname === '/auth/sso/callback');
  const code = new URL(callbackHop?.url as string).searchParams.get('code') as string;
  assert.match(code, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(rest.at(-1)?.res.status, 200, 'signed in on T');

  // The same code again: refused, with its stable error code in the lines.
  const replay = await b.on(T).send({ path: `/auth/sso/callback?code=${code}`, html: true });
  assert.equal(replay.status, 400);
  assert.match(replay.body, /AUTH_SSO_CODE_INVALID/);

  assert.ok(await audit.log.flush(5_000), 'the lines are written');
  const everything = `${logText('access')}\n${logText('security')}\n${logText('app')}`;
  for (const [what, value] of [['code', code], ['state cookie', stateCookie], ['state hash', stateHash]] as const) {
    assert.ok(!everything.includes(value), `the ${what} is in a log file`);
    assert.ok(!everything.includes(encodeURIComponent(value)), `the ${what} is in a log file, escaped`);
  }
  const access = records('access');
  const callbacks = access.filter((r) => r.path === '/auth/sso/callback');
  assert.equal(callbacks.length, 2, 'both callbacks are logged');
  for (const line of callbacks) assert.equal(line.query, `code=${shortTokenHash(code)}`, 'the code appears as its short hash only');
  assert.equal(callbacks[1]?.code, 'AUTH_SSO_CODE_INVALID', "the access line keeps the gateway's error code");
  const login = access.find((r) => r.path === '/auth/login' && String(r.query).startsWith('rd='));
  assert.ok(login, 'the login form with its return URL is logged');
  assert.ok(String(login.query).includes(encodeURIComponent(`state=${shortTokenHash(stateHash)}`)), `the return URL is kept, its state hashed: ${String(login.query)}`);
  const security = records('security');
  const denied = security.find((r) => r.event === 'auth.sso_refused' && r.code === 'AUTH_SSO_CODE_INVALID');
  assert.ok(denied, 'the refusal is a security event with its error code');
  assert.ok(security.some((r) => r.event === 'auth.sso_signed_in' && r.user === name));
  assert.ok(access.some((r) => r.path === '/report' && r.query === 'page=3' && r.status === 200), 'other queries are logged as they are');
});
