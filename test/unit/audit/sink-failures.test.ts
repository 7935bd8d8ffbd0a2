import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs, { readFileSync, readdirSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestAudit, tempDir } from '../../helpers/audit.js';
import { waitFor } from '../../helpers/wait.js';
import { verifyLogDir } from '../../../src/audit/offline/verify.js';
import { FileHeadStore } from '../../../src/audit/writer/heads.js';
import type { StreamFs } from '../../../src/audit/writer/fs-tap.js';
import { createAuditLogger } from '../../../src/audit/writer/audit-logger.js';
import { alertsConfig } from '../../helpers/audit.js';

const today = (): string => new Date().toISOString().slice(0, 10);

function accessLines(dir: string): Record<string, unknown>[] {
  return readdirSync(dir)
    .filter((n) => n.startsWith('access-') && n.endsWith('.log'))
    .flatMap((n) => readFileSync(join(dir, n), 'utf8').split('\n'))
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/**
 * A disk that takes writes only when let through: node's own fs, with the completion of every
 * write held while the gate is shut. What the process holds meanwhile is what a slow disk costs.
 */
function gatedFs(): { fs: StreamFs; open(): void; shut(): void } {
  let shut = false;
  let held: (() => void)[] = [];
  const hold = (fn: () => void): void => {
    if (shut) held.push(fn);
    else fn();
  };
  const real = fs as unknown as StreamFs;
  return {
    fs: {
      open: (p, f, m, cb) => real.open(p, f, m, cb),
      write: (fd, b, o, l, pos, cb) => hold(() => real.write(fd, b, o, l, pos, cb)),
      writev: (fd, bs, pos, cb) => hold(() => real.writev(fd, bs, pos, cb)),
      close: (fd, cb) => real.close(fd, cb),
    },
    shut: () => (shut = true),
    open() {
      shut = false;
      const run = held;
      held = [];
      for (const fn of run) fn();
    },
  };
}

test('a slow disk cannot make the process hold more than LOG_MAX_BACKLOG; drops are counted and recorded in the chain', async (t) => {
  const gate = gatedFs();
  const max = 128 * 1024;
  const audit = await startTestAudit({ maxBacklogBytes: max, fs: gate.fs });
  t.after(() => audit.close());
  await audit.log.flush(5_000);
  gate.shut();
  const total = 3_000;
  let peak = 0;
  for (let i = 0; i < total; i++) {
    audit.log.access({ requestId: `req-${i}`, method: 'GET', path: '/slow', status: 200, detail: 'x'.repeat(100) });
    peak = Math.max(peak, audit.log.status().find((s) => s.chain === 'access')?.backlogBytes ?? 0);
    if (i % 100 === 0) await new Promise((r) => setImmediate(r));
  }
  const during = audit.log.status().find((s) => s.chain === 'access');
  assert.ok(peak <= max, `held ${peak} bytes, bound ${max}`);
  assert.ok((during?.droppedLines ?? 0) > 0, 'lines were dropped once the bound was reached');
  assert.match(audit.console(), /"alert":"log_backlog_full"/, 'the console channel got the alert');
  assert.equal(audit.log.accepting(), true, 'fail-open by default');

  gate.open();
  assert.equal(await audit.log.flush(10_000), true);
  const st = audit.log.status().find((s) => s.chain === 'access');
  const lines = accessLines(audit.dir);
  const requests = lines.filter((l) => typeof l.requestId === 'string' && String(l.requestId).startsWith('req-'));
  const drop = lines.find((l) => l.event === 'audit.lines_dropped');
  assert.ok(drop, 'the access stream records its own drop');
  assert.equal(requests.length + Number(drop.count), total, 'every request is either written or counted as dropped');
  assert.equal(Number(drop.count), st?.droppedLines);
  await audit.log.close();
  const report = await verifyLogDir(audit.dir, { records: await new FileHeadStore(audit.dir).load(), from: 'file' });
  assert.equal(report.ok, true, JSON.stringify(report.problems));
});

test('disk full (ENOSPC): lines are held, an alert goes to the console, and once the disk accepts writes every line is written exactly once', async (t) => {
  const dir = tempDir('crm-gw-audit-full-');
  // The day's access file is /dev/full: the kernel refuses every write with ENOSPC.
  symlinkSync('/dev/full', join(dir, `access-${today()}.log`));
  const audit = await startTestAudit({ dir, retryFirstMs: 50, retryMaxMs: 200 });
  t.after(() => audit.close());
  for (let i = 0; i < 200; i++) audit.log.access({ requestId: `full-${i}`, status: 200 });
  await waitFor(() => /"alert":"log_unwritable"/.test(audit.console()), 'the log_unwritable alert on the console');
  assert.match(audit.console(), /ENOSPC/);
  assert.notEqual(audit.log.status().find((s) => s.chain === 'access')?.state, 'ok');
  assert.equal(audit.log.accepting(), true);
  for (let i = 200; i < 300; i++) audit.log.access({ requestId: `full-${i}`, status: 200 });

  // The disk comes back: the path is a regular file again.
  unlinkSync(join(dir, `access-${today()}.log`));
  assert.equal(await audit.log.flush(10_000), true);
  await waitFor(() => /"alert":"log_recovered"/.test(audit.console()), 'the recovery notice');
  const ids = accessLines(dir).map((l) => l.requestId);
  assert.equal(ids.length, 300);
  assert.deepEqual(ids, Array.from({ length: 300 }, (_, i) => `full-${i}`), 'in order, none lost, none twice');
  await audit.log.close();
  const report = await verifyLogDir(dir, { records: await new FileHeadStore(dir).load(), from: 'file' });
  assert.equal(report.ok, true, JSON.stringify(report.problems));
  // The security stream recorded the outage too (written once the disk was back).
  const security = readdirSync(dir).filter((n) => n.startsWith('security-')).map((n) => readFileSync(join(dir, n), 'utf8')).join('');
  assert.match(security, /"event":"alert.log_unwritable"/);
});

test('AUDIT_FAIL_CLOSED: not accepting while the disk refuses, accepting again once it recovers', async (t) => {
  const dir = tempDir('crm-gw-audit-fc-');
  symlinkSync('/dev/full', join(dir, `access-${today()}.log`));
  const audit = await startTestAudit({ dir, failClosed: true, retryFirstMs: 50, retryMaxMs: 200 });
  t.after(() => audit.close());
  audit.log.access({ requestId: 'fc-1', status: 200 });
  await waitFor(() => !audit.log.accepting(), 'fail-closed refusal');
  unlinkSync(join(dir, `access-${today()}.log`));
  await waitFor(() => audit.log.accepting(), 'accepting again');
  await audit.log.flush(5_000);
  assert.deepEqual(accessLines(dir).map((l) => l.requestId), ['fc-1']);
});

test('a log folder that cannot be created: fail-open starts degraded with an alert; fail-closed refuses to start', async (t) => {
  const parent = tempDir('crm-gw-audit-nodir-');
  t.after(() => fs.rmSync(parent, { recursive: true, force: true }));
  const notADir = join(parent, 'logs');
  writeFileSync(notADir, 'a file where the log folder should be');
  const open = await startTestAudit({ dir: notADir, retryFirstMs: 50 }, { keep: true });
  assert.match(open.console(), /"alert":"log_unwritable"/);
  assert.equal(open.log.accepting(), true);
  await open.log.close();
  // Nothing is lost silently: what the disk never took is handed to the console channel at exit.
  assert.match(open.console(), /"stream":"unwritten","chain":"app"/);
  await assert.rejects(
    createAuditLogger({ dir: notADir, retentionDays: 30, level: 'info', maxBacklogBytes: 1 << 20, failClosed: true, node: 't', alerts: alertsConfig(), console: new (await import('node:stream')).PassThrough(), resourceProbe: false }),
    /AUDIT_FAIL_CLOSED=true refuses to start/,
  );
});
