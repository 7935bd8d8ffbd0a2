import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createMemoryLogger } from '../../src/log/logger.js';
import { runBackupJob } from '../../src/backup/job.js';
import { createBackup } from '../../src/backup/create.js';
import { loadBackupKey, keyIdOf } from '../../src/backup/key.js';
import { verifyBackup } from '../../src/backup/verify.js';
import { HOLD_BACK_BYTES, restoreBackup, streamIntoDatabase } from '../../src/backup/restore.js';
import { openBackupFile } from '../../src/backup/cipher.js';
import { startTool, toolVersion } from '../../src/backup/pg-tools.js';
import { HoldBack } from '../../src/backup/streams.js';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { readManifest, manifestPathFor } from '../../src/backup/manifest.js';
import { pgTarget } from '../../src/backup/pg-url.js';
import { HEADER_BYTES, MAGIC, TAG_BYTES } from '../../src/backup/format.js';
import { BackupError } from '../../src/backup/errors.js';
import { waitFor } from '../helpers/wait.js';
import { createDb, runBackupCli, seedCrm, workspace, type TestDb, type Workspace } from '../helpers/backup.js';

let source: TestDb;
let target: TestDb;
let ws: Workspace;
/** A verified backup that each test copies before damaging the copy. */
let good: string;

before(async () => {
  source = await createDb('bad');
  await seedCrm(source, 2_000);
  target = await createDb('badt');
  ws = workspace();
  good = (await runBackupJob(ws.settings(source.url), createMemoryLogger())).created.dataPath;
});
after(async () => {
  await target.drop();
  await source.drop();
  ws.cleanup();
});

const key = () => loadBackupKey(ws.keyFile, ws.backupDir);

/** A copy of the good backup and its manifest, named `<name>`, in a folder of its own (mode 0700). */
function copyOfGood(name: string): string {
  const dir = join(ws.dir, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const dest = join(dir, `${name}.dump.enc`);
  copyFileSync(good, dest);
  copyFileSync(manifestPathFor(good), manifestPathFor(dest));
  return dest;
}

function flipByte(path: string, at: number): void {
  const buf = readFileSync(path);
  const i = at < 0 ? buf.length + at : at;
  buf[i] = (buf[i] as number) ^ 0x01;
  writeFileSync(path, buf);
}

async function targetIsEmpty(): Promise<boolean> {
  const { rows } = await target.query<{ n: string }>(`SELECT count(*) AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('public', 'sales') AND c.relkind IN ('r', 'v', 'S', 'p')`);
  return rows[0]?.n === '0';
}

async function rejectsWith(p: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof BackupError, `a BackupError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.match(err.message, message);
    return true;
  });
}

test('a wrong key: named by both key ids, before any decryption', async () => {
  const other = loadBackupKey(ws.otherKeyFile(), ws.backupDir);
  const file = copyOfGood('wrongkey');
  await rejectsWith(verifyBackup(file, other), 'BACKUP_KEY_MISMATCH', new RegExp(`belongs to key ${key().idHex}, but the key file holds key ${other.idHex}`));
  await rejectsWith(restoreBackup(file, target.url, other), 'BACKUP_KEY_MISMATCH', /use the key that made it/);
  assert.ok(await targetIsEmpty());
});

test('a wrong key with the header and manifest edited to claim it: authentication fails', async () => {
  const other = loadBackupKey(ws.otherKeyFile(), ws.backupDir);
  const file = copyOfGood('forgedkeyid');
  const buf = readFileSync(file);
  keyIdOf(other.key).copy(buf, MAGIC.length + 2);
  writeFileSync(file, buf);
  // The manifest's MAC is under the real key: the forger cannot make one for the other key.
  await rejectsWith(verifyBackup(file, other), 'BACKUP_KEY_MISMATCH', /manifest/);
  // Past the manifest (the restore's second pass reads the file alone), the GCM tag catches it.
  await rejectsWith(streamIntoDatabase(file, other, pgTarget(target.url)), 'BACKUP_TAMPERED', /authentication failed/);
  assert.ok(await targetIsEmpty());
});

test('a flipped byte anywhere: in the header, the ciphertext, or the tag', async () => {
  const size = readFileSync(good).length;
  const cases: [string, number, string, RegExp][] = [
    ['magic', 0, 'BACKUP_FORMAT', /not a crm-gateway backup/],
    ['nonce', HEADER_BYTES - 1, 'BACKUP_TAMPERED', /authentication failed: the file was changed or damaged/],
    ['body-start', HEADER_BYTES, 'BACKUP_TAMPERED', /authentication failed/],
    ['body-middle', Math.floor(size / 2), 'BACKUP_TAMPERED', /authentication failed/],
    ['tag', -1, 'BACKUP_TAMPERED', /authentication failed/],
  ];
  for (const [name, at, code, message] of cases) {
    const file = copyOfGood(`flip-${name}`);
    flipByte(file, at);
    await rejectsWith(verifyBackup(file, key()), code, message);
    // The verdict is recorded: doctor no longer counts this backup.
    const m = readManifest(manifestPathFor(file), key());
    assert.equal(m.verified, false, name);
    assert.match(m.verifyError ?? '', new RegExp(code));
    await rejectsWith(restoreBackup(file, target.url, key()), code, message);
    assert.ok(await targetIsEmpty(), `nothing restored after a flipped ${name} byte`);
  }
});

test('a truncated file: named with both sizes; shorter than a header too', async () => {
  const file = copyOfGood('truncated');
  const size = readFileSync(file).length;
  truncateSync(file, size - 1000);
  await rejectsWith(verifyBackup(file, key()), 'BACKUP_TRUNCATED', new RegExp(`truncated: ${size - 1000} bytes, its manifest says ${size}`));
  await rejectsWith(restoreBackup(file, target.url, key()), 'BACKUP_TRUNCATED', /truncated/);
  truncateSync(file, 12);
  await rejectsWith(verifyBackup(file, key()), 'BACKUP_TRUNCATED', /12 bytes/);
  // Without the manifest's size (the second pass), a cut-off file fails the tag.
  const cut = copyOfGood('cut');
  truncateSync(cut, size - TAG_BYTES - 5);
  await rejectsWith(streamIntoDatabase(cut, key(), pgTarget(target.url)), 'BACKUP_TAMPERED', /authentication failed/);
  assert.ok(await targetIsEmpty());
});

test('a missing or edited manifest', async () => {
  const file = copyOfGood('nomanifest');
  rmSync(manifestPathFor(file));
  await rejectsWith(verifyBackup(file, key()), 'BACKUP_MANIFEST_MISSING', /the manifest .*nomanifest\.manifest\.json is missing/);
  await rejectsWith(restoreBackup(file, target.url, key()), 'BACKUP_MANIFEST_MISSING', /missing/);

  const edited = copyOfGood('edited');
  const mpath = manifestPathFor(edited);
  const m = JSON.parse(readFileSync(mpath, 'utf8')) as { tables: { rows: number }[] };
  (m.tables[0] as { rows: number }).rows += 1;
  writeFileSync(mpath, JSON.stringify(m));
  await rejectsWith(verifyBackup(edited, key()), 'BACKUP_MANIFEST_INVALID', /was edited: its authentication code does not match/);
  writeFileSync(mpath, '{ not json');
  await rejectsWith(verifyBackup(edited, key()), 'BACKUP_MANIFEST_INVALID', /not JSON/);
  assert.ok(await targetIsEmpty());
});

test('a manifest swapped in from another backup: checksums do not match', async () => {
  const second = (await createBackup(ws.settings(source.url), key())).dataPath;
  const file = copyOfGood('swapped');
  copyFileSync(manifestPathFor(second), manifestPathFor(file));
  await rejectsWith(verifyBackup(file, key()), 'BACKUP_CHECKSUM_MISMATCH', /differs from its manifest/);
});

test('an unreachable database: BACKUP_DB_UNREACHABLE, exit 1, no file of any kind left', async () => {
  const dir = join(ws.dir, 'unreachable');
  const log = createMemoryLogger();
  await rejectsWith(runBackupJob(ws.settings('postgres://postgres@127.0.0.1:1/nowhere', { dir }), log), 'BACKUP_DB_UNREACHABLE', /cannot connect to the database postgres@127\.0\.0\.1:1\/nowhere: connect ECONNREFUSED/);
  assert.equal(existsSync(dir) ? readdirSync(dir).length : 0, 0);
  assert.equal(log.securityEvents[0]?.event, 'backup.failed');
  assert.equal(log.securityEvents[0]?.code, 'BACKUP_DB_UNREACHABLE');

  const cli = await runBackupCli(['backup', 'run'], { BACKUP_DIR: dir, BACKUP_KEY_FILE: ws.keyFile, BACKUP_DATABASE_URL: 'postgres://postgres:secret-pw@127.0.0.1:1/nowhere' });
  assert.equal(cli.code, 1);
  assert.match(cli.stderr, /crm-gateway: error: BACKUP_DB_UNREACHABLE: cannot connect to the database postgres@127\.0\.0\.1:1\/nowhere/);
  assert.ok(!cli.stderr.includes('secret-pw'), 'the password is never printed');
  assert.equal(existsSync(dir) ? readdirSync(dir).length : 0, 0);

  const missing = await runBackupCli(['backup', 'run'], { BACKUP_DIR: dir, BACKUP_KEY_FILE: ws.keyFile });
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /BACKUP_CONFIG: no database to back up: set BACKUP_DATABASE_URL \(or DATABASE_URL\)/);
  const unreachableTarget = await runBackupCli(['backup', 'restore', good, '--target', 'postgres://postgres@127.0.0.1:1/x'], { BACKUP_DIR: ws.backupDir, BACKUP_KEY_FILE: ws.keyFile });
  assert.equal(unreachableTarget.code, 1);
  assert.match(unreachableTarget.stderr, /BACKUP_DB_UNREACHABLE: cannot connect to the restore target postgres@127\.0\.0\.1:1\/x/);
});

test('a database that does not exist on a reachable server', async () => {
  await rejectsWith(createBackup(ws.settings(`postgres://postgres@127.0.0.1:5432/crmgw_bk_absent_db`), key()), 'BACKUP_DB_UNREACHABLE', /crmgw_bk_absent_db.*does not exist/);
});

test('the CLI on bad input: exit 1 and the code in the message', async () => {
  const file = copyOfGood('cli-flip');
  flipByte(file, HEADER_BYTES + 10);
  const env = { BACKUP_DIR: ws.backupDir, BACKUP_KEY_FILE: ws.keyFile };
  const verify = await runBackupCli(['backup', 'verify', file], env);
  assert.equal(verify.code, 1);
  assert.match(verify.stdout, /^FAILED {2}.*cli-flip\.dump\.enc: BACKUP_TAMPERED: /m);
  assert.match(verify.stderr, /"event":"backup\.verify_failed".*"code":"BACKUP_TAMPERED"/);
  const restore = await runBackupCli(['backup', 'restore', file, '--target', target.url], env);
  assert.equal(restore.code, 1);
  assert.match(restore.stderr, /BACKUP_TAMPERED: .*authentication failed/);
  const badKey = join(ws.dir, 'short.key');
  writeFileSync(badKey, 'abcd\n', { mode: 0o600 });
  const short = await runBackupCli(['backup', 'verify', good], { ...env, BACKUP_KEY_FILE: badKey });
  assert.equal(short.code, 1);
  assert.match(short.stderr, /BACKUP_KEY_INVALID: the backup key .*short\.key is not 32 bytes of hex/);
  const usage = await runBackupCli(['backup', 'restore', file], env);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /needs --target/);
  assert.ok(await targetIsEmpty());
});

test('a tag that fails at the very end: pg_restore never sees the end of the archive, so nothing commits', async () => {
  // streamIntoDatabase is the restore's second pass: the file is damaged after verification passed.
  const file = copyOfGood('late');
  flipByte(file, -1);
  await rejectsWith(streamIntoDatabase(file, key(), pgTarget(target.url)), 'BACKUP_TAMPERED', /authentication failed/);
  assert.ok(await targetIsEmpty(), 'pg_restore was killed before it could commit');
  // The same file undamaged restores fine through the same path (the test above is not vacuous).
  flipByte(file, -1);
  await streamIntoDatabase(file, key(), pgTarget(target.url));
  assert.ok(!(await targetIsEmpty()));
  await target.query(`DROP SCHEMA sales CASCADE; DROP SCHEMA public CASCADE; CREATE SCHEMA public;`);
  assert.ok(await targetIsEmpty());
});

test('pg_restore failing half-way (--force over a database whose view blocks a DROP): rolled back whole', async () => {
  await target.query(`CREATE TABLE public.contacts (id bigint PRIMARY KEY, name text); INSERT INTO public.contacts VALUES (1, 'keep me'); CREATE VIEW public.mine AS SELECT * FROM public.contacts;`);
  await rejectsWith(restoreBackup(good, target.url, key(), { force: true }), 'BACKUP_RESTORE_FAILED', /pg_restore into .* failed \(exit 1\), nothing was committed: .*(depend|cannot drop)/);
  const { rows } = await target.query<{ name: string }>(`SELECT name FROM public.contacts`);
  assert.deepEqual(rows.map((r) => r.name), ['keep me']);
  assert.equal((await target.query(`SELECT to_regclass('public.messages') AS t`)).rows[0]?.t, null, 'no table of the backup was left behind');
  await target.query(`DROP VIEW public.mine; DROP TABLE public.contacts;`);
});

test('a run stopped half-way (shutdown): pg_dump killed, the partial file removed', async () => {
  const big = await createDb('big');
  try {
    await big.query(`CREATE TABLE blob (id int, data text); INSERT INTO blob SELECT g, repeat(md5(g::text), 40) FROM generate_series(1, 300000) g;`);
    const dir = join(ws.dir, 'aborted');
    const abort = new AbortController();
    const run = createBackup(ws.settings(big.url, { dir }), key(), { signal: abort.signal, compression: 0 });
    run.catch(() => undefined);
    await waitFor(() => existsSync(dir) && readdirSync(dir).some((f) => f.endsWith('.partial')), 'the partial file', 30_000);
    abort.abort();
    await rejectsWith(run, 'BACKUP_ABORTED', /stopped/);
    assert.deepEqual(readdirSync(dir), []);
  } finally {
    await big.drop();
  }
});

test('a key inside the backup folder is refused', async () => {
  const inside = join(ws.backupDir, 'backup.key');
  copyFileSync(ws.keyFile, inside);
  try {
    assert.throws(() => loadBackupKey(inside, ws.backupDir), /BACKUP_KEY_INVALID|inside the backup folder/);
  } finally {
    rmSync(inside);
  }
  // A renamed backup still verifies: the name is not what binds it to its manifest.
  const moved = copyOfGood('renamed');
  renameSync(moved, moved.replace('renamed.dump.enc', 'renamed2.dump.enc'));
  renameSync(manifestPathFor(moved), manifestPathFor(moved.replace('renamed.dump.enc', 'renamed2.dump.enc')));
  await verifyBackup(moved.replace('renamed.dump.enc', 'renamed2.dump.enc'), key());
});

test('the premise of the hold-back: pg_restore given all of an archive but its last byte commits nothing', async () => {
  const opened = await openBackupFile(good, key());
  const chunks: Buffer[] = [];
  for await (const c of opened.plaintext) chunks.push(c as Buffer);
  const archive = Buffer.concat(chunks);
  const restore = startTool('pg_restore', ['--single-transaction', '--exit-on-error', `--dbname=${target.url}`], { PATH: process.env.PATH ?? '' }, { stdin: 'pipe', stdout: 'ignore' });
  // A clean EOF, no kill: the archive's own framing must be what stops the commit.
  restore.child.stdin?.end(archive.subarray(0, archive.length - 1));
  const exit = await restore.exited;
  assert.notEqual(exit.code, 0);
  assert.match(exit.stderr, /end of file|could not read/);
  assert.ok(await targetIsEmpty());

  // And the restore path holds back the end: a tampered tag lets no more than length − HOLD_BACK_BYTES through.
  const file = copyOfGood('holdback');
  flipByte(file, -1);
  const tampered = await openBackupFile(file, key());
  let passed = 0;
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      passed += chunk.length;
      done();
    },
  });
  await assert.rejects(pipeline(tampered.plaintext, new HoldBack(HOLD_BACK_BYTES), sink), /authentication failed/);
  assert.ok(passed <= archive.length - HOLD_BACK_BYTES, `${passed} bytes passed of ${archive.length}`);
});

test('pg_dump not installed: BACKUP_TOOL_MISSING before anything is connected or written', async () => {
  await rejectsWith(toolVersion('pg_dump', { PATH: '/nonexistent' }), 'BACKUP_TOOL_MISSING', /pg_dump is not installed or not on PATH/);
  const dir = join(ws.dir, 'notool');
  const cli = await runBackupCli(['backup', 'run'], { PATH: '/nonexistent', BACKUP_DIR: dir, BACKUP_KEY_FILE: ws.keyFile, BACKUP_DATABASE_URL: source.url });
  assert.equal(cli.code, 1);
  assert.match(cli.stderr, /crm-gateway: error: BACKUP_TOOL_MISSING: pg_dump is not installed/);
  assert.equal(existsSync(dir), false);
});
