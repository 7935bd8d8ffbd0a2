import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { createBackup } from '../../../src/backup/create.js';
import { openBackupFile } from '../../../src/backup/cipher.js';
import { HEADER_BYTES } from '../../../src/backup/format.js';
import { loadBackupKey, type BackupKey } from '../../../src/backup/key.js';
import { pgTarget } from '../../../src/backup/pg-url.js';
import { streamIntoDatabase } from '../../../src/backup/restore.js';
import { verifyBackup } from '../../../src/backup/verify.js';
import { isBackupError } from '../../../src/backup/errors.js';
import { createDb, workspace, type TestDb, type Workspace } from '../../helpers/backup.js';

// The restore pass (src/backup/restore.ts) against a backup changed after it was written, from
// the adversarial review of the backup feature: real PostgreSQL (127.0.0.1:5432, trust), real
// files and real pg_dump / pg_restore processes.
let source: TestDb;
let target: TestDb;
let ws: Workspace;
let key: BackupKey;

before(async () => {
  source = await createDb('rv');
  await source.query(`CREATE TABLE public.alpha (id integer); INSERT INTO public.alpha VALUES (1);
    CREATE TABLE public.bulk (id int, data text); INSERT INTO public.bulk SELECT g, md5(g::text) FROM generate_series(1, 20000) g;`);
  target = await createDb('rvt');
  ws = workspace();
  key = loadBackupKey(ws.keyFile, ws.backupDir);
});
after(async () => {
  await target.drop();
  await source.drop();
  ws.cleanup();
});

async function plaintextOf(file: string): Promise<Buffer> {
  const opened = await openBackupFile(file, key);
  const chunks: Buffer[] = [];
  for await (const c of opened.plaintext) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function userTables(db: TestDb): Promise<string[]> {
  const { rows } = await db.query<{ t: string }>(`SELECT relname AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname = 'public' ORDER BY 1`);
  return rows.map((r) => r.t);
}

/**
 * AES-GCM is CTR underneath: flipping ciphertext bits flips the same plaintext bits. Someone
 * who can write the file and knows a piece of its plaintext (the CRM's public schema is in the
 * archive's table of contents, uncompressed) can rewrite that piece; only the tag at the very
 * end notices. This rewrites `CREATE TABLE public.alpha (...)` into a statement that commits
 * pg_restore's single transaction early.
 */
function rewritePlaintext(file: string, plain: Buffer, from: string, to: string): void {
  const at = plain.indexOf(from);
  assert.ok(at >= 0, `"${from}" is in the archive`);
  const evil = Buffer.from(to.padEnd(from.length, ' '));
  assert.equal(evil.length, from.length);
  const buf = readFileSync(file);
  for (let i = 0; i < evil.length; i++) buf[HEADER_BYTES + at + i] = (buf[HEADER_BYTES + at + i] as number) ^ plain[at + i]! ^ evil[i]!;
  writeFileSync(file, buf);
}

test('a backup changed after verification (known-plaintext bit flips) cannot commit anything into the target', async () => {
  const made = await createBackup(ws.settings(source.url), key, { compression: 0 });
  const plain = await plaintextOf(made.dataPath);
  const from = 'CREATE TABLE public.alpha (\n    id integer\n);';
  rewritePlaintext(made.dataPath, plain, from, 'COMMIT;CREATE TABLE public.alpha(id int);');
  await assert.rejects(streamIntoDatabase(made.dataPath, key, pgTarget(target.url)), (err: unknown) => isBackupError(err) && err.code === 'BACKUP_TAMPERED');
  assert.deepEqual(await userTables(target), [], 'nothing of a file that fails authentication reached the target');
});

test('the restore pass releases only blocks identical to those the verification authenticated', async () => {
  const made = await createBackup(ws.settings(source.url), key, { compression: 0 });
  const verified = await verifyBackup(made.dataPath, key, { record: false });
  const original = readFileSync(made.dataPath);
  rewritePlaintext(made.dataPath, await plaintextOf(made.dataPath), 'CREATE TABLE public.alpha (\n    id integer\n);', 'COMMIT;CREATE TABLE public.alpha(id int);');
  await assert.rejects(streamIntoDatabase(made.dataPath, key, pgTarget(target.url), {}, verified.fingerprint), (err: unknown) => isBackupError(err) && err.code === 'BACKUP_TAMPERED' && /changed since the file was verified/.test(err.message));
  assert.deepEqual(await userTables(target), []);
  // The unchanged file goes through the same path (the check above is not vacuous).
  writeFileSync(made.dataPath, original);
  await streamIntoDatabase(made.dataPath, key, pgTarget(target.url), {}, verified.fingerprint);
  assert.deepEqual(await userTables(target), ['alpha', 'bulk']);
  await target.query('DROP TABLE public.alpha, public.bulk');
});
