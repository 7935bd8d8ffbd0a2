import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { migrate, type Migration } from '../../src/stores/migrations.js';
import { AUTH_MIGRATIONS } from '../../src/auth/store/migrations.js';
import { createTestDatabase, expectRefused, REDIS_URL, startAuthGateway, uniq, waitFor, type AuthTestGateway } from '../helpers/auth-gateway.js';
import { ONE_JWT_LINE, jwtClaims, runCli, writeCliConfig } from '../helpers/cli.js';
import { SessionClient } from '../helpers/session-client.js';

const ROUTES = `
  - name: api
    host: api.test.local
    upstream: UPSTREAM
    auth: jwt
    roles: [api]
  - name: nocodb
    host: nocodb.test.local
    upstream: UPSTREAM
    auth: session
    roles: [staff]
`;
const ENV = { TRUSTED_PROXIES: '127.0.0.1', JWT_MAX_TTL: '2h' };
const PASSWORD = 'a long enough postgres password';

let db: { url: string; drop(): Promise<void> };
let gw: AuthTestGateway;
let configDir: string;
let cliEnv: Record<string, string>;
const dropLater: { drop(): Promise<void> }[] = [];

before(async () => {
  assert.ok(existsSync(join(process.cwd(), 'dist', 'cli', 'main.js')), 'dist/ is built (npm run build)');
  db = await createTestDatabase('crmgw_auth_pg');
  dropLater.push(db);
  gw = await startAuthGateway({ routes: ROUTES, redis: true, databaseUrl: db.url, env: ENV });
  configDir = mkdtempSync(join(tmpdir(), 'crm-gw-cli-'));
  cliEnv = { GATEWAY_CONFIG: writeCliConfig(configDir), API_SECRET_KEY: gw.secret, DATABASE_URL: db.url, REDIS_URL, DATA_DIR: gw.dataDir, JWT_MAX_TTL: '2h' };
});

after(async () => {
  await gw?.close();
  for (const d of dropLater) await d.drop().catch(() => undefined);
  if (configDir) rmSync(configDir, { recursive: true, force: true });
});

async function query<T extends pg.QueryResultRow>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(sql, params)).rows;
  } finally {
    await c.end();
  }
}

function adminEvents(res: { events: Record<string, unknown>[] }): string[] {
  return res.events.map((e) => String(e.event)).filter((e) => e.startsWith('admin.'));
}

test('the auth migrations are applied at startup', async () => {
  assert.equal(gw.auth.store.kind, 'postgres');
  const versions = await query<{ version: number }>(db.url, 'SELECT version FROM gateway_schema_migrations ORDER BY version');
  assert.deepEqual(
    versions.map((v) => v.version),
    AUTH_MIGRATIONS.map((m) => m.version),
  );
  const tables = await query<{ table_name: string }>(db.url, "SELECT table_name FROM information_schema.tables WHERE table_name IN ('gateway_users', 'gateway_clients') ORDER BY table_name");
  assert.deepEqual(
    tables.map((t) => t.table_name),
    ['gateway_clients', 'gateway_users'],
  );
});

test('four instances migrating at once apply each migration exactly once (advisory lock)', async () => {
  const fresh = await createTestDatabase('crmgw_auth_race');
  dropLater.push(fresh);
  const marker: Migration = { version: 990_001, name: 'race marker', sql: 'CREATE TABLE race_marker (n int); INSERT INTO race_marker VALUES (1);' };
  const pools = Array.from({ length: 4 }, () => new pg.Pool({ connectionString: fresh.url, max: 2 }));
  try {
    const results = await Promise.all(pools.map((p) => migrate(p, [...AUTH_MIGRATIONS, marker])));
    const applied = results.flat().sort((a, b) => a - b);
    assert.deepEqual(applied, [...AUTH_MIGRATIONS.map((m) => m.version), marker.version], `each version applied once: ${JSON.stringify(results)}`);
    const rows = await query<{ n: number }>(fresh.url, 'SELECT count(*)::int AS n FROM race_marker');
    assert.equal(rows[0]?.n, 1);
    const versions = await query<{ version: number }>(fresh.url, 'SELECT version FROM gateway_schema_migrations');
    assert.equal(versions.length, AUTH_MIGRATIONS.length + 1);
    // Nobody left holding the lock.
    const locks = await query<{ n: number }>(fresh.url, "SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory'");
    assert.equal(locks[0]?.n, 0);
  } finally {
    await Promise.all(pools.map((p) => p.end()));
  }
});

test('a failing migration is rolled back and the lock released', async () => {
  const fresh = await createTestDatabase('crmgw_auth_fail');
  dropLater.push(fresh);
  const pool = new pg.Pool({ connectionString: fresh.url, max: 2 });
  try {
    const bad: Migration = { version: 990_002, name: 'broken', sql: 'CREATE TABLE half_done (n int); SELECT * FROM no_such_table;' };
    await assert.rejects(migrate(pool, [bad]), /migration 990002 \(broken\) failed/);
    const tables = await query<{ n: number }>(fresh.url, "SELECT count(*)::int AS n FROM information_schema.tables WHERE table_name = 'half_done'");
    assert.equal(tables[0]?.n, 0, 'the half-applied migration was rolled back');
    // The lock was released: the next migrate runs at once.
    assert.deepEqual(await migrate(pool, AUTH_MIGRATIONS), AUTH_MIGRATIONS.map((m) => m.version));
  } finally {
    await pool.end();
  }
});

test('npx crm-gateway migrate applies pending migrations once, then reports the database up to date', async () => {
  const fresh = await createTestDatabase('crmgw_auth_cli');
  dropLater.push(fresh);
  const env = { ...cliEnv, DATABASE_URL: fresh.url };
  const [a, b] = await Promise.all([runCli(['migrate'], env), runCli(['migrate'], env)]);
  assert.equal(a?.code, 0, a?.stderr);
  assert.equal(b?.code, 0, b?.stderr);
  const outputs = [a?.stdout, b?.stdout].sort();
  assert.deepEqual(outputs, [`applied migrations ${AUTH_MIGRATIONS.map((m) => m.version).join(', ')}\n`, 'database is up to date\n'].sort());
  assert.ok(a && adminEvents(a).includes('admin.migrated'));
});

test('users add | list | set-roles | disable | enable | set-password through the CLI, each an admin.* event', async () => {
  const name = uniq('pg-user');
  const add = await runCli(['users', 'add', name, '--roles', 'staff,admin'], cliEnv, `${PASSWORD}\n`);
  assert.equal(add.code, 0, add.stderr);
  assert.deepEqual(adminEvents(add), ['admin.user_added']);
  const row = (await query<{ password_hash: string; roles: string[]; disabled: boolean }>(db.url, 'SELECT password_hash, roles, disabled FROM gateway_users WHERE name = $1', [name]))[0];
  assert.ok(row);
  assert.match(row.password_hash, /^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
  assert.deepEqual(row.roles, ['staff', 'admin']);
  assert.equal((await runCli(['users', 'add', name, '--roles', 'staff'], cliEnv, `${PASSWORD}\n`)).code, 1, 'a second add of the same name fails');

  const list = await runCli(['users', 'list'], cliEnv);
  assert.equal(list.code, 0);
  assert.match(list.stdout, new RegExp(`^${name}\\tstaff,admin\\tenabled\\tlast login never$`, 'm'));
  assert.deepEqual(adminEvents(list), ['admin.users_listed']);

  const roles = await runCli(['users', 'set-roles', name, 'staff'], cliEnv);
  assert.equal(roles.code, 0, roles.stderr);
  assert.deepEqual(adminEvents(roles), ['admin.user_roles_set']);

  const c = new SessionClient(gw, 'nocodb.test.local');
  await c.login(name, PASSWORD);
  const seen = await c.send({ path: '/ui' });
  assert.equal(seen.status, 200);
  assert.equal(seen.json<{ headers: Record<string, string> }>().headers['x-gateway-roles'], 'staff');

  const disable = await runCli(['users', 'disable', name], cliEnv);
  assert.equal(disable.code, 0);
  assert.deepEqual(adminEvents(disable), ['admin.user_disabled']);
  const blocked = new SessionClient(gw, 'nocodb.test.local');
  const form = await blocked.openLogin();
  const refused = await blocked.postLogin({ csrf: form.csrf, rd: form.rd, username: name, password: PASSWORD });
  assert.equal(refused.status, 401, 'a disabled user cannot sign in');
  // The open session ends within the 5 s account-status cache.
  assert.ok(
    await waitFor(async () => (await c.send({ path: '/ui', withCookies: true })).status === 401, 7_000, 250),
    'the open session of a disabled user is refused within the status cache time',
  );

  const enable = await runCli(['users', 'enable', name], cliEnv);
  assert.deepEqual(adminEvents(enable), ['admin.user_enabled']);
  gw.auth.forget(name);
  const revived = await c.send({ path: '/ui', withCookies: true });
  assert.equal(revived.status, 401, 'enabling the account again does not bring back a session from before it was disabled');
  const newPassword = 'another long enough password';
  const setPw = await runCli(['users', 'set-password', name], cliEnv, `${newPassword}\n`);
  assert.equal(setPw.code, 0, setPw.stderr);
  assert.deepEqual(adminEvents(setPw), ['admin.user_password_set']);
  const d = new SessionClient(gw, 'nocodb.test.local');
  const f = await d.openLogin();
  assert.equal((await d.postLogin({ csrf: f.csrf, rd: f.rd, username: name, password: PASSWORD })).status, 401, 'the old password no longer works');
  await d.login(name, newPassword);
  for (const r of [add, list, roles, disable, enable, setPw]) {
    assert.doesNotMatch(r.stderr + r.stdout, new RegExp(PASSWORD), 'the password is never echoed');
    for (const e of r.events) assert.ok(typeof e.actor === 'string' && e.time, 'admin events carry actor and time');
  }
});

test('tokens issue prints exactly one JWT line on stdout; the token works and carries the roles', async () => {
  const client = uniq('pg-client');
  const res = await runCli(['tokens', 'issue', '--client', client, '--roles', 'api,reports', '--ttl', '30m'], cliEnv);
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, ONE_JWT_LINE);
  assert.deepEqual(adminEvents(res), ['admin.token_issued']);
  const claims = jwtClaims(res.stdout.trim());
  assert.equal(claims.sub, `client:${client}`);
  assert.equal(Number(claims.exp) - Number(claims.iat), 1800);
  assert.equal(res.events.find((e) => e.event === 'admin.token_issued')?.tokenId, claims.jti);
  const ok = await gw.request({ path: '/v1/x', headers: { authorization: `Bearer ${res.stdout.trim()}` } });
  assert.equal(ok.status, 200, ok.body);
  assert.equal(ok.json<{ headers: Record<string, string> }>().headers['x-gateway-roles'], 'api,reports');
});

test('tokens issue refuses a ttl over JWT_MAX_TTL, a missing client and bad roles, printing nothing on stdout', async () => {
  const cases = [
    [['tokens', 'issue', '--client', uniq('c'), '--roles', 'api', '--ttl', '3h'], 1],
    [['tokens', 'issue', '--roles', 'api'], 2],
    [['tokens', 'issue', '--client', uniq('c'), '--roles', 'API;DROP'], 2],
    [['tokens', 'issue', '--client', "x' OR '1'='1", '--roles', 'api'], 2],
  ] as const;
  const results = await Promise.all(cases.map(([args]) => runCli([...args], cliEnv)));
  cases.forEach(([args, code], i) => {
    assert.equal(results[i]?.code, code, `${args.join(' ')}: ${results[i]?.stderr}`);
    assert.equal(results[i]?.stdout, '');
  });
});

test('tokens revoke through the CLI is refused by the running gateway within a bounded poll (Redis pub/sub)', async () => {
  const issued = await runCli(['tokens', 'issue', '--client', uniq('pg-revoke'), '--roles', 'api'], cliEnv);
  const token = issued.stdout.trim();
  const jti = String(jwtClaims(token).jti);
  const headers = { authorization: `Bearer ${token}`, accept: 'application/json' };
  assert.equal((await gw.request({ path: '/v1/x', headers })).status, 200);
  const res = await runCli(['tokens', 'revoke', jti], cliEnv);
  assert.equal(res.code, 0, res.stderr);
  assert.deepEqual(adminEvents(res), ['admin.token_revoked']);
  assert.ok(await waitFor(() => gw.auth.revocations.isRevoked(jti), 2_000), 'the gateway learnt of it within 2 s');
  await expectRefused(gw, { path: '/v1/x', headers }, 401, 'AUTH_REVOKED');
});

test('clients add prints the secret once; POST /auth/token exchanges it for a bearer token; a disabled client gets none', async () => {
  const name = uniq('pg-svc');
  const add = await runCli(['clients', 'add', name, '--roles', 'api'], cliEnv);
  assert.equal(add.code, 0, add.stderr);
  assert.match(add.stdout, /^[A-Za-z0-9_-]{43}\n$/);
  assert.deepEqual(adminEvents(add), ['admin.client_added']);
  const secret = add.stdout.trim();
  const row = (await query<{ secret_hash: string }>(db.url, 'SELECT secret_hash FROM gateway_clients WHERE name = $1', [name]))[0];
  assert.ok(row && !row.secret_hash.includes(secret), 'only a hash is stored');
  const exchange = (s: string): Promise<{ status: number; json<T>(): T; body: string }> =>
    gw.request({
      method: 'POST',
      path: '/auth/token',
      headers: { authorization: `Basic ${Buffer.from(`${name}:${s}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': '198.19.7.7' },
      body: 'grant_type=client_credentials',
    });
  const ok = await exchange(secret);
  assert.equal(ok.status, 200, ok.body);
  const { access_token: token } = ok.json<{ access_token: string }>();
  assert.equal((await gw.request({ path: '/v1/x', headers: { authorization: `Bearer ${token}` } })).status, 200);
  const wrong = await exchange(`${secret.slice(0, -1)}x`);
  assert.equal(wrong.status, 401);
  assert.equal(wrong.json<{ error: { code: string } }>().error.code, 'AUTH_FAILED');
  const disable = await runCli(['clients', 'disable', name], cliEnv);
  assert.deepEqual(adminEvents(disable), ['admin.client_disabled']);
  assert.equal((await exchange(secret)).status, 401);
});

test('hostile user names never reach SQL: refused by the CLI, and the login form finds nobody', async () => {
  const names = ["x'; DROP TABLE gateway_users; --", 'a b', '../../etc/passwd', ''];
  const results = await Promise.all(names.map((name) => runCli(['users', 'add', name, '--roles', 'staff'], cliEnv, `${PASSWORD}\n`)));
  names.forEach((name, i) => assert.equal(results[i]?.code, 2, `${JSON.stringify(name)}: ${results[i]?.stderr}`));
  const c = new SessionClient(gw, 'nocodb.test.local');
  for (const name of ["' OR '1'='1", "admin'--", "x' UNION SELECT * FROM gateway_users --"]) {
    const f = await c.openLogin();
    const res = await c.postLogin({ csrf: f.csrf, rd: f.rd, username: name, password: "' OR '1'='1" });
    assert.equal(res.status, 401, name);
  }
  const count = await query<{ n: number }>(db.url, 'SELECT count(*)::int AS n FROM gateway_users');
  assert.ok((count[0]?.n ?? 0) >= 1, 'the users table is intact');
});
