import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createBackup } from '../../../src/backup/create.js';
import { loadBackupKey } from '../../../src/backup/key.js';
import { isBackupError } from '../../../src/backup/errors.js';
import { createDb, workspace, type TestDb, type Workspace } from '../../helpers/backup.js';

// createBackup (src/backup/create.ts) refuses a weak key, from the adversarial review of the
// backup feature: real PostgreSQL (127.0.0.1:5432, trust) and real files.
describe('createBackup and its key', () => {
  let source: TestDb;
  let ws: Workspace;
  before(async () => {
    source = await createDb('rv');
    ws = workspace();
  });
  after(async () => {
    await source.drop();
    ws.cleanup();
  });

  test('a predictable backup key (all zeros) is refused for new backups, before anything is connected or written', async () => {
    const dir = join(ws.dir, 'weak');
    mkdirSync(dir, { mode: 0o700 });
    const weakFile = join(dir, 'backup.key');
    writeFileSync(weakFile, `${'0'.repeat(64)}\n`, { mode: 0o600 });
    const weak = loadBackupKey(weakFile, ws.backupDir);
    const backups = join(ws.dir, 'weak-backups');
    await assert.rejects(createBackup(ws.settings(source.url, { dir: backups, keyFile: weakFile }), weak), (err: unknown) => isBackupError(err) && err.code === 'BACKUP_KEY_INVALID' && /predictable/.test(err.message));
    assert.equal(existsSync(backups), false);
  });
});
