// Adversarial review of the audit log through real processes: a hostile login name read back by
// `audit search`, credentials in a query string, and the CLI's own chain guarded by PostgreSQL.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { startTestGateway, type TestGateway } from '../helpers/harness.js';
import { startTestAudit, tempDir, type TestAudit } from '../helpers/audit.js';
import { addUser, createTestDatabase, randomSecret } from '../helpers/auth-gateway.js';
import { SessionClient } from '../helpers/session-client.js';
import { parseConfig } from '../../src/config/load.js';
import { createAuthService, type AuthService } from '../../src/auth/service.js';
import { openCliAuditLog } from '../../src/audit/writer/cli-log.js';
import { PostgresHeadStore } from '../../src/audit/writer/heads.js';
import { verifyLogDir } from '../../src/audit/offline/verify.js';

const ROUTES = `
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
const ENV_EXTRA = { TRUSTED_PROXIES: '127.0.0.1', PUBLIC_HTTPS_PORT: '8443' };

let audit: TestAudit;
let gw: TestGateway;
let auth: AuthService;
let dataDir: string;

before(async () => {
  audit = await startTestAudit({}, { keep: true });
  dataDir = tempDir('crm-gw-audit-review-data-');
  const env = { API_SECRET_KEY: randomSecret(), DATA_DIR: dataDir, ...ENV_EXTRA };
  const authCfg = parseConfig(`routes:\n${ROUTES.replaceAll('UPSTREAM', 'http://127.0.0.1:9')}`, { ...env, GATEWAY_DOMAIN: 'test.local' });
  auth = (await createAuthService(authCfg, { log: audit.log })) as AuthService;
  await addUser(auth, 'staff-one', 'a long enough password 1', ['staff']);
  gw = await startTestGateway(ROUTES, env, '', { auth, log: audit.log });
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

test('with DATABASE_URL the CLI records its chain heads in PostgreSQL, so deleting its file is caught', async (t) => {
  const db = await createTestDatabase('crmgw_audit_review');
  t.after(() => db.drop());
  const dir = tempDir('crm-gw-audit-review-cli-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const cfg = parseConfig('routes:\n  - { name: x, host: x.test, upstream: "http://127.0.0.1:9", auth: none }\n', {
    LOG_DIR: dir,
    LOG_NODE: 'review-node',
    LOG_HASH_KEY: 'review-hash-key-0123456789abcdef',
    DATABASE_URL: db.url,
  });
  const log = await openCliAuditLog(cfg);
  log.security('admin.token_revoked', { tokenId: 'jti-1' });
  await log.close();

  const pool = new pg.Pool({ connectionString: db.url, max: 1 });
  let heads;
  let rows;
  try {
    heads = await new PostgresHeadStore(pool, 'review-node').load();
    ({ rows } = await pool.query<{ event: string }>(`SELECT event FROM gateway_security_events WHERE node = 'review-node'`));
  } finally {
    // Ended before the database is dropped, which would end its connections under it.
    await pool.end();
  }
  assert.ok(heads.some((h) => h.chain === 'security.cli'), JSON.stringify(heads));
  assert.ok(rows.some((r) => r.event === 'admin.token_revoked'), 'the admin event is in PostgreSQL too');

  // An intruder with the log folder removes the CLI's record of the revocation, heads file included.
  for (const n of readdirSync(dir)) if (n.startsWith('security.cli-') || n === '.chain-heads.json') unlinkSync(join(dir, n));
  const report = await verifyLogDir(dir, { records: heads, from: 'PostgreSQL' });
  assert.equal(report.ok, false);
  assert.ok(report.problems.some((p) => p.kind === 'missing-file' && p.chain === 'security.cli'), JSON.stringify(report.problems));
});
