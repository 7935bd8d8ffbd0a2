import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { backupFile, ensurePrivateDir, fileStamp, writeFileAtomic, writeNewPrivateFile } from '../../../src/secrets/files.js';
import { tempDir } from '../../helpers/deployment.js';

const mode = (p: string): number => statSync(p).mode & 0o777;

/** Runs `fn` under a permissive umask: modes must come from the code, not from the umask. */
function withUmask<T>(mask: number, fn: () => T): T {
  const old = process.umask(mask);
  try {
    return fn();
  } finally {
    process.umask(old);
  }
}

describe('writeFileAtomic', () => {
  test('new file is 0600 even under umask 000, with no temp file left behind', () => {
    const dir = tempDir();
    const path = join(dir, '.env');
    withUmask(0o000, () => writeFileAtomic(path, 'A=1\n'));
    assert.equal(mode(path), 0o600);
    assert.equal(readFileSync(path, 'utf8'), 'A=1\n');
    assert.deepEqual(readdirSync(dir), ['.env']);
  });

  test('replacing a world-readable file leaves a 0600 file with the new content', () => {
    const dir = tempDir();
    const path = join(dir, '.env');
    writeFileSync(path, 'OLD=1\n', { mode: 0o644 });
    writeFileAtomic(path, 'NEW=1\n');
    assert.equal(mode(path), 0o600);
    assert.equal(readFileSync(path, 'utf8'), 'NEW=1\n');
  });
});

describe('writeNewPrivateFile', () => {
  test('refuses an existing file and a symlink planted at the path (O_EXCL)', () => {
    const dir = tempDir();
    const existing = join(dir, 'backup.key');
    writeFileSync(existing, 'keep me');
    assert.throws(() => writeNewPrivateFile(existing, 'x'), { code: 'EEXIST' });
    assert.equal(readFileSync(existing, 'utf8'), 'keep me');
    const target = join(dir, 'target');
    writeFileSync(target, 'victim');
    symlinkSync(target, join(dir, 'link.key'));
    assert.throws(() => writeNewPrivateFile(join(dir, 'link.key'), 'x'), { code: 'EEXIST' });
    assert.equal(readFileSync(target, 'utf8'), 'victim');
  });
});

describe('backupFile', () => {
  test('copies to a timestamped 0600 file, never overwriting an earlier backup of the same second', () => {
    const dir = tempDir();
    const path = join(dir, '.env');
    writeFileSync(path, 'V=1\n', { mode: 0o644 });
    const now = new Date('2025-03-04T05:06:07.890Z');
    const first = backupFile(path, now);
    writeFileSync(path, 'V=2\n');
    const second = backupFile(path, now);
    assert.equal(first, `${path}.backup-20250304T050607Z`);
    assert.equal(second, `${first}-1`);
    assert.equal(readFileSync(first, 'utf8'), 'V=1\n');
    assert.equal(readFileSync(second, 'utf8'), 'V=2\n');
    assert.equal(mode(first), 0o600, 'a world-readable original still gives a private backup');
    assert.equal(mode(second), 0o600);
  });

  test('fileStamp sorts like the time it names', () => {
    assert.ok(fileStamp(new Date('2025-01-01T00:00:00Z')) < fileStamp(new Date('2025-01-01T00:00:01Z')));
  });
});

describe('ensurePrivateDir', () => {
  test('creates 0700 and tightens an existing 0755 folder', () => {
    const dir = join(tempDir(), 'secrets');
    withUmask(0o000, () => ensurePrivateDir(dir));
    assert.equal(mode(dir), 0o700);
    const loose = tempDir();
    ensurePrivateDir(loose);
    assert.ok(existsSync(loose));
    assert.equal(mode(loose), 0o700);
  });
});
