import { test, mock, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readFileSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { gunzipSync, gzipSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import { startTestAudit, tempDir } from '../../helpers/audit.js';
import { waitFor } from '../../helpers/wait.js';
import { verifyLogDir, type VerifyReport } from '../../../src/audit/offline/verify.js';
import { FileHeadStore } from '../../../src/audit/writer/heads.js';

const DAY = 86_400_000;
const START = Date.parse('2025-05-10T08:00:00.000Z');
let fixture: string;

/** Three days of real logs: two gzipped days and the current plain one, with chain heads. */
before(async () => {
  mock.timers.enable({ apis: ['Date'], now: START });
  const audit = await startTestAudit({}, { keep: true });
  fixture = audit.dir;
  for (let d = 0; d < 3; d++) {
    mock.timers.setTime(START + d * DAY);
    for (let i = 0; i < 20; i++) audit.log.access({ requestId: `d${d}-${i}`, method: 'GET', path: `/p/${i}`, status: 200 });
    await audit.log.flush(5_000);
  }
  await waitFor(() => readdirSync(fixture).includes('access-2025-05-11.log.gz'), 'gzip of day 2');
  await audit.close();
  mock.timers.reset();
});
after(() => rmSync(fixture, { recursive: true, force: true }));

function copy(): string {
  const dir = tempDir('crm-gw-verify-');
  cpSync(fixture, dir, { recursive: true });
  return dir;
}

async function verify(dir: string, withHeads = true): Promise<VerifyReport> {
  const heads = withHeads ? { records: await new FileHeadStore(dir).load(), from: 'file' } : undefined;
  const r = await verifyLogDir(dir, heads);
  rmSync(dir, { recursive: true, force: true });
  return r;
}

const CURRENT = 'access-2025-05-12.log';
const readLines = (dir: string, name: string): string[] => readFileSync(join(dir, name), 'utf8').split('\n').filter((l) => l !== '');
const writeLines = (dir: string, name: string, lines: string[]): void => writeFileSync(join(dir, name), `${lines.join('\n')}\n`);

test('a clean run verifies', async () => {
  const r = await verify(copy());
  assert.equal(r.ok, true, JSON.stringify(r.problems));
  const access = r.chains.find((c) => c.chain === 'access');
  assert.deepEqual([access?.files, access?.lines, access?.firstSeq, access?.lastSeq], [3, 60, 1, 60]);
});

test('an edited line is named (file and line)', async () => {
  const dir = copy();
  const lines = readLines(dir, CURRENT);
  lines[4] = (lines[4] as string).replace('"status":200', '"status":201');
  writeLines(dir, CURRENT, lines);
  const r = await verify(dir);
  assert.equal(r.ok, false);
  assert.deepEqual(r.problems.map((p) => [p.kind, p.file, p.line]), [['changed', CURRENT, 5]]);
});

test('a deleted line is named', async () => {
  const dir = copy();
  const lines = readLines(dir, CURRENT);
  lines.splice(7, 1);
  writeLines(dir, CURRENT, lines);
  const r = await verify(dir);
  assert.deepEqual(r.problems.map((p) => [p.kind, p.file, p.line]), [['removed', CURRENT, 8]]);
  assert.match(r.problems[0]?.message ?? '', /seq 48\.\.48/);
});

test('reordered lines are named', async () => {
  const dir = copy();
  const lines = readLines(dir, CURRENT);
  [lines[2], lines[3]] = [lines[3] as string, lines[2] as string];
  writeLines(dir, CURRENT, lines);
  const r = await verify(dir);
  assert.deepEqual(r.problems.map((p) => [p.kind, p.file, p.line]), [['reordered', CURRENT, 3]]);
});

test('a deleted day in the middle is caught by the chain, and by the heads', async () => {
  const dir = copy();
  unlinkSync(join(dir, 'access-2025-05-11.log.gz'));
  const r = await verify(dir);
  const kinds = r.problems.map((p) => p.kind).sort();
  assert.deepEqual(kinds, ['missing-file', 'removed']);
  assert.match(r.problems.find((p) => p.kind === 'removed')?.message ?? '', /between access-2025-05-10\.log and access-2025-05-12\.log/);
});

test('a deleted newest day is caught by the chain heads recorded outside the file', async () => {
  const dir = copy();
  unlinkSync(join(dir, CURRENT));
  const r = await verify(dir);
  assert.deepEqual(r.problems.map((p) => [p.kind, p.file]), [['missing-file', CURRENT]]);
});

test('a truncated gzip file is named', async () => {
  const dir = copy();
  const gz = join(dir, 'access-2025-05-10.log.gz');
  const whole = readFileSync(gz);
  writeFileSync(gz, whole.subarray(0, Math.floor(whole.length * 0.7)));
  const r = await verify(dir);
  assert.ok(r.problems.some((p) => p.kind === 'truncated-file' && p.file === 'access-2025-05-10.log'), JSON.stringify(r.problems));
  assert.equal(r.ok, false);
});

test('lines cut from the end of the current file are caught by the heads', async () => {
  const dir = copy();
  writeLines(dir, CURRENT, readLines(dir, CURRENT).slice(0, 15));
  const r = await verify(dir);
  assert.deepEqual(r.problems.map((p) => [p.kind, p.file]), [['missing-tail', CURRENT]]);
});

test('a chain rewritten from an edited line onwards passes the chain check but not the heads', async () => {
  const dir = copy();
  const lines = readLines(dir, CURRENT);
  let prev = (JSON.parse(lines[0] as string) as { prev: string }).prev;
  const rewritten = lines.map((line, i) => {
    const rec = JSON.parse(line) as Record<string, unknown>;
    if (i === 3) rec.status = 500;
    delete rec.hash;
    rec.prev = prev;
    const prefix = JSON.stringify(rec).slice(0, -1);
    const hash = createHash('sha256').update(prefix).digest('hex');
    prev = hash;
    return `${prefix},"hash":"${hash}"}`;
  });
  writeLines(dir, CURRENT, rewritten);
  const r = await verify(dir);
  assert.deepEqual(r.problems.map((p) => p.kind), ['head-mismatch']);
});

test('a gzipped day edited and re-compressed is caught', async () => {
  const dir = copy();
  const gz = join(dir, 'access-2025-05-11.log.gz');
  const text = gunzipSync(readFileSync(gz)).toString('utf8').replace('"path":"/p/7"', '"path":"/p/8"');
  writeFileSync(gz, gzipSync(text));
  const r = await verify(dir);
  assert.deepEqual(r.problems.map((p) => [p.kind, p.file, p.line]), [['changed', 'access-2025-05-11.log', 8]]);
});

test('npx crm-gateway audit verify: exit 0 on a clean folder, 1 naming the first problem', () => {
  const run = (dir: string): { status: number | null; out: string } => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `import { run } from './src/cli/main.ts'; process.exitCode = await run(['audit', 'verify', ${JSON.stringify(dir)}]);`], {
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, GATEWAY_CONFIG: '/nonexistent.yaml', DATABASE_URL: '' },
    });
    return { status: r.status, out: r.stdout + r.stderr };
  };
  const clean = copy();
  const ok = run(clean);
  assert.equal(ok.status, 0, ok.out);
  assert.match(ok.out, /OK \(chain heads from .*\.chain-heads\.json\)/);
  const lines = readLines(clean, CURRENT);
  lines[9] = (lines[9] as string).replace('/p/9', '/p/x');
  writeLines(clean, CURRENT, lines);
  const bad = run(clean);
  rmSync(clean, { recursive: true, force: true });
  assert.equal(bad.status, 1, bad.out);
  assert.match(bad.out, new RegExp(`CHANGED access ${CURRENT.replace(/\./g, '\\.')}:10`));
});

// Tamper evidence at the start of a chain (from the adversarial review of the audit log).
const fileOf = (dir: string, prefix: string): string => readdirSync(dir).find((n) => n.startsWith(prefix) && n.endsWith('.log')) as string;

test('lines removed from the start of the oldest file are caught by the chain heads', async () => {
  const audit = await startTestAudit({}, { keep: true });
  try {
    for (let i = 0; i < 20; i++) audit.log.access({ requestId: `r${i}`, method: 'GET', path: `/p/${i}`, status: 200 });
    await audit.log.close();
    const name = fileOf(audit.dir, 'access-');
    const lines = readFileSync(join(audit.dir, name), 'utf8').split('\n').filter((l) => l !== '');
    // The attacker drops the first five lines: what is left still links line to line.
    writeFileSync(join(audit.dir, name), `${lines.slice(5).join('\n')}\n`);
    const r = await verifyLogDir(audit.dir, { records: await new FileHeadStore(audit.dir).load(), from: 'file' });
    assert.equal(r.ok, false, 'verify must fail');
    assert.deepEqual(r.problems.map((p) => [p.kind, p.file, p.line]), [['removed', name, 1]]);
    assert.match(r.problems[0]?.message ?? '', /seq 1\.\.5 were removed from the start/);
  } finally {
    await audit.close();
    rmSync(audit.dir, { recursive: true, force: true });
  }
});

test('an untouched chain with heads still verifies: no false removal at its start', async () => {
  const audit = await startTestAudit({}, { keep: true });
  try {
    for (let i = 0; i < 5; i++) audit.log.access({ requestId: `r${i}`, status: 200 });
    await audit.log.close();
    const name = fileOf(audit.dir, 'access-');
    const r = await verifyLogDir(audit.dir, { records: await new FileHeadStore(audit.dir).load(), from: 'file' });
    assert.equal(r.ok, true, JSON.stringify(r.problems));
    assert.ok(r.chains.some((c) => c.chain === 'access' && c.lines === 5), name);
  } finally {
    await audit.close();
    rmSync(audit.dir, { recursive: true, force: true });
  }
});
