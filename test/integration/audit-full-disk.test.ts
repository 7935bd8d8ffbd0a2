import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { startTestAudit, tempDir } from '../helpers/audit.js';
import { waitFor } from '../helpers/wait.js';
import { verifyLogDir } from '../../src/audit/offline/verify.js';
import { FileHeadStore } from '../../src/audit/writer/heads.js';

/**
 * A real full disk (issue 18, item 6): a 2 MiB tmpfs of the test's own, filled by a file
 * beside the logs. A reopen succeeds on a full disk (opening a file takes no blocks), so it
 * proves nothing; the sink counts as recovered only once a line is on disk, and the alerts
 * follow its state: one per outage, one per recovery, a second outage alerted despite the
 * 10-minute cooldown.
 */

const SIZE = '2m';

function mountTmpfs(dir: string): string | undefined {
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${SIZE},mode=0755`, 'tmpfs', dir], { encoding: 'utf8' });
  return r.status === 0 ? undefined : (r.stderr || r.error?.message || `mount exited ${r.status}`).trim();
}

/** Writes 4 KiB blocks to `file` until the file system refuses one (ENOSPC). */
function fill(file: string): number {
  const fd = openSync(file, 'a');
  const block = Buffer.alloc(4096, 0x61);
  let bytes = 0;
  try {
    for (;;) bytes += writeSync(fd, block);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
  return bytes;
}

/** Alerts of `type` about the access stream on the console channel. */
const count = (text: string, alert: string): number => text.split('\n').filter((l) => l.includes(`"alert":"${alert}"`) && l.includes('"logStream":"access"')).length;

function accessPaths(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => n.startsWith('access-') && n.endsWith('.log'))
    .flatMap((n) => readFileSync(join(dir, n), 'utf8').split('\n'))
    .filter((l) => l !== '')
    .map((l) => String((JSON.parse(l) as { path?: unknown }).path));
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('a full log disk: degraded once, not "recovered" by a reopen, recovered when a line is written, and a second outage alerts again', { timeout: 60_000 }, async (t) => {
  const mountPoint = tempDir('crm-gw-fulldisk-');
  const refused = mountTmpfs(mountPoint);
  if (refused) {
    rmSync(mountPoint, { recursive: true, force: true });
    t.skip(`cannot mount a tmpfs here (${refused})`);
    return;
  }
  const dir = join(mountPoint, 'logs');
  mkdirSync(dir);
  const filler = join(mountPoint, 'filler');
  // The default alert cooldown (10 minutes) stays: the second outage must get through it.
  const audit = await startTestAudit({ dir, retryFirstMs: 50, retryMaxMs: 200 });
  // In this order: a file system with open files cannot be unmounted.
  t.after(async () => {
    await audit.close();
    spawnSync('umount', [mountPoint]);
    rmSync(mountPoint, { recursive: true, force: true });
  });
  const status = (): string | undefined => audit.log.status().find((s) => s.chain === 'access')?.state;
  // Lines bigger than the room a full disk leaves (the slack of a file's last page plus the one
  // page freed below): a write of one gets part of it on disk, never all of it.
  const request = (path: string, big = false): void => audit.log.access({ requestId: path, method: 'GET', path, status: 200, ...(big ? { detail: 'x'.repeat(12_000) } : {}) });

  for (let i = 0; i < 5; i++) request(`/before/${i}`);
  assert.equal(await audit.log.flush(5_000), true);

  // Outage 1.
  fill(filler);
  for (let i = 0; i < 20; i++) request(`/during1/${i}`, true);
  await waitFor(() => count(audit.console(), 'log_unwritable') >= 1, 'the first log_unwritable alert');
  // One page back: each retry (50-200 ms apart) reopens the file and writes part of a line.
  truncateSync(filler, statSync(filler).size - 4096);
  await sleep(2_000);
  for (let i = 20; i < 30; i++) request(`/during1/${i}`, true);
  await sleep(500);
  assert.equal(count(audit.console(), 'log_recovered'), 0, 'no recovery announced while no line can be written');
  assert.notEqual(status(), 'ok', 'the sink does not count itself healthy');
  assert.equal(count(audit.console(), 'log_unwritable'), 1, 'one alert for the outage, not one per retry');

  // Room again: the held lines are written, and that is the recovery.
  unlinkSync(filler);
  await waitFor(() => count(audit.console(), 'log_recovered') >= 1, 'the recovery once lines are written');
  assert.equal(await audit.log.flush(5_000), true);
  assert.equal(status(), 'ok');
  assert.equal(count(audit.console(), 'log_recovered'), 1);

  // Outage 2, well inside the cooldown of the first one's alerts.
  fill(filler);
  for (let i = 0; i < 40; i++) request(`/during2/${i}`);
  await waitFor(() => count(audit.console(), 'log_unwritable') === 2, 'the second outage alerted despite the cooldown');
  unlinkSync(filler);
  await waitFor(() => count(audit.console(), 'log_recovered') === 2, 'the second recovery announced');
  for (let i = 0; i < 5; i++) request(`/after/${i}`);
  assert.equal(await audit.log.flush(5_000), true);

  assert.deepEqual([count(audit.console(), 'log_unwritable'), count(audit.console(), 'log_recovered')], [2, 2], 'one of each per outage');
  const paths = accessPaths(dir);
  const n = (prefix: string): number => paths.filter((p) => p.startsWith(prefix)).length;
  assert.deepEqual([n('/before/'), n('/during1/'), n('/during2/'), n('/after/')], [5, 30, 40, 5], 'every line written, none twice');
  await audit.log.close();
  const report = await verifyLogDir(dir, { records: await new FileHeadStore(dir).load(), from: 'file' });
  assert.equal(report.ok, true, JSON.stringify(report.problems));
});
