import { test, mock, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { startTestAudit } from '../../helpers/audit.js';
import { waitFor } from '../../helpers/wait.js';
import { searchLogs, type Match, type SearchQuery, formatMatch } from '../../../src/audit/offline/search.js';
import { dailyReport, formatDailyReport } from '../../../src/audit/offline/report.js';

const DAY = 86_400_000;
const START = Date.parse('2025-07-01T09:00:00.000Z');
let dir: string;

/** Three days of traffic; the first two end up gzipped by rotation. */
before(async () => {
  mock.timers.enable({ apis: ['Date'], now: START });
  const audit = await startTestAudit({}, { keep: true });
  dir = audit.dir;
  for (let d = 0; d < 3; d++) {
    mock.timers.setTime(START + d * DAY);
    for (let i = 0; i < 10; i++) audit.log.access({ requestId: `ok-${d}-${i}`, clientIp: '192.0.2.10', method: 'GET', path: '/x', route: 'crm-api', status: 200, user: 'alice', outcome: 'forwarded' });
    for (let i = 0; i < d + 2; i++) {
      const id = `rl-${d}-${i}`;
      audit.log.access({ requestId: id, clientIp: '203.0.113.5', method: 'GET', path: '/x', route: 'crm-api', status: 429, code: 'RATE_LIMITED', outcome: 'denied', detail: 'over' });
      audit.log.security('request.denied', { requestId: id, code: 'RATE_LIMITED', clientIp: '203.0.113.5', route: 'crm-api' });
    }
    audit.log.access({ requestId: `ip-${d}`, clientIp: '198.51.100.1', method: 'GET', path: '/admin', route: 'admin', status: 403, code: 'IP_DENIED', outcome: 'denied' });
    audit.log.security('auth.login_failed', { requestId: `lf-${d}`, user: 'mallory', clientIp: '198.51.100.1', reason: 'wrong password' });
    audit.log.access({ requestId: `lf-${d}`, clientIp: '198.51.100.1', method: 'POST', path: '/auth/login', status: 401, code: 'AUTH_FAILED', outcome: 'denied' });
    audit.log.access({ requestId: `up-${d}`, clientIp: '192.0.2.10', method: 'GET', path: '/x', route: 'crm-api', status: 502, code: 'UPSTREAM_UNAVAILABLE', outcome: 'failed' });
    if (d === 1) audit.log.raise('suspicious_rate_limited', '203.0.113.5', 'burst of 429s from 203.0.113.5', { clientIp: '203.0.113.5' });
    await audit.log.flush(5_000);
  }
  await waitFor(() => readdirSync(dir).includes('security-2025-07-02.log.gz'), 'gzip of day 2');
  await audit.close();
  mock.timers.reset();
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function find(q: SearchQuery): Promise<Match[]> {
  const out: Match[] = [];
  await searchLogs(dir, q, (m) => out.push(m));
  return out;
}

test('search reads current and gzipped files, and filters by reason, ip, user, route, status and time', async () => {
  assert.ok(readdirSync(dir).includes('access-2025-07-01.log.gz'));
  const limited = await find({ reason: 'rate_limited', streams: ['access'] });
  assert.equal(limited.length, 2 + 3 + 4);
  assert.deepEqual([...new Set(limited.map((m) => m.file))], ['access-2025-07-01.log', 'access-2025-07-02.log', 'access-2025-07-03.log']);
  assert.equal((await find({ ip: '198.51.100.1' })).length, 3 * 3, 'IP_DENIED + AUTH_FAILED access lines + login_failed events');
  assert.equal((await find({ user: 'alice', streams: ['access'] })).length, 30);
  assert.equal((await find({ route: 'admin' })).length, 3);
  assert.equal((await find({ status: '5xx' })).length, 3);
  assert.equal((await find({ status: '403' })).length, 3);
  const day2 = await find({ since: new Date('2025-07-02T00:00:00Z'), until: new Date('2025-07-02T23:59:59Z'), reason: 'RATE_LIMITED', streams: ['access'] });
  assert.equal(day2.length, 3);
  assert.equal((await find({ event: 'alert.', streams: ['security'] })).length, 1);
  assert.equal((await find({ streams: ['access'], limit: 5 })).length, 5);
});

test('audit report --day summarizes a rotated day', async () => {
  const r = await dailyReport(dir, '2025-07-02');
  assert.equal(r.requests, 10 + 3 + 1 + 1 + 1);
  assert.deepEqual(r.byStatusClass, { '2xx': 10, '4xx': 5, '5xx': 1 });
  assert.deepEqual(r.denialsByReason, [
    { reason: 'RATE_LIMITED', count: 3 },
    { reason: 'AUTH_FAILED', count: 1 },
    { reason: 'IP_DENIED', count: 1 },
  ]);
  assert.equal(r.rateLimited, 3);
  assert.deepEqual(r.signIns, { succeeded: 0, failed: 1, locked: 0, rejectedTokens: 0, clientCredentialsFailed: 0 }, 'the login failure and its AUTH_FAILED line are one failed sign-in');
  assert.deepEqual(r.failedSignInsByUser, [{ user: 'mallory', count: 1 }]);
  assert.deepEqual(r.topDeniedIps, [
    { ip: '203.0.113.5', count: 3 },
    { ip: '198.51.100.1', count: 2 },
  ]);
  assert.equal(r.upstreamErrors, 1);
  assert.deepEqual(r.alerts.map((a) => [a.alert, a.subject]), [['suspicious_rate_limited', '203.0.113.5']]);
  assert.ok(r.filesRead.includes('access-2025-07-02.log') && r.filesRead.includes('security-2025-07-02.log'));
});

test('npx crm-gateway audit search --json and audit report print what the functions find', () => {
  const cli = (args: string[]): { status: number | null; out: string; err: string } => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `import { run } from './src/cli/main.ts'; process.exitCode = await run(${JSON.stringify(args)});`], {
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, GATEWAY_CONFIG: '/nonexistent.yaml', LOG_DIR: dir, DATABASE_URL: '' },
    });
    return { status: r.status, out: r.stdout, err: r.stderr };
  };
  const search = cli(['audit', 'search', '--reason', 'IP_DENIED', '--since', '2025-07-01', '--json']);
  assert.equal(search.status, 0, search.err);
  const lines = search.out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(lines.map((l) => l.requestId), ['ip-0', 'ip-1', 'ip-2']);
  const none = cli(['audit', 'search', '--user', 'nobody']);
  assert.equal(none.status, 1);
  const report = cli(['audit', 'report', '--day', '2025-07-03']);
  assert.equal(report.status, 0, report.err);
  assert.match(report.out, /requests: 17 \(2xx 10, 4xx 6, 5xx 1\)/);
  assert.match(report.out, /RATE_LIMITED\s+4/);
  assert.match(report.out, /rate-limit refusals: 4\n/);
  assert.match(report.out, /sign-ins: 0 succeeded, 1 failed, 0 refused while locked\n/);
  assert.match(report.out, /rejected tokens: 0\n/);
  const usage = cli(['audit', 'search', '--status', 'teapot']);
  assert.equal(usage.status, 2);
});

// Output that a client-chosen value cannot fake (from the adversarial review of the audit log).
/** A login name as a client may type it: a fake second result line, ANSI erase and colour, a bidi override. */
const HOSTILE_USER = 'mallory\n2025-01-01T00:00:00.000Z security auth.login_succeeded user=admin\u001b[2K\u001b[31m\u009b1m\u202enimda';

test('audit search and report print client-chosen values as one inert line each', async () => {
  const audit = await startTestAudit({}, { keep: true });
  try {
    audit.log.security('auth.login_failed', { user: HOSTILE_USER, clientIp: '203.0.113.9', reason: 'unknown user' });
    await audit.log.flush(5_000);
    const out: string[] = [];
    const res = await searchLogs(audit.dir, { streams: ['security'], event: 'auth.login_failed' }, (m) => out.push(formatMatch(m)));
    assert.equal(res.matched, 1);
    const printed = out.join('\n');
    assert.equal(printed.split('\n').length, 1, printed);
    assert.ok(!/[\p{Cc}\u202e]/u.test(printed), printed);
    assert.match(printed, /user=mallory\\u\{a\}2025/);
    const report = formatDailyReport(await dailyReport(audit.dir, new Date().toISOString().slice(0, 10)));
    assert.ok(!report.split('\n').some((l) => /[\p{Cc}\u202e]/u.test(l)), report);
    assert.ok(!report.split('\n').some((l) => l.includes('auth.login_succeeded') && !l.includes('mallory')), report);
  } finally {
    await audit.close();
  }
});
