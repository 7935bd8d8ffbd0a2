import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadBackupKey } from '../../../src/backup/key.js';

const dir = mkdtempSync(join(tmpdir(), 'crmgw-key-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const backups = join(dir, 'backups');
mkdirSync(backups);

function keyFile(name: string, content: string, mode = 0o600): string {
  const path = join(dir, name);
  writeFileSync(path, content, { mode });
  return path;
}

test('a 32-byte hex key (as setup writes it, with a newline): key id = first 8 bytes of sha256', () => {
  const hex = randomBytes(32).toString('hex');
  const k = loadBackupKey(keyFile('good.key', `${hex}\n`), backups);
  assert.ok(k.key.equals(Buffer.from(hex, 'hex')));
  assert.equal(k.idHex, createHash('sha256').update(Buffer.from(hex, 'hex')).digest('hex').slice(0, 16));
  assert.deepEqual(k.warnings, []);
});

test('anything but exactly 64 hex characters is refused, naming the file', () => {
  for (const [name, content] of [['short', 'ab'.repeat(31)], ['long', 'ab'.repeat(33)], ['odd', `${'ab'.repeat(32)}c`], ['nothex', 'zz'.repeat(32)], ['empty', '']]) {
    assert.throws(() => loadBackupKey(keyFile(`${name}.key`, content as string), backups), new RegExp(`${name}\\.key is not 32 bytes of hex`));
  }
  assert.throws(() => loadBackupKey(join(dir, 'absent.key'), backups), /no backup key at .*absent\.key: run `npx crm-gateway setup`/);
  assert.throws(() => loadBackupKey(dir, backups), /is not a regular file/);
});

test('a key readable by others still works, with a warning; a key inside the backup folder is refused (symlinks too)', () => {
  const loose = loadBackupKey(keyFile('loose.key', randomBytes(32).toString('hex'), 0o644), backups);
  assert.match(loose.warnings[0] ?? '', /mode 644: chmod 600/);
  const inside = join(backups, 'backup.key');
  writeFileSync(inside, randomBytes(32).toString('hex'), { mode: 0o600 });
  assert.throws(() => loadBackupKey(inside, backups), /inside the backup folder/);
  const link = join(dir, 'link.key');
  symlinkSync(inside, link);
  assert.throws(() => loadBackupKey(link, backups), /inside the backup folder/);
});
