import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { AddressInfo } from 'node:net';
import { startTestGateway, rawTlsExchange, firstStatus, type TestGateway, type TestResponse } from '../helpers/harness.js';
import { startTestAudit, alertsConfig, tempDir, type TestAudit, rawSecurity } from '../helpers/audit.js';
import { addUser, claimsFor, randomSecret, ringToken } from '../helpers/auth-gateway.js';
import { waitFor } from '../helpers/wait.js';
import { parseConfig } from '../../src/config/load.js';
import { createAuthService, type AuthService } from '../../src/auth/service.js';
import { verifyLogDir } from '../../src/audit/offline/verify.js';
import { FileHeadStore } from '../../src/audit/writer/heads.js';
import { spawnSync } from 'node:child_process';
import { SessionClient } from '../helpers/session-client.js';
import { createGatewayMetrics, type GatewayMetrics } from '../../src/metrics/gateway.js';

const ROUTES = `
  - name: public
    host: api.test.local
    path: /public
    upstream: UPSTREAM
    auth: none
    maxBody: 1kb
  - name: limited
    host: api.test.local
    path: /limited
    upstream: UPSTREAM
    auth: none
    rateLimit: { window: 1m, max: 2 }
  - name: internal
    host: api.test.local
    path: /internal
    upstream: UPSTREAM
    auth: none
    ipAllowlist: [10.0.0.0/8]
  - name: api
    host: api.test.local
    path: /api
    upstream: UPSTREAM
    auth: jwt
    roles: [api]
  - name: cors
    host: api.test.local
    path: /cors
    upstream: UPSTREAM
    auth: none
    cors: { origins: ["https://app.test.local"] }
  - name: down
    host: api.test.local
    path: /down
    upstream: http://127.0.0.1:1
    auth: none
  - name: nows
    host: api.test.local
    path: /nows
    upstream: UPSTREAM
    auth: none
    websocket: false
  - name: root
    host: api.test.local
    upstream: UPSTREAM
    auth: none
`;

/** Every credential and personal value the issue lists, sent in every way a client can send it. */
const S = {
  cookie: 'cookie-secret-3f9a1c',
  metabaseCookie: 'mb-cookie-secret-77e0',
  setCookie: 'set-cookie-secret-0c1d',
  xcAuth: 'xc-auth-secret-91ab',
  xcToken: 'xc-token-secret-5e2f',
  metabase: 'metabase-session-secret-44aa',
  apiKey: 'x-api-key-secret-8d8d',
  verifyToken: 'hub-verify-token-secret-1234',
  queryPassword: 'query-password-secret-77',
  queryToken: 'query-token-secret-88',
  querySecret: 'query-secret-secret-99',
  queryApiKey: 'query-apikey-secret-00',
  clientSecret: 'client-secret-value-xyz123',
  bodyPassword: 'body-password-secret-5a',
  phone: '34600111222',
  messageText: 'message body text that must never be logged',
};

let audit: TestAudit;
let gw: TestGateway;
let auth: AuthService;
let secret: string;
let aliceToken: string;
let dataDir: string;
let metrics: GatewayMetrics;
const hooks: Record<string, unknown>[] = [];
let hookServer: http.Server;

function secretHeaders(): Record<string, string | string[]> {
  return {
    cookie: `crmgw_session=${S.cookie}; metabase.SESSION=${S.metabaseCookie}`,
    'set-cookie': `sid=${S.setCookie}`,
    'xc-auth': S.xcAuth,
    'xc-token': S.xcToken,
    'x-metabase-session': S.metabase,
    'x-api-key': S.apiKey,
  };
}

const SECRET_QUERY = `hub.mode=subscribe&hub.verify_token=${S.verifyToken}&hub.challenge=7&password=${S.queryPassword}&token=${S.queryToken}&secret=${S.querySecret}&api_key=${S.queryApiKey}&page=2`;

before(async () => {
  hookServer = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      hooks.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => hookServer.listen(0, '127.0.0.1', r));
  const webhookUrl = `http://127.0.0.1:${(hookServer.address() as AddressInfo).port}/alerts`;
  // One gateway's metrics, as main.ts builds them: the audit logger counts in the gateway's registry.
  metrics = createGatewayMetrics();
  audit = await startTestAudit({ alerts: { ...alertsConfig('alerts: { failedLogins: { perIp: 3, perUser: 10 } }'), webhookUrl }, webhook: { retryMs: 20 }, metrics: metrics.log }, { keep: true });
  secret = randomSecret();
  dataDir = tempDir('crm-gw-audit-data-');
  const env = { API_SECRET_KEY: secret, DATA_DIR: dataDir };
  const authCfg = parseConfig(`routes:\n${ROUTES.replaceAll('UPSTREAM', 'http://127.0.0.1:9')}`, { ...env, GATEWAY_DOMAIN: 'test.local' });
  auth = (await createAuthService(authCfg, { log: audit.log })) as AuthService;
  await addUser(auth, 'alice', 'alice-long-password-1', ['api']);
  await addUser(auth, 'bob', 'bob-long-password-22', ['viewer']);
  gw = await startTestGateway(ROUTES, env, '', { auth, log: audit.log, metrics });
  aliceToken = ringToken(secret, claimsFor('alice', { roles: ['api'] }));
});

after(async () => {
  await gw?.close();
  await auth?.close();
  await audit?.close();
  rmSync(audit.dir, { recursive: true, force: true });
  rmSync(dataDir, { recursive: true, force: true });
  await new Promise<void>((r) => hookServer.close(() => r()));
});

function records(stream: 'access' | 'security' | 'app'): Record<string, unknown>[] {
  return readdirSync(audit.dir)
    .filter((n) => n.startsWith(`${stream}-`))
    .flatMap((n) => (n.endsWith('.gz') ? gunzipSync(readFileSync(join(audit.dir, n))).toString('utf8') : readFileSync(join(audit.dir, n), 'utf8')).split('\n'))
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

function allLogText(): string {
  return readdirSync(audit.dir)
    .map((n) => (n.endsWith('.gz') ? gunzipSync(readFileSync(join(audit.dir, n))).toString('utf8') : readFileSync(join(audit.dir, n), 'utf8')))
    .join('\n');
}

async function lineFor(res: TestResponse | string): Promise<{ access: Record<string, unknown>; denied: Record<string, unknown> | undefined }> {
  const id = typeof res === 'string' ? res : String(res.headers['x-request-id']);
  await audit.log.flush(5_000);
  let access: Record<string, unknown> | undefined;
  await waitFor(async () => {
    await audit.log.flush(5_000);
    access = records('access').find((r) => r.requestId === id);
    return access !== undefined;
  }, `the access line of ${id}`);
  const denied = records('security').find((r) => r.event === 'request.denied' && r.requestId === id);
  return { access: access as Record<string, unknown>, denied };
}

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

test('a forwarded request: every field of the access line', async () => {
  const res = await gw.request({ path: `/api/contacts?${SECRET_QUERY}`, headers: { authorization: `Bearer ${aliceToken}`, ...secretHeaders() } });
  assert.equal(res.status, 200);
  const { access } = await lineFor(res);
  assert.match(String(access.time), ISO_UTC);
  assert.equal(access.requestId, res.headers['x-request-id']);
  assert.equal(access.kind, 'http');
  assert.equal(access.clientIp, '127.0.0.1');
  assert.equal(access.method, 'GET');
  assert.equal(access.host, 'api.test.local');
  assert.equal(access.path, '/api/contacts');
  assert.equal(access.route, 'api');
  assert.equal(access.upstream, gw.upstream.url.replace(/\/$/, ''));
  assert.equal(access.status, 200);
  assert.equal(access.outcome, 'forwarded');
  assert.equal(access.user, 'alice');
  assert.deepEqual(access.roles, ['api']);
  assert.equal(access.authMethod, 'jwt');
  assert.equal(typeof access.bytesIn, 'number');
  assert.ok(Number(access.bytesOut) > 0);
  assert.ok(typeof access.durationMs === 'number' && access.durationMs >= 0);
  // The upstream's own time to its response head, within the request's.
  assert.ok(typeof access.upstreamMs === 'number' && access.upstreamMs >= 0 && access.upstreamMs <= access.durationMs, String(access.upstreamMs));
  assert.equal(access.code, undefined);
  // Query values of secret-like names redacted, the others kept.
  assert.match(String(access.query), /^hub\.mode=subscribe&hub\.verify_token=sha256:[0-9a-f]{12}&hub\.challenge=7&password=\[redacted\]&token=sha256:[0-9a-f]{12}&secret=\[redacted\]&api_key=\[redacted\]&page=2$/);
  assert.equal(typeof access.seq, 'number');
  assert.match(String(access.hash), /^[0-9a-f]{64}$/);
});

test('every denial carries its reason code and detail, in the access line and a request.denied security event', async () => {
  const expired = ringToken(secret, claimsFor('alice', { iat: Math.floor(Date.now() / 1000) - 7200, exp: Math.floor(Date.now() / 1000) - 3600 }));
  const forged = ringToken(randomSecret(), claimsFor('alice'));
  const revokedClaims = claimsFor('alice');
  await auth.revocations.revoke(String(revokedClaims.jti), Number(revokedClaims.exp));
  const revoked = ringToken(secret, revokedClaims);
  const bobToken = ringToken(secret, claimsFor('bob', { roles: ['viewer'] }));
  const h = secretHeaders();
  const cases: [string, () => Promise<TestResponse>, number][] = [
    ['AUTH_REQUIRED', () => gw.request({ path: '/api/x', headers: h }), 401],
    ['AUTH_INVALID', () => gw.request({ path: '/api/x', headers: { ...h, authorization: `Bearer ${forged}` } }), 401],
    ['AUTH_EXPIRED', () => gw.request({ path: '/api/x', headers: { ...h, authorization: `Bearer ${expired}` } }), 401],
    ['AUTH_REVOKED', () => gw.request({ path: '/api/x', headers: { ...h, authorization: `Bearer ${revoked}` } }), 401],
    ['ROLE_FORBIDDEN', () => gw.request({ path: '/api/x', headers: { ...h, authorization: `Bearer ${bobToken}` } }), 403],
    ['IP_DENIED', () => gw.request({ path: '/internal/x', headers: h }), 403],
    ['CORS_ORIGIN_DENIED', () => gw.request({ method: 'POST', path: '/cors/x', headers: { ...h, origin: 'https://evil.example' }, body: '{}' }), 403],
    ['PATH_REJECTED', () => gw.request({ path: '/public/a/%2e%2e/b', headers: h }), 400],
    ['BODY_TOO_LARGE', () => gw.request({ method: 'POST', path: '/public/upload', headers: { ...h, 'content-type': 'application/json' }, body: JSON.stringify({ password: S.bodyPassword, pad: 'x'.repeat(2000) }) }), 413],
    ['ROUTE_NOT_FOUND', () => gw.request({ path: '/nowhere', host: 'nothing.test.local', headers: h }), 404],
    ['METHOD_NOT_ALLOWED', () => gw.request({ method: 'TRACE', path: '/public/x', headers: h }), 405],
    ['MISDIRECTED_REQUEST', () => gw.request({ path: '/public/x', servername: 'other.test.local', headers: h }), 421],
    ['UPSTREAM_UNAVAILABLE', () => gw.request({ path: '/down/x', headers: h }), 502],
  ];
  for (const [code, send, status] of cases) {
    const res = await send();
    assert.equal(res.status, status, `${code}: ${res.body}`);
    const { access, denied } = await lineFor(res);
    assert.equal(access.code, code, `${code} access line`);
    assert.equal(access.status, status);
    assert.ok(typeof access.detail === 'string' && access.detail.length > 0, `${code} has a detail`);
    if (status < 500) {
      assert.equal(denied?.code, code, `${code} security event`);
      assert.equal(denied?.detail, access.detail);
      assert.equal(denied?.clientIp, '127.0.0.1');
    }
  }
  // Rate limited: the third request in the window.
  await gw.request({ path: '/limited/a' });
  await gw.request({ path: '/limited/a' });
  const limited = await gw.request({ path: '/limited/a', headers: h });
  assert.equal(limited.status, 429);
  assert.equal((await lineFor(limited)).access.code, 'RATE_LIMITED');
  // A refused websocket upgrade is an access line of kind upgrade.
  const raw = await rawTlsExchange(gw.port, gw.ca, 'GET /nows/socket HTTP/1.1\r\nHost: api.test.local\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
  assert.equal(firstStatus(raw), 400);
  const upgradeId = /X-Request-Id: (\S+)/i.exec(raw)?.[1] as string;
  const up = await lineFor(upgradeId);
  assert.deepEqual([up.access.kind, up.access.code], ['upgrade', 'UPGRADE_NOT_ALLOWED']);
  // A request Node's parser refuses (two Content-Lengths) is still one line, before any routing.
  const bad = await rawTlsExchange(gw.port, gw.ca, 'POST /public/x HTTP/1.1\r\nHost: api.test.local\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab');
  assert.equal(firstStatus(bad), 400);
  const badId = /X-Request-Id: (\S+)/i.exec(bad)?.[1] as string;
  assert.equal((await lineFor(badId)).access.code, 'BAD_REQUEST');
});

test('failed client logins: AUTH_FAILED, auth.login_failed events, and the per-IP alert on the webhook', async () => {
  for (let i = 0; i < 3; i++) {
    const res = await gw.request({
      method: 'POST',
      path: '/auth/token',
      headers: { authorization: `Basic ${Buffer.from(`svc:${S.clientSecret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials',
    });
    assert.equal(res.status, 401);
    assert.equal((await lineFor(res)).access.code, 'AUTH_FAILED');
  }
  await audit.log.flush(5_000);
  assert.ok(records('security').filter((r) => r.event === 'auth.login_failed').length >= 3);
  await waitFor(() => hooks.some((h) => h.alert === 'failed_logins_ip'), 'the failed-login alert on the webhook');
  assert.ok(records('security').some((r) => r.event === 'alert.failed_logins_ip'));
});

test('a body with credentials, a phone number and a message is forwarded and never logged', async () => {
  const payload = { password: S.bodyPassword, entry: [{ changes: [{ value: { messages: [{ from: S.phone, text: { body: S.messageText } }] } }] }] };
  const res = await gw.request({ method: 'POST', path: '/public/webhook-like', headers: { 'content-type': 'application/json', ...secretHeaders() }, body: JSON.stringify(payload) });
  assert.equal(res.status, 200);
  // Fields a feature logs on purpose pass the same redaction (the webhook logs through it).
  rawSecurity(audit.log)('webhook.message_received', { from: S.phone, wa_id: S.phone, recipient_id: S.phone, text: { body: S.messageText }, requestId: String(res.headers['x-request-id']) });
  audit.log.app('info', `debug dump Authorization: Bearer ${aliceToken}`, { headers: { authorization: `Bearer ${aliceToken}`, ...secretHeaders() }, url: `/x?${SECRET_QUERY}` });
  await audit.log.flush(5_000);
  const event = records('security').find((r) => r.event === 'webhook.message_received');
  assert.match(String(event?.from), /^id:[0-9a-f]{16}$/);
  assert.equal(event?.from, event?.wa_id);
});

test('no secret from the list appears anywhere in any log, on the console channel, or in the alerts', async () => {
  await audit.log.flush(5_000);
  await audit.log.recordHeads();
  const everything = `${allLogText()}\n${audit.console()}\n${JSON.stringify(hooks)}`;
  assert.ok(everything.length > 10_000, 'the run wrote plenty');
  for (const [name, value] of Object.entries({ ...S, aliceToken, apiSecretKey: secret })) {
    assert.ok(!everything.includes(value), `${name} (${value.slice(0, 12)}…) appears in the logs`);
  }
  // The JWT's signature part alone must not appear either.
  assert.ok(!everything.includes(aliceToken.split('.')[2] as string));
});

test('the logs of the run verify, and /metrics parses as Prometheus text with the gateway series', async () => {
  await audit.log.flush(5_000);
  await audit.log.recordHeads();
  const report = await verifyLogDir(audit.dir, { records: await new FileHeadStore(audit.dir).load(), from: 'file' });
  assert.equal(report.ok, true, JSON.stringify(report.problems));

  const text = await new Promise<string>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: gw.running.ports.admin, path: '/metrics' }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString('utf8')));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
  const families = parsePrometheus(text);
  for (const name of [
    'crmgw_http_requests_total',
    'crmgw_http_request_duration_seconds',
    'crmgw_denials_total',
    'crmgw_ratelimit_rejected_total',
    'crmgw_upstream_errors_total',
    'crmgw_open_connections',
    'crmgw_nodejs_eventloop_lag_seconds',
    'crmgw_log_backlog_bytes',
    'crmgw_alerts_total',
  ]) {
    assert.ok(families.has(name), `${name} is exported`);
  }
  assert.equal(families.get('crmgw_http_request_duration_seconds')?.type, 'histogram');
  assert.match(text, /crmgw_denials_total\{reason="IP_DENIED"\} [1-9]/);
  assert.match(text, /crmgw_http_requests_total\{route="api",status="200",kind="http"\} [1-9]/);
  assert.match(text, /crmgw_ratelimit_rejected_total\{limit="limited"\} [1-9]/);
  assert.match(text, /crmgw_upstream_errors_total\{route="down",reason="UPSTREAM_UNAVAILABLE"\} [1-9]/);
  assert.match(text, /crmgw_log_backlog_bytes\{stream="access"\} \d+/);
});

/**
 * A strict reading of the Prometheus text exposition format (0.0.4): every line is HELP, TYPE
 * or a sample; every sample belongs to a family with a TYPE; label values are quoted and escaped.
 */
function parsePrometheus(text: string): Map<string, { type: string; samples: number }> {
  const families = new Map<string, { type: string; samples: number }>();
  const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*\})? (-?(?:\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|NaN|\+Inf|-Inf)( -?\d+)?$/;
  assert.ok(text.endsWith('\n'), 'ends with a newline');
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type) {
      assert.ok(!families.has(type[1] as string), `one TYPE per family: ${type[1]}`);
      families.set(type[1] as string, { type: type[2] as string, samples: 0 });
      continue;
    }
    if (/^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*$/.test(line)) continue;
    const m = sample.exec(line);
    assert.ok(m, `not a valid sample line: ${line}`);
    const name = m[1] as string;
    const family = families.get(name) ?? families.get(name.replace(/_(bucket|sum|count)$/, ''));
    assert.ok(family, `sample without TYPE: ${line}`);
    family.samples++;
  }
  return families;
}

const REVIEW_ROUTES = `
  - name: nocodb
    host: nocodb.test.local
    upstream: UPSTREAM
    auth: session
    roles: [staff]
  - name: public
    host: api.test.local
    upstream: UPSTREAM
    auth: none
`;

// A hostile login name read back by `audit search`, and credentials in a query string: a gateway
// of its own (session sign-in, a public route), from the adversarial review of the audit log.
describe('hostile values through real processes: `audit search` and the access line (from the adversarial review)', () => {
  const ENV_EXTRA = { TRUSTED_PROXIES: '127.0.0.1', PUBLIC_HTTPS_PORT: '8443' };

  let audit: TestAudit;
  let gw: TestGateway;
  let auth: AuthService;
  let dataDir: string;

  before(async () => {
    audit = await startTestAudit({}, { keep: true });
    dataDir = tempDir('crm-gw-audit-review-data-');
    const env = { API_SECRET_KEY: randomSecret(), DATA_DIR: dataDir, ...ENV_EXTRA };
    const authCfg = parseConfig(`routes:\n${REVIEW_ROUTES.replaceAll('UPSTREAM', 'http://127.0.0.1:9')}`, { ...env, GATEWAY_DOMAIN: 'test.local' });
    auth = (await createAuthService(authCfg, { log: audit.log })) as AuthService;
    await addUser(auth, 'staff-one', 'a long enough password 1', ['staff']);
    gw = await startTestGateway(REVIEW_ROUTES, env, '', { auth, log: audit.log });
  });

  after(async () => {
    await gw?.close();
    await auth?.close();
    await audit?.close();
    rmSync(audit.dir, { recursive: true, force: true });
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** `npx crm-gateway audit …` from the sources, as verify.test.ts runs it (no build needed). */
  function auditCli(args: string[], env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `import { run } from './src/cli/main.ts'; process.exitCode = await run(${JSON.stringify(['audit', ...args])});`], {
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, GATEWAY_CONFIG: '/nonexistent.yaml', DATABASE_URL: '', ...env },
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  test('a login name with a newline, ANSI and bidi escapes cannot fake or hide lines in `audit search`', async () => {
    // Within the 64 characters the login endpoint keeps of a name.
    const hostile = 'eve\n2030-01-01T00:00:00Z security auth.login_succeeded\u001b[1A\u001b[2K\u202e';
    assert.ok(hostile.length <= 64);
    const client = new SessionClient(gw, 'nocodb.test.local');
    const form = await client.openLogin();
    const res = await client.postLogin({ csrf: form.csrf, rd: form.rd, username: hostile, password: 'wrong password here' });
    assert.equal(res.status, 401, res.body.slice(0, 200));
    assert.ok(await audit.log.flush(5_000));
    const r = auditCli(['search', '--dir', audit.dir, '--stream', 'security', '--event', 'auth.login_failed']);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.split('\n').filter((l) => l !== '');
    assert.equal(lines.length, 1, r.stdout);
    assert.ok(!/[\p{Cc}\u202e]/u.test(lines.join('')), JSON.stringify(r.stdout));
    assert.match(lines[0] as string, /auth\.login_failed .*user=eve\\u\{a\}2030/);
    // The JSON form stays the exact line of the file, escapes and all.
    const json = auditCli(['search', '--dir', audit.dir, '--stream', 'security', '--event', 'auth.login_failed', '--json']);
    assert.equal((JSON.parse(json.stdout.trim()) as { user: string }).user, hostile);
  });

  test('credentials in a query string under other spellings and in URL userinfo never reach the access line', async () => {
    const query = 'next=https://svc:URLPASS-77aa@crm.example/&xc_auth=XCAUTH-88bb&customerPhone=34655444333&page=3';
    const res = await gw.request({ path: `/report?${query}` });
    assert.equal(res.status, 200);
    assert.ok(await audit.log.flush(5_000));
    const text = readdirSync(audit.dir)
      .filter((n) => n.startsWith('access-'))
      .map((n) => readFileSync(join(audit.dir, n), 'utf8'))
      .join('');
    const line = text.split('\n').find((l) => l.includes('"path":"/report"')) as string;
    assert.ok(line, 'the access line is there');
    for (const s of ['URLPASS-77aa', 'XCAUTH-88bb', '34655444333']) assert.ok(!line.includes(s), `${s} in ${line}`);
    assert.match(line, /"query":"next=https:\/\/svc:\[redacted\]@crm\.example\/&xc_auth=sha256:[0-9a-f]{12}&customerPhone=id:[0-9a-f]{16}&page=3"/);
  });
});


