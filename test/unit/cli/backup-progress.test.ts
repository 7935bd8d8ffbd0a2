import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { backupProgress } from '../../../src/cli/commands/backup-progress.js';

/** A stream that says it is (or is not) a terminal, keeping what it is given. */
function screen(isTTY: boolean): Writable & { isTTY: boolean; text: () => string } {
  const chunks: string[] = [];
  const w = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString('utf8'));
      done();
    },
  }) as Writable & { isTTY: boolean; text: () => string };
  w.isTTY = isTTY;
  w.text = () => chunks.join('');
  return w;
}

// Issue 18, item 11: `backup run` shows progress (bytes, rate) when stderr is a terminal.
test('backup run progress: bytes and rate of the partial file on a terminal, then verifying, then a cleared line', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'crm-gw-progress-'));
  try {
    // A partial file left by an earlier run is not this run's.
    writeFileSync(join(dir, 'old-2025.dump.enc.partial'), Buffer.alloc(10));
    let clock = 0;
    const out = screen(true);
    const progress = backupProgress(dir, out, () => clock);
    const partial = join(dir, 'crm-2026.dump.enc.partial');
    writeFileSync(partial, Buffer.alloc(3 * 1_048_576));
    clock = 2_000;
    await sleep(700);
    assert.ok(out.text().includes('\r\u001b[2Kbackup: 3.0 MiB written, 1.5 MiB/s'), JSON.stringify(out.text()));
    renameSync(partial, join(dir, 'crm-2026.dump.enc'));
    await sleep(700);
    assert.match(out.text(), /backup: 3\.0 MiB written; verifying/);
    progress.stop();
    assert.ok(out.text().endsWith('\r\u001b[2K'), 'the line is cleared for the summary');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('backup run progress: nothing at all when stderr is not a terminal (a log, a pipe)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'crm-gw-progress-'));
  try {
    const out = screen(false);
    const progress = backupProgress(dir, out);
    writeFileSync(join(dir, 'crm.dump.enc.partial'), Buffer.alloc(1024));
    await sleep(700);
    progress.stop();
    assert.equal(out.text(), '');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
