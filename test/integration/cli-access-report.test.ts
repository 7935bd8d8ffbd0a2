import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { AUTH_MIGRATIONS } from '../../src/auth/store/migrations.js';
import { createFileIdentityStore } from '../../src/auth/store/file.js';
import { createPostgresIdentityStore } from '../../src/auth/store/postgres.js';
import type { IdentityStore } from '../../src/auth/store/types.js';
import type { AccessReport } from '../../src/auth/access-report.js';
import { migrate } from '../../src/stores/migrations.js';
import { createTestDatabase, randomSecret } from '../helpers/auth-gateway.js';
import { jwtClaims, runCli, writeCliConfig } from '../helpers/cli.js';

/**
 * Issue 18, item 13: the quarterly access review. Accounts whose sign-ins and requests the
 * test sets, tokens issued and revoked through the real CLI, requests written into the access
 * log as the gateway writes them; then `access report` against the embedded file store and
 * against PostgreSQL must flag exactly the accounts the test knows to be stale or risky.
 */

const DAY_MS = 86_400_000;
const ago = (days: number): Date => new Date(Date.now() - days * DAY_MS);
const HASH = 'scrypt$placeholder';

async function seed(store: IdentityStore): Promise<void> {
  const user = (name: string, roles: string[], createdDaysAgo: number, lastLoginDaysAgo?: number, disabled = false): Promise<void> =>
    store.addUser({ name, passwordHash: HASH, roles, disabled, createdAt: ago(createdDaysAgo), lastLoginAt: lastLoginDaysAgo === undefined ? undefined : ago(lastLoginDaysAgo) });
  await user('root', ['admin', 'staff'], 300, 1);
  await user('old-staff', ['staff'], 200, 120);
  await user('new-staff', ['staff'], 5);
  await user('gone', ['staff'], 400, 300, true);
  await user('session-staff', ['staff'], 300, 100);
  // Sign-in times are written by the gateway's sign-in through updateUser: the same path here.
  await store.updateUser('root', { lastLoginAt: ago(1) });
  const client = (name: string, createdDaysAgo: number): Promise<void> => store.addClient({ name, secretHash: 'ab'.repeat(32), roles: ['api'], disabled: false, createdAt: ago(createdDaysAgo) });
  await client('reports', 200);
  await client('legacy', 200);
}

/** Runs the scenario against one store's environment; returns the JSON report and the text one. */
async function scenario(env: Record<string, string>, logDir: string): Promise<{ report: AccessReport; text: string }> {
  const issue = async (): Promise<string> => {
    const r = await runCli(['tokens', 'issue', '--client', 'reports', '--roles', 'api', '--ttl', '1h'], env);
    assert.equal(r.code, 0, r.stderr);
    return String(jwtClaims(r.stdout.trim()).jti);
  };
  const used = await issue();
  const revoked = await issue();
  const rev = await runCli(['tokens', 'revoke', revoked], env);
  assert.equal(rev.code, 0, rev.stderr);
  // The gateway's own lines: requests with the first token, a session user's request today, and
  // an old token that expired.
  const now = new Date();
  const today = now.toISOString().slice(0, 10);
  writeFileSync(
    join(logDir, `access-${today}.log`),
    [
      { time: new Date(now.getTime() - 60_000).toISOString(), status: 200, user: 'client:reports', roles: ['api'], authMethod: 'jwt', tokenId: used },
      { time: new Date(now.getTime() - 30_000).toISOString(), status: 200, user: 'session-staff', roles: ['staff'], authMethod: 'session' },
    ]
      .map((l) => JSON.stringify(l))
      .join('\n') + '\n',
  );
  writeFileSync(
    join(logDir, `security-${today}.log`),
    `${JSON.stringify({ time: new Date(now.getTime() - 7_200_000).toISOString(), event: 'auth.token_issued', client: 'reports', roles: ['api'], tokenId: 'expiredTokenId01', expiresAt: new Date(now.getTime() - 3_600_000).toISOString(), via: 'client_credentials' })}\n`,
  );
  const json = await runCli(['access', 'report', '--json'], env);
  assert.equal(json.code, 0, json.stderr);
  assert.equal(json.stderr, '', 'no JSON events or warnings between the lines');
  const text = await runCli(['access', 'report'], env);
  assert.equal(text.code, 0, text.stderr);
  assert.ok(json.events.some((e) => e.event === 'admin.access_reviewed'), 'the review itself is a security event in the audit files');
  return { report: JSON.parse(json.stdout) as AccessReport, text: text.stdout };
}

function checkReport(r: AccessReport, text: string, store: 'file' | 'postgres'): void {
  assert.equal(r.store, store);
  assert.equal(r.days, 90);
  assert.deepEqual(r.factorsAvailable, ['password', 'totp', 'passkey']);
  const users = Object.fromEntries(r.users.map((u) => [u.name, u]));
  assert.deepEqual(Object.keys(users), ['gone', 'new-staff', 'old-staff', 'root', 'session-staff']);
  assert.deepEqual(users.root?.flags, ['admin_without_second_factor']);
  assert.deepEqual(users.root?.factors, ['password']);
  assert.ok(users.root?.lastSignIn && Date.now() - Date.parse(users.root.lastSignIn) < 2 * DAY_MS);
  assert.deepEqual(users['old-staff']?.flags, ['unused']);
  assert.deepEqual(users['new-staff']?.flags, ['never_used']);
  assert.equal(users['new-staff']?.lastSignIn, null);
  assert.deepEqual(users.gone?.flags, [], 'disabled accounts are listed, not flagged');
  assert.deepEqual(users['session-staff']?.flags, [], 'a request today counts although the last sign-in is 100 days old');
  assert.ok(users['session-staff']?.lastSeen);

  const clients = Object.fromEntries(r.clients.map((c) => [c.name, c]));
  assert.deepEqual(clients.legacy?.flags, ['unused']);
  assert.equal(clients.legacy?.lastUse, null);
  assert.deepEqual(clients.reports?.flags, []);
  assert.equal(clients.reports?.liveTokens, 1, 'the revoked token and the expired one are not live');
  assert.equal(r.liveTokens.length, 1);
  assert.equal(r.liveTokens[0]?.client, 'reports');
  assert.equal(r.liveTokens[0]?.via, 'cli');
  assert.ok(r.liveTokens[0]?.lastUse, 'its last request, from the access log');
  assert.equal(r.summary.flagged, 3, 'root, old-staff, legacy');

  assert.match(text, /sign-in factors: password, then a second factor: 0 of \d+ users have TOTP or a passkey/);
  assert.match(text, /^ {2}root {2}roles admin,staff {2}enabled {2}factors password .*\[ADMIN WITHOUT SECOND FACTOR\]$/m);
  assert.match(text, /^ {2}old-staff .*\[UNUSED 90d\]$/m);
  assert.match(text, /^ {2}legacy .*last use never {2}live tokens 0 {2}\[UNUSED 90d\]$/m);
  assert.match(text, new RegExp(`^ {2}${r.liveTokens[0]?.tokenId} {2}client reports .*last use 20`, 'm'));
  assert.match(text, /^3 flagged/m);
}

describe('access report with the embedded file store', () => {
  let dir: string;
  before(() => {
    assert.ok(existsSync(join(process.cwd(), 'dist', 'cli', 'main.js')), 'dist/ is built (npm run build)');
    dir = mkdtempSync(join(tmpdir(), 'crm-gw-access-file-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('users, factors, last sign-in, clients and live tokens, with exactly the expected flags', async () => {
    const dataDir = join(dir, 'data');
    const logDir = join(dir, 'logs');
    mkdirSync(logDir);
    await seed(createFileIdentityStore(dataDir));
    const env = { GATEWAY_CONFIG: writeCliConfig(dir), API_SECRET_KEY: randomSecret(), LOG_HASH_KEY: randomSecret(), DATA_DIR: dataDir, LOG_DIR: logDir, JWT_MAX_TTL: '2h' };
    const { report, text } = await scenario(env, logDir);
    checkReport(report, text, 'file');
  });

  test('--days changes the period; a bad --days is a usage error', async () => {
    const env = { GATEWAY_CONFIG: writeCliConfig(dir), API_SECRET_KEY: randomSecret(), LOG_HASH_KEY: randomSecret(), DATA_DIR: join(dir, 'data'), LOG_DIR: join(dir, 'logs') };
    const r = await runCli(['access', 'report', '--json', '--days', '365'], env);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as AccessReport;
    assert.deepEqual(report.users.find((u) => u.name === 'old-staff')?.flags, [], 'signed in 120 days ago: within a year');
    const bad = await runCli(['access', 'report', '--days', 'ninety'], env);
    assert.equal(bad.code, 2);
    assert.equal(bad.stderr, 'crm-gateway: error: --days: a whole number of days (1 to 3660), not ninety (see crm-gateway access report --help)\n');
  });
});

describe('access report with PostgreSQL', () => {
  let db: { url: string; drop(): Promise<void> };
  let dir: string;
  before(async () => {
    db = await createTestDatabase('crmgw_access');
    dir = mkdtempSync(join(tmpdir(), 'crm-gw-access-pg-'));
  });
  after(async () => {
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the same review from the PostgreSQL store', async () => {
    const pool = new pg.Pool({ connectionString: db.url, max: 2 });
    try {
      await migrate(pool, AUTH_MIGRATIONS);
      await seed(createPostgresIdentityStore(pool));
    } finally {
      await pool.end();
    }
    const logDir = join(dir, 'logs');
    mkdirSync(logDir);
    const env = { GATEWAY_CONFIG: writeCliConfig(dir), API_SECRET_KEY: randomSecret(), LOG_HASH_KEY: randomSecret(), DATABASE_URL: db.url, DATA_DIR: join(dir, 'data'), LOG_DIR: logDir, JWT_MAX_TTL: '2h' };
    const { report, text } = await scenario(env, logDir);
    checkReport(report, text, 'postgres');
  });
});
