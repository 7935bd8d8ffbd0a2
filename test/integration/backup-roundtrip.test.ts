import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createMemoryLogger } from '../../src/log/logger.js';
import { runBackupJob } from '../../src/backup/job.js';
import { createBackup } from '../../src/backup/create.js';
import { loadBackupKey } from '../../src/backup/key.js';
import { openBackupFile } from '../../src/backup/cipher.js';
import { restoreBackup } from '../../src/backup/restore.js';
import { openSnapshot } from '../../src/backup/snapshot.js';
import { pgTarget } from '../../src/backup/pg-url.js';
import { readManifest } from '../../src/backup/manifest.js';
import { OVERHEAD_BYTES } from '../../src/backup/format.js';
import { createDb, NON_ASCII, runBackupCli, seedCrm, tableDigests, workspace, type TestDb, type Workspace } from '../helpers/backup.js';

let source: TestDb;
let ws: Workspace;
const cleanups: (() => Promise<void> | void)[] = [];

before(async () => {
  source = await createDb('src');
  await seedCrm(source, 50_000);
  ws = workspace();
});
after(async () => {
  for (const c of cleanups.reverse()) await c();
  await source.drop();
  ws.cleanup();
});

async function plaintextOf(path: string, keyFile: string, dir: string): Promise<Buffer> {
  const opened = await openBackupFile(path, loadBackupKey(keyFile, dir));
  const chunks: Buffer[] = [];
  for await (const c of opened.plaintext) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

test('backup run → verify → restore: a database with non-ASCII text, bytea, jsonb, partitions and 50k rows comes back identical', async (t) => {
  const log = createMemoryLogger();
  const t0 = performance.now();
  const job = await runBackupJob(ws.settings(source.url), log);
  const runMs = performance.now() - t0;
  const m = job.verified.manifest;

  // Only the two finished files, both mode 0600 in a 0700 folder; no partial, no plaintext dump.
  assert.deepEqual(readdirSync(ws.backupDir).sort(), [job.created.dataPath, job.created.manifestPath].map((p) => p.slice(ws.backupDir.length + 1)).sort());
  assert.equal(statSync(job.created.dataPath).mode & 0o777, 0o600);
  assert.equal(statSync(job.created.manifestPath).mode & 0o777, 0o600);
  assert.equal(statSync(ws.backupDir).mode & 0o777, 0o700);

  assert.equal(m.verified, true);
  assert.equal(m.database, source.name);
  assert.match(m.serverVersion, /^\d+/);
  assert.equal(m.ciphertext.bytes, statSync(job.created.dataPath).size);
  assert.equal(m.ciphertext.bytes - m.plaintext.bytes, OVERHEAD_BYTES, 'header + tag are the only overhead');
  assert.deepEqual(
    m.tables.map((x) => [`${x.schema}.${x.name}`, x.rows]),
    [['public.contacts', NON_ASCII.length], ['public.empty_table', 0], ['public.events_2024', 213], ['public.events_2025', 187], ['public.messages', 50_000], ['sales.deals', 3]],
  );
  assert.deepEqual(log.securityEvents.map((e) => e.event), ['backup.completed', 'backup.verified']);

  const target = await createDb('dst');
  cleanups.push(() => target.drop());
  const t1 = performance.now();
  const restored = await restoreBackup(job.created.dataPath, target.url, loadBackupKey(ws.keyFile, ws.backupDir));
  const restoreMs = performance.now() - t1;
  assert.deepEqual(restored.consistency.differences, []);
  assert.equal(restored.consistency.rows, 50_000 + NON_ASCII.length + 3 + 400);

  assert.deepEqual(await tableDigests(target), await tableDigests(source));
  const names = await target.query<{ name: string; tags: string[]; meta: { name: string }; avatar: Buffer | null }>(`SELECT name, tags, meta, avatar FROM public.contacts ORDER BY id`);
  assert.deepEqual(names.rows.map((r) => r.name), NON_ASCII);
  assert.deepEqual(names.rows.map((r) => r.meta.name), NON_ASCII);
  assert.deepEqual(names.rows[0]?.avatar, Buffer.from([0, 1, 2, 255, 0]));
  // Sequences, identity columns, views and constraints came along.
  assert.equal((await target.query(`SELECT nextval('public.contacts_id_seq') AS n`)).rows[0]?.n, String(NON_ASCII.length + 1));
  assert.equal((await target.query(`SELECT messages FROM public.contact_summary WHERE id = 2`)).rows[0]?.messages, (await source.query(`SELECT messages FROM public.contact_summary WHERE id = 2`)).rows[0]?.messages);
  await assert.rejects(target.query(`INSERT INTO sales.deals (contact_id, title, stage) VALUES (1, 'x', 'bogus')`), /check constraint/);

  t.diagnostic(`test DB: ${m.tables.reduce((a, x) => a + x.rows, 0)} rows; dump ${m.plaintext.bytes} B, backup file ${m.ciphertext.bytes} B (+${OVERHEAD_BYTES} B); backup+verify ${Math.round(runMs)} ms (dump ${m.durationMs} ms, verify ${job.verified.durationMs} ms); restore (verify + restore + check) ${Math.round(restoreMs)} ms`);
});

test('the backup file holds no readable plaintext: even an uncompressed dump shows nothing of the data', async () => {
  const marker = `PLAINTEXT-MARKER-${Date.now()}-ñandú-東京`;
  await source.query(`INSERT INTO public.contacts (name) VALUES ($1)`, [marker]);
  const key = loadBackupKey(ws.keyFile, ws.backupDir);
  // Compression 0: the dump itself carries the marker verbatim, so its absence from the file means something.
  const created = await createBackup(ws.settings(source.url), key, { compression: 0 });
  const plain = await plaintextOf(created.dataPath, ws.keyFile, ws.backupDir);
  assert.ok(plain.includes(Buffer.from(marker, 'utf8')), 'the uncompressed dump holds the marker');
  assert.ok(plain.subarray(0, 5).equals(Buffer.from('PGDMP')), 'plaintext is a pg_dump custom archive');
  assert.ok(plain.includes(Buffer.from('mensaje nº 49999', 'utf8')));

  const file = readFileSync(created.dataPath);
  for (const needle of [marker, 'PGDMP', 'mensaje', 'contacts', NON_ASCII[0] as string, 'CREATE TABLE']) {
    assert.ok(!file.includes(Buffer.from(needle, 'utf8')), `the file does not contain ${JSON.stringify(needle)}`);
  }
  // Ciphertext looks random: every byte value appears, none dominates.
  const counts = new Array<number>(256).fill(0);
  for (const b of file) counts[b] = (counts[b] ?? 0) + 1;
  assert.ok(Math.max(...counts) < (file.length / 256) * 1.5, 'no byte value is far more frequent than chance');
  assert.equal(counts.filter((c) => c === 0).length, 0);
  // A second backup of the same data: a different nonce, so nothing of the first file repeats.
  const again = await createBackup(ws.settings(source.url), key, { compression: 0 });
  assert.notEqual(readManifest(again.manifestPath).ciphertext.sha256, readManifest(created.manifestPath).ciphertext.sha256);
  assert.ok(!readFileSync(again.dataPath).subarray(30, 30 + 4096).equals(file.subarray(30, 30 + 4096)));
  await source.query(`DELETE FROM public.contacts WHERE name = $1`, [marker]);
});

test('row counts are taken in the snapshot pg_dump reads, not after it', async () => {
  const snapshot = await openSnapshot(pgTarget(source.url));
  try {
    const before = (await source.query<{ n: string }>(`SELECT count(*) AS n FROM public.messages`)).rows[0]?.n;
    await source.query(`INSERT INTO public.messages (contact_id, body) SELECT 1, 'later' FROM generate_series(1, 10)`);
    const counts = await snapshot.counts();
    assert.equal(counts.find((c) => c.name === 'messages')?.rows, Number(before), 'rows inserted after the snapshot are not counted');
  } finally {
    await snapshot.close();
    await source.query(`DELETE FROM public.messages WHERE body = 'later'`);
  }
});

test('the CLI: backup run, list, verify, restore; the restore refuses a non-empty target without --force', async (t) => {
  const env = { BACKUP_DIR: join(ws.dir, 'cli-backups'), BACKUP_KEY_FILE: ws.keyFile, BACKUP_DATABASE_URL: source.url };
  const run = await runBackupCli(['backup', 'run'], env);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^backup .*\.dump\.enc: .* 6 tables, \d+ rows, database crmgw_bk_src_/m);
  assert.match(run.stdout, /^verified: tag, checksums, pg_restore reads all \d+ entries/m);
  assert.match(run.stderr, /"event":"backup\.completed"/);
  assert.match(run.stderr, /"event":"backup\.verified"/);
  const file = readdirSync(env.BACKUP_DIR).find((f) => f.endsWith('.dump.enc')) as string;

  const list = await runBackupCli(['backup', 'list'], env);
  assert.equal(list.code, 0);
  assert.match(list.stdout, /verified {4}crmgw_bk_src_/);
  const verify = await runBackupCli(['backup', 'verify'], env);
  assert.equal(verify.code, 0, verify.stdout + verify.stderr);
  assert.match(verify.stdout, /^OK /m);

  const target = await createDb('cli');
  cleanups.push(() => target.drop());
  const restore = await runBackupCli(['backup', 'restore', join(env.BACKUP_DIR, file), '--target', target.url], env);
  assert.equal(restore.code, 0, restore.stderr);
  assert.match(restore.stdout, /consistent: 6 tables, \d+ rows, as in the manifest/);
  assert.match(restore.stderr, /"event":"backup\.restored"/);
  assert.deepEqual(await tableDigests(target), await tableDigests(source));

  // Occupied now: refused, named, exit 1, and the data is untouched.
  await target.query(`UPDATE public.contacts SET name = 'changed' WHERE id = 1`);
  const again = await runBackupCli(['backup', 'restore', join(env.BACKUP_DIR, file), '--target', target.url], env);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /BACKUP_TARGET_NOT_EMPTY: the restore target postgres@127\.0\.0\.1:5432\/crmgw_bk_cli_\w+ is not empty \(public\.contact_summary, /);
  assert.equal((await target.query(`SELECT name FROM public.contacts WHERE id = 1`)).rows[0]?.name, 'changed');

  // --force replaces what the backup holds, in one transaction.
  const forced = await runBackupCli(['backup', 'restore', join(env.BACKUP_DIR, file), '--target', target.url, '--force'], env);
  assert.equal(forced.code, 0, forced.stderr);
  assert.equal((await target.query(`SELECT name FROM public.contacts WHERE id = 1`)).rows[0]?.name, NON_ASCII[0]);
  t.diagnostic(`CLI restore --force: ${forced.stdout.split('\n')[0]}`);
});
