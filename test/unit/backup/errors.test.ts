import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { BACKUP_ERROR_CODES } from '../../../src/backup/errors.js';

test('every backup error code is in docs/backups.md’s backup table, and the table lists no other', () => {
  const readme = readFileSync(new URL('../../../docs/backups.md', import.meta.url), 'utf8');
  const start = readme.indexOf('### Backup error codes');
  assert.ok(start > 0, 'docs/backups.md has a "Backup error codes" section');
  const section = readme.slice(start, readme.indexOf('\n## ', start));
  const rows = [...section.matchAll(/^\| `(BACKUP_[A-Z_]+)` \| /gm)].map((m) => m[1]);
  assert.deepEqual([...new Set(rows)].sort(), Object.keys(BACKUP_ERROR_CODES).sort());
});
