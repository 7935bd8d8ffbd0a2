import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { startTestAudit, rawSecurity } from '../../helpers/audit.js';
import { waitFor } from '../../helpers/wait.js';
import { verifyLogDir } from '../../../src/audit/offline/verify.js';
import { FileHeadStore } from '../../../src/audit/writer/heads.js';

const DAY = 86_400_000;
const START = Date.parse('2025-03-01T10:00:00.000Z');

function linesOf(path: string): string[] {
  const raw = path.endsWith('.gz') ? gunzipSync(readFileSync(path)).toString('utf8') : readFileSync(path, 'utf8');
  return raw.split('\n').filter((l) => l !== '');
}

test('daily rotation by UTC date, gzip of closed days (mode 0640), retention, one chain across files', async (t) => {
  // Only Date is mocked: the rotation library and the records read it; timers stay real.
  mock.timers.enable({ apis: ['Date'], now: START });
  t.after(() => mock.timers.reset());
  const audit = await startTestAudit({ retentionDays: 3 }, { keep: true });
  t.after(() => rmSync(audit.dir, { recursive: true, force: true }));
  const days = 6;
  for (let d = 0; d < days; d++) {
    mock.timers.setTime(START + d * DAY);
    for (let i = 0; i < 25; i++) audit.log.access({ requestId: `d${d}-r${i}`, method: 'GET', path: `/day/${d}`, status: 200 });
    rawSecurity(audit.log)('test.marker', { day: d });
    assert.equal(await audit.log.flush(5_000), true);
  }
  const dir = audit.dir;
  // Days 0..4 were rotated away: each ends up gzipped (plain file removed) unless retention took it.
  await waitFor(() => existsSync(join(dir, 'access-2025-03-05.log.gz')), 'the gzip of the fifth day');
  await audit.close();

  const names = readdirSync(dir).filter((n) => n.startsWith('access-')).sort();
  // Retention 3 days on 2025-03-06: days before 2025-03-03 are gone.
  assert.deepEqual(names, ['access-2025-03-03.log.gz', 'access-2025-03-04.log.gz', 'access-2025-03-05.log.gz', 'access-2025-03-06.log']);
  for (const n of readdirSync(dir).filter((x) => /\.log(\.gz)?$/.test(x))) {
    assert.equal(statSync(join(dir, n)).mode & 0o777, 0o640, `${n} has mode 0640`);
  }
  // Each file holds exactly its day's lines, with times of that UTC day.
  for (const n of names) {
    const day = n.slice('access-'.length, 'access-'.length + 10);
    const lines = linesOf(join(dir, n)).map((l) => JSON.parse(l) as { time: string; path: string });
    assert.equal(lines.length, 25, n);
    assert.ok(lines.every((l) => l.time.startsWith(day)), `${n} holds only ${day}`);
  }
  // The chain runs on across days: seq continues from file to file.
  const firstSeq = (n: string): number => (JSON.parse(linesOf(join(dir, n))[0] as string) as { seq: number }).seq;
  assert.equal(firstSeq('access-2025-03-04.log.gz'), firstSeq('access-2025-03-03.log.gz') + 25);
  // Retention removals are security events, and the recorded heads say so.
  const security = readdirSync(dir).filter((n) => n.startsWith('security-'));
  const removed = security.flatMap((n) => linesOf(join(dir, n))).map((l) => JSON.parse(l) as { event: string; file?: string }).filter((r) => r.event === 'audit.log_removed');
  assert.ok(removed.some((r) => r.file === 'access-2025-03-01.log.gz'), JSON.stringify(removed));
  const heads = await new FileHeadStore(dir).load();
  assert.ok(heads.some((h) => h.file === 'access-2025-03-01.log' && h.removedAt));
  const report = await verifyLogDir(dir, { records: heads, from: 'file' });
  assert.deepEqual(report.problems, []);
  assert.ok(report.notes.some((n) => n.includes('removed by retention')), report.notes.join('\n'));
});

test('a restart continues the chain from the newest file, and gzips a past day a crash left plain', async (t) => {
  mock.timers.enable({ apis: ['Date'], now: START });
  t.after(() => mock.timers.reset());
  const first = await startTestAudit({}, { keep: true });
  t.after(() => rmSync(first.dir, { recursive: true, force: true }));
  for (let i = 0; i < 10; i++) first.log.access({ requestId: `a${i}`, status: 200 });
  await first.log.flush(5_000);
  // Simulates a stop that skipped compression: the process ends; the next start is a day later.
  await first.close();
  mock.timers.setTime(START + DAY);
  const second = await startTestAudit({ dir: first.dir }, { keep: true });
  for (let i = 0; i < 10; i++) second.log.access({ requestId: `b${i}`, status: 200 });
  await second.close();
  const names = readdirSync(first.dir).filter((n) => n.startsWith('access-')).sort();
  assert.deepEqual(names, ['access-2025-03-01.log.gz', 'access-2025-03-02.log']);
  const next = JSON.parse(linesOf(join(first.dir, 'access-2025-03-02.log'))[0] as string) as { seq: number };
  assert.equal(next.seq, 11);
  const report = await verifyLogDir(first.dir, { records: await new FileHeadStore(first.dir).load(), from: 'file' });
  assert.equal(report.ok, true, JSON.stringify(report.problems));
});
