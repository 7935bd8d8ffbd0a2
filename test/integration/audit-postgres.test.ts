import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, rmSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import pg from 'pg';
import { startTestAudit, tempDir, rawSecurity } from '../helpers/audit.js';
import { PostgresHeadStore } from '../../src/audit/writer/heads.js';
import { verifyLogDir } from '../../src/audit/offline/verify.js';
import { createTestDatabase } from '../helpers/auth-gateway.js';
import { parseConfig } from '../../src/config/load.js';
import { openCliAuditLog } from '../../src/audit/writer/cli-log.js';

const ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const dbName = `crmgw_audit_test_${randomBytes(5).toString('hex')}`;
const dbUrl = `postgres://postgres@127.0.0.1:5432/${dbName}`;
let admin: pg.Client;

before(async () => {
  admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
});
after(async () => {
  await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  await admin.end();
});

test('security events reach PostgreSQL in batches, indexed for time, event, IP, user and reason; chain heads too', async (t) => {
  const pool = new pg.Pool({ connectionString: dbUrl, max: 4 });
  t.after(() => pool.end());
  const audit = await startTestAudit({ node: 'gw-a' }, { keep: true });
  t.after(() => rmSync(audit.dir, { recursive: true, force: true }));
  await audit.log.attachPostgres(pool);
  const n = 1_234;
  for (let i = 0; i < n; i++) {
    rawSecurity(audit.log)('request.denied', { requestId: `q${i}`, code: i % 2 ? 'RATE_LIMITED' : 'IP_DENIED', clientIp: `10.0.${i % 7}.1`, user: i % 3 ? undefined : 'alice', route: 'crm-api', detail: 'x', token: 'secret-token-value' });
  }
  rawSecurity(audit.log)('auth.login_failed', { user: 'bob', clientIp: '10.1.1.1', password: 'pw-never-stored' });
  for (let i = 0; i < 30; i++) audit.log.access({ requestId: `a${i}`, status: 200 });
  await audit.log.close();

  const { rows } = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM gateway_security_events WHERE node = 'gw-a'`);
  // Plus the logger's own events (none here besides these) — at least every event sent.
  assert.ok(Number(rows[0]?.n) >= n + 1, `rows: ${rows[0]?.n}`);
  const byReason = await pool.query<{ reason: string; n: string }>(`SELECT reason, count(*) AS n FROM gateway_security_events WHERE event = 'request.denied' GROUP BY reason ORDER BY reason`);
  assert.deepEqual(byReason.rows.map((r) => [r.reason, Number(r.n)]), [['IP_DENIED', 617], ['RATE_LIMITED', 617]]);
  const failed = await pool.query<{ subject: string; client_ip: string; fields: Record<string, unknown> }>(`SELECT subject, client_ip, fields FROM gateway_security_events WHERE event = 'auth.login_failed'`);
  assert.deepEqual([failed.rows[0]?.subject, failed.rows[0]?.client_ip, failed.rows[0]?.fields.password], ['bob', '10.1.1.1', '[redacted]']);
  const all = await pool.query<{ t: string }>(`SELECT string_agg(fields::text || coalesce(detail, ''), ' ') AS t FROM gateway_security_events`);
  assert.ok(!String(all.rows[0]?.t).includes('secret-token-value') && !String(all.rows[0]?.t).includes('pw-never-stored'), 'no secret in PostgreSQL');
  const indexes = await pool.query<{ indexname: string }>(`SELECT indexname FROM pg_indexes WHERE tablename = 'gateway_security_events' ORDER BY indexname`);
  assert.deepEqual(
    indexes.rows.map((r) => r.indexname),
    ['gateway_security_events_event_time', 'gateway_security_events_ip_time', 'gateway_security_events_pkey', 'gateway_security_events_reason_time', 'gateway_security_events_subject_time', 'gateway_security_events_time'],
  );

  const heads = await new PostgresHeadStore(pool, 'gw-a').load();
  const access = heads.find((h) => h.chain === 'access');
  assert.equal(access?.lastSeq, 30);
  assert.equal(access?.firstSeq, 1);

  // A whole day deleted together with the local copy of the heads: PostgreSQL still knows.
  const day = readdirSync(audit.dir).find((f) => f.startsWith('access-')) as string;
  unlinkSync(join(audit.dir, day));
  unlinkSync(join(audit.dir, '.chain-heads.json'));
  const withoutHeads = await verifyLogDir(audit.dir);
  assert.equal(withoutHeads.ok, true, 'the files alone cannot show it');
  const r = await verifyLogDir(audit.dir, { records: heads, from: 'PostgreSQL' });
  assert.deepEqual(r.problems.map((p) => [p.kind, p.file]), [['missing-file', day]]);

  // The CLI reads the heads from PostgreSQL when DATABASE_URL is set.
  const cli = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `import { run } from './src/cli/main.ts'; process.exitCode = await run(['audit', 'verify', ${JSON.stringify(audit.dir)}, '--node', 'gw-a']);`], {
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, GATEWAY_CONFIG: '/nonexistent.yaml', DATABASE_URL: dbUrl },
  });
  assert.equal(cli.status, 1, cli.stdout + cli.stderr);
  assert.match(cli.stdout, /chain heads from PostgreSQL table gateway_audit_chain_heads \(node gw-a\)/);
  assert.match(cli.stdout, new RegExp(`MISSING-FILE access ${day.replace(/\./g, '\\.')}`));

  // Without the out-of-folder record, verify fails rather than pass on the files alone: a wrong
  // node name (no heads), an unreachable PostgreSQL. Before, both fell back and exited 0.
  const verifyWith = (args: string[], databaseUrl: string): ReturnType<typeof spawnSync> =>
    spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `import { run } from './src/cli/main.ts'; process.exitCode = await run(${JSON.stringify(['audit', 'verify', audit.dir, ...args])});`], {
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, GATEWAY_CONFIG: '/nonexistent.yaml', DATABASE_URL: databaseUrl },
    });
  const wrongNode = verifyWith(['--node', 'no-such-node'], dbUrl);
  assert.equal(wrongNode.status, 1, String(wrongNode.stdout) + String(wrongNode.stderr));
  assert.match(String(wrongNode.stderr), /no chain heads for node no-such-node/);
  const unreachable = verifyWith(['--node', 'gw-a'], 'postgres://postgres@127.0.0.1:1/none');
  assert.equal(unreachable.status, 1, String(unreachable.stdout) + String(unreachable.stderr));
  assert.match(String(unreachable.stderr), /cannot read chain heads from PostgreSQL/);
  // The operator can still choose the local copy, knowingly.
  const local = verifyWith(['--node', 'gw-a', '--local-heads'], 'postgres://postgres@127.0.0.1:1/none');
  assert.notEqual(local.status, null);
  assert.doesNotMatch(String(local.stderr), /cannot read chain heads/);
});

// The CLI's own chain guarded by PostgreSQL (from the adversarial review of the audit log).
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
