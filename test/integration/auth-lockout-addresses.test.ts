// Issue 18, item 3: sign-in events stored the lockout key (`ip:127.0.0.1`) as the client's
// address, so `audit search --ip 127.0.0.1` missed them, PostgreSQL's client_ip held one address
// under two spellings, alerts read `account ip:ip:127.0.0.1 locked`, and `failed_logins_ip`
// fired once per spelling. A real gateway with real audit files, PostgreSQL and the built CLI.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { startTestGateway, type TestGateway } from '../helpers/harness.js';
import { alertsConfig, startTestAudit, tempDir, type TestAudit } from '../helpers/audit.js';
import { addUser, createTestDatabase, randomSecret } from '../helpers/auth-gateway.js';
import { runCli } from '../helpers/cli.js';
import { SessionClient } from '../helpers/session-client.js';
import { waitFor } from '../helpers/wait.js';
import { parseConfig } from '../../src/config/load.js';
import { createAuthService, type AuthService } from '../../src/auth/service.js';

const ROUTES = `
  - name: nocodb
    host: nocodb.test.local
    upstream: UPSTREAM
    auth: session
    roles: [staff]
  - name: api
    host: api.test.local
    upstream: UPSTREAM
    auth: jwt
    roles: [api]
`;
/** No trusted proxy: every request's address is its socket's, 127.0.0.1 (a sent X-Forwarded-For is ignored). */
const ENV_EXTRA = { PUBLIC_HTTPS_PORT: '8443' };
const ADDRESS = '127.0.0.1';
const PASSWORD = 'a long enough password 1';
/** The lockout's per-address threshold (src/auth/lockout.ts). */
const ADDRESS_LOCK_AFTER = 20;
/** Low, so the run crosses it four times over within one cooldown: still one alert. */
const ALERT_PER_IP = 5;

let audit: TestAudit;
let gw: TestGateway;
let auth: AuthService;
let dataDir: string;
let db: { url: string; drop(): Promise<void> };
let pool: pg.Pool;

before(async () => {
  db = await createTestDatabase('crmgw_lockout_addr');
  pool = new pg.Pool({ connectionString: db.url, max: 2 });
  audit = await startTestAudit({ alerts: alertsConfig(`alerts: { failedLogins: { window: 10m, perUser: 50, perIp: ${ALERT_PER_IP} }, cooldown: 10m }`) }, { keep: true });
  await audit.log.attachPostgres(pool);
  dataDir = tempDir('crm-gw-lockout-addr-data-');
  const env = { API_SECRET_KEY: randomSecret(), DATA_DIR: dataDir, ...ENV_EXTRA };
  const authCfg = parseConfig(`routes:\n${ROUTES.replaceAll('UPSTREAM', 'http://127.0.0.1:9')}`, { ...env, GATEWAY_DOMAIN: 'test.local' });
  auth = (await createAuthService(authCfg, { log: audit.log })) as AuthService;
  await addUser(auth, 'staff-one', PASSWORD, ['staff']);
  gw = await startTestGateway(ROUTES, env, '', { auth, log: audit.log });
});

after(async () => {
  await gw?.close();
  await auth?.close();
  await audit?.close();
  await pool?.end();
  await db?.drop();
  if (audit) rmSync(audit.dir, { recursive: true, force: true });
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

function securityRecords(): Record<string, unknown>[] {
  return readdirSync(audit.dir)
    .filter((n) => n.startsWith('security-') && n.endsWith('.log'))
    .flatMap((n) => readFileSync(join(audit.dir, n), 'utf8').split('\n'))
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

test('failed sign-ins from 127.0.0.1 until lockout: events, audit search --ip, PostgreSQL and alerts name the address once', async () => {
  const client = new SessionClient(gw, 'nocodb.test.local');
  // A good sign-in first: its event is counted beside the failures on the overview.
  await client.login('staff-one', PASSWORD);

  const before = gw.upstream.seen.length;
  const attempt = async (username: string, password: string): Promise<number> => {
    const form = await client.openLogin();
    return (await client.postLogin({ csrf: form.csrf, rd: form.rd, username, password })).status;
  };
  // 5 wrong passwords lock the account (then even the right one is refused); unknown names
  // fail on until the address has failed ADDRESS_LOCK_AFTER times and is locked for every name.
  for (let i = 0; i < 5; i++) assert.equal(await attempt('staff-one', `wrong password ${i}`), 401, `attempt ${i + 1}`);
  assert.equal(await attempt('staff-one', PASSWORD), 429, 'the account is locked');
  for (let i = 5; i < ADDRESS_LOCK_AFTER; i++) assert.equal(await attempt(`nobody-${i}`, `wrong password ${i}`), 401, `attempt ${i + 1}`);
  assert.equal(await attempt('someone-else', 'whatever it is'), 429, 'the address is locked for every name');
  // Refused bearer tokens from the same address count toward the same per-address alert (enough
  // of them to raise it on their own, as they did under the other spelling).
  for (let i = 0; i < ALERT_PER_IP + 1; i++) {
    const res = await gw.request({ host: 'api.test.local', path: '/x', headers: { authorization: 'Bearer not.a.token' } });
    assert.equal(res.status, 401);
  }
  assert.equal(gw.upstream.seen.length, before, 'no failed sign-in reached the upstream');
  await audit.log.flush(5_000);

  const events = securityRecords();
  const signIn = events.filter((e) => typeof e.event === 'string' && e.event.startsWith('auth.login_'));
  const byEvent = (name: string): Record<string, unknown>[] => events.filter((e) => e.event === name);

  const succeeded = byEvent('auth.login_succeeded');
  assert.equal(succeeded.length, 1);
  assert.equal(succeeded[0]?.method, 'password');
  assert.equal(succeeded[0]?.user, 'staff-one');
  assert.ok(typeof succeeded[0]?.requestId === 'string');

  assert.equal(byEvent('auth.login_failed').length, ADDRESS_LOCK_AFTER);
  assert.equal(byEvent('auth.login_locked').length, 2);
  assert.deepEqual([...new Set(signIn.map((e) => e.clientIp))], [ADDRESS], 'every sign-in event names the plain address');
  assert.deepEqual([...new Set(byEvent('auth.login_failed').map((e) => e.addressGroup))], [ADDRESS], 'the address group failures count under has its own field');

  const lockouts = byEvent('auth.lockout');
  assert.deepEqual(lockouts.map((e) => [e.subject, e.clientIp]).sort(), [[`ip:${ADDRESS}`, ADDRESS], ['user:staff-one', ADDRESS]]);

  // One alert per address per cooldown, under the one spelling; lockout alerts read as words.
  const perIp = byEvent('alert.failed_logins_ip');
  assert.deepEqual(perIp.map((e) => [e.subject, e.clientIp]), [[ADDRESS, ADDRESS]]);
  const lockAlerts = byEvent('alert.account_locked').map((e) => String(e.message));
  assert.equal(lockAlerts.length, 2, lockAlerts.join('\n'));
  assert.ok(lockAlerts.some((m) => m.startsWith('account staff-one locked for 30s')), lockAlerts.join('\n'));
  assert.ok(lockAlerts.some((m) => m.startsWith(`address ${ADDRESS} locked for 30s after ${ADDRESS_LOCK_AFTER} failed sign-ins`)), lockAlerts.join('\n'));
  assert.ok(!JSON.stringify(events).includes('ip:ip:'), 'no doubled prefix anywhere in the security log');

  // The CLI finds every sign-in event by the address.
  const search = await runCli(['audit', 'search', '--dir', audit.dir, '--stream', 'security', '--ip', ADDRESS, '--event', 'auth.', '--limit', '1000', '--json'], {});
  assert.equal(search.code, 0, search.stderr);
  const found = search.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((e) => typeof e.event === 'string' && e.event.startsWith('auth.login_'));
  assert.equal(found.length, signIn.length, search.stderr);
  assert.deepEqual(
    found.map((e) => e.requestId).sort(),
    signIn.map((e) => e.requestId).sort(),
  );

  // PostgreSQL's client_ip column holds the one spelling (the events reach it in batches, every second).
  const names = ['auth.login_succeeded', 'auth.login_failed', 'auth.login_locked', 'auth.lockout', 'alert.failed_logins_ip', 'alert.account_locked'];
  const expected = events.filter((e) => names.includes(String(e.event))).length;
  const byAddress = async (): Promise<[string | null, number][]> =>
    (await pool.query<{ client_ip: string | null; n: string }>('SELECT client_ip, count(*) AS n FROM gateway_security_events WHERE event = ANY($1) GROUP BY client_ip ORDER BY client_ip', [names])).rows.map((r) => [r.client_ip, Number(r.n)]);
  await waitFor(async () => (await byAddress()).reduce((n, [, c]) => n + c, 0) >= expected, 'the sign-in events in PostgreSQL');
  assert.deepEqual(await byAddress(), [[ADDRESS, expected]]);
});
