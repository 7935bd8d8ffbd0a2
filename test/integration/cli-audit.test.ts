import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomSecret, uniq } from '../helpers/auth-gateway.js';
import { runCli, writeCliConfig } from '../helpers/cli.js';

/** Issue 18, item 11: `audit search` and `audit report` as an operator meets them, and where CLI events go. */

const DAY = '2026-03-04';
let logs: string;

const at = (second: number): string => new Date(Date.parse(`${DAY}T10:00:00.000Z`) + second * 1000).toISOString();

before(() => {
  assert.ok(existsSync(join(process.cwd(), 'dist', 'cli', 'main.js')), 'dist/ is built (npm run build)');
  logs = mkdtempSync(join(tmpdir(), 'crm-gw-cli-audit-'));
  // Access lines at even seconds, security events at odd ones, in two files of the same day:
  // printed file by file they would come out access first; in time order they alternate.
  const access: string[] = [];
  const security: string[] = [];
  for (let i = 0; i < 700; i++) {
    access.push(JSON.stringify({ time: at(2 * i), requestId: `a${i}`, status: 429, code: 'RATE_LIMITED', clientIp: '203.0.113.9', path: '/x' }));
    security.push(JSON.stringify({ time: at(2 * i + 1), event: 'request.denied', requestId: `s${i}`, code: 'RATE_LIMITED', clientIp: '203.0.113.9' }));
  }
  // An event about a log stream carries a field named `stream` of its own.
  security.push(JSON.stringify({ time: at(5000), event: 'audit.log_removed', stream: 'access', file: 'access-2025-01-01.log.gz', reason: 'retention' }));
  writeFileSync(join(logs, `access-${DAY}.log`), `${access.join('\n')}\n`);
  writeFileSync(join(logs, `security-${DAY}.log`), `${security.join('\n')}\n`);
});

test('audit search: time order across streams, a default limit of 1000 said on stderr, --limit', async () => {
  const r = await runCli(['audit', 'search', '--dir', logs, '--ip', '203.0.113.9'], {});
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 1000, 'stops at the default limit');
  const times = lines.map((l) => l.split(' ')[0] as string);
  assert.deepEqual(times, [...times].sort(), 'in time order');
  assert.match(lines[0] as string, / access 429 /);
  assert.match(lines[1] as string, / security request\.denied/);
  assert.match(r.stderr, /^showing the first 1000 matches; more match: narrow the search or raise --limit\n$/);
  const five = await runCli(['audit', 'search', '--dir', logs, '--limit', '5'], {});
  assert.equal(five.stdout.trim().split('\n').length, 5);
  const all = await runCli(['audit', 'search', '--dir', logs, '--ip', '203.0.113.9', '--limit', '5000'], {});
  assert.equal(all.stdout.trim().split('\n').length, 1400);
  assert.match(all.stderr, /^1400 matching of 1401 lines\n$/);
});

test('audit search --json: each record with the stream it came from', async () => {
  const r = await runCli(['audit', 'search', '--dir', logs, '--json', '--limit', '4'], {});
  assert.equal(r.code, 0, r.stderr);
  const records = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(records.map((x) => [x.stream, x.requestId]), [['access', 'a0'], ['security', 's0'], ['access', 'a1'], ['security', 's1']]);
  const removed = await runCli(['audit', 'search', '--dir', logs, '--json', '--event', 'audit.log_removed'], {});
  const rec = JSON.parse(removed.stdout) as Record<string, unknown>;
  assert.equal(rec.stream, 'security', 'the stream of the match');
  assert.equal(rec.chain, 'access', 'the record’s own stream field, kept');
  assert.equal(rec.file, 'access-2025-01-01.log.gz');
});

test('audit report for a day without log lines says so and exits 1; a day with lines exits 0', async () => {
  const empty = await runCli(['audit', 'report', '--dir', logs, '--day', '2026-03-01'], {});
  assert.equal(empty.code, 1);
  assert.equal(empty.stdout, '');
  assert.equal(empty.stderr, `crm-gateway: error: no log lines for 2026-03-01 (UTC) in ${logs}: no log file of that day\n`);
  const ok = await runCli(['audit', 'report', '--dir', logs, '--day', DAY], {});
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /requests: 700/);
});

test('a missing log folder is a sentence, not ENOENT: scandir', async () => {
  for (const args of [['audit', 'search', '--dir', '/nonexistent/logs'], ['audit', 'report', '--dir', '/nonexistent/logs', '--day', DAY]]) {
    const r = await runCli(args, {});
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr, 'crm-gateway: error: no such file or folder: /nonexistent/logs\n');
  }
  const verify = await runCli(['audit', 'verify', '/nonexistent/logs'], {});
  assert.doesNotMatch(verify.stderr, /ENOENT|scandir/);
});

test('a CLI action’s security events go to the audit files, not between the human lines; --verbose shows them', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'crm-gw-cli-events-'));
  const logDir = join(dir, 'logs');
  const env = { GATEWAY_CONFIG: writeCliConfig(dir), API_SECRET_KEY: randomSecret(), LOG_HASH_KEY: randomSecret(), DATA_DIR: join(dir, 'data'), LOG_DIR: logDir };
  const name = uniq('quiet');
  const quiet = await runCli(['users', 'add', name, '--roles', 'staff'], env, 'a long enough password 1\n');
  assert.equal(quiet.code, 0, quiet.stderr);
  assert.equal(quiet.stderr, `user ${name} added with roles staff\n`, 'only the human line');
  const file = readdirSync(logDir).find((f) => f.startsWith('security.cli-')) as string;
  assert.match(readFileSync(join(logDir, file), 'utf8'), new RegExp(`"event":"admin.user_added".*"user":"${name}"`));
  assert.ok(quiet.events.some((e) => e.event === 'admin.user_added' && e.user === name), 'the helper reads them from the file');

  const loud = await runCli(['users', 'list', '--verbose'], env);
  assert.equal(loud.code, 0, loud.stderr);
  assert.match(loud.stderr, /^\{.*"stream":"security".*"event":"admin\.users_listed"/m);
  assert.match(loud.stdout, new RegExp(`^${name}\\tstaff\\tenabled`, 'm'), 'stdout stays the list');
});
