import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { lastLines } from '../../../src/backup/pg-tools.js';
import { createDb, type TestDb } from '../../helpers/backup.js';

// pg_dump / pg_restore messages (src/backup/pg-tools.ts) carry no row data: from the adversarial
// review of the backup feature, against real PostgreSQL (127.0.0.1:5432, trust).
describe('lastLines of a tool error', () => {
  let target: TestDb;
  before(async () => {
    target = await createDb('rvt');
  });
  after(async () => {
    await target.drop();
  });

  test("a tool's error quoted in messages and security events carries no row data", async () => {
    // The server's own words for a row that fails a constraint during COPY, as pg_restore relays them.
    await target.query(`CREATE TABLE public.guarded (id int, email text CHECK (email NOT LIKE '%secret%'))`);
    const err = await target.query(`COPY public.guarded FROM PROGRAM 'printf "1\\talice-secret@example.com\\n"'`).then(() => undefined, (e: Error & { detail?: string; where?: string }) => e);
    assert.ok(err, 'the row was refused');
    const stderr = `pg_restore: error: COPY failed for table "guarded": ERROR:  ${err.message}\nDETAIL:  ${err.detail}\nCONTEXT:  ${err.where}\n`;
    assert.match(stderr, /alice-secret/, 'the premise: the server quotes the row');
    const shown = lastLines(stderr);
    assert.doesNotMatch(shown, /alice-secret/);
    assert.match(shown, /violates check constraint "guarded_email_check"/);
    assert.match(shown, /COPY guarded, line 1/);
    await target.query('DROP TABLE public.guarded');
  });
});
