import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, utimesSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { backupsCheck } from '../../src/doctor/checks/backups.js';
import { parseConfig } from '../../src/config/load.js';
import { createMemoryLogger } from '../../src/log/logger.js';
import { runBackupJob } from '../../src/backup/job.js';
import { createBackup } from '../../src/backup/create.js';
import { verifyBackup } from '../../src/backup/verify.js';
import { loadBackupKey } from '../../src/backup/key.js';
import { readCatalog } from '../../src/backup/catalog.js';
import { applyRetention, DAY_MS } from '../../src/backup/retention.js';
import { HEADER_BYTES } from '../../src/backup/format.js';
import type { BackupSettings } from '../../src/backup/settings.js';
import { createDb, workspace, type TestDb, type Workspace } from '../helpers/backup.js';

let db: TestDb;
let ws: Workspace;
const NOW = new Date();
const daysAgo = (d: number): Date => new Date(NOW.getTime() - d * DAY_MS);

before(async () => {
  db = await createDb('ret');
  await db.query(`CREATE TABLE t (id int, s text); INSERT INTO t SELECT g, 'fila ' || g FROM generate_series(1, 500) g;`);
  ws = workspace();
});
after(async () => {
  await db.drop();
  ws.cleanup();
});

/** A backup as if taken `days` ago; verified unless `corrupt`, in which case verification fails and says so. */
async function backupAt(s: BackupSettings, days: number, corrupt = false): Promise<string> {
  const key = loadBackupKey(s.keyFile, s.dir);
  const at = () => daysAgo(days);
  const created = await createBackup(s, key, { now: at });
  if (corrupt) {
    const buf = readFileSync(created.dataPath);
    buf[HEADER_BYTES + 3] = (buf[HEADER_BYTES + 3] as number) ^ 0xff;
    writeFileSync(created.dataPath, buf);
  }
  await verifyBackup(created.dataPath, key, { now: at }).catch(() => undefined);
  return created.dataPath.slice(s.dir.length + 1).replace(/\.dump\.enc$/, '');
}

function names(dir: string): string[] {
  return readCatalog(dir).entries.map((e) => e.name);
}

test('retention deletes what is past BACKUP_RETENTION_DAYS once a newer verified backup exists, and keeps the rest', async () => {
  const s = ws.settings(db.url, { dir: join(ws.dir, 'a'), retentionDays: 7 });
  const old10 = await backupAt(s, 10);
  const old9 = await backupAt(s, 9);
  const bad8 = await backupAt(s, 8, true);
  const recent3 = await backupAt(s, 3);
  assert.deepEqual(readCatalog(s.dir, loadBackupKey(s.keyFile, s.dir)).entries.map((e) => [e.name, e.verified]), [[old10, true], [old9, true], [bad8, false], [recent3, true]]);

  const log = createMemoryLogger();
  const job = await runBackupJob(s, log, { now: () => NOW });
  assert.deepEqual(job.deleted, [old10, old9, bad8]);
  assert.deepEqual(names(s.dir), [recent3, job.created.dataPath.slice(s.dir.length + 1).replace(/\.dump\.enc$/, '')]);
  const deletions = log.securityEvents.filter((e) => e.event === 'backup.deleted');
  assert.deepEqual(deletions.map((e) => [e.name, e.verified]), [[old10, true], [old9, true], [bad8, false]]);
  assert.equal(deletions[0]?.reason, 'older than 7 days');
  // Nothing else in the folder: manifests went with their files.
  assert.equal(readdirSync(s.dir).length, 4);
});

test('the newest verified backup is never deleted, however old; failed backups do not push it out', async () => {
  const s = ws.settings(db.url, { dir: join(ws.dir, 'b'), retentionDays: 7 });
  const verified20 = await backupAt(s, 20);
  const bad15 = await backupAt(s, 15, true);
  const bad12 = await backupAt(s, 12, true);
  const plan = applyRetention(readCatalog(s.dir, loadBackupKey(s.keyFile, s.dir)), NOW, 7);
  assert.deepEqual(plan.delete, []);
  assert.deepEqual(names(s.dir), [verified20, bad15, bad12]);
  // A later verified backup supersedes all three.
  const fresh = await backupAt(s, 1);
  const after = applyRetention(readCatalog(s.dir, loadBackupKey(s.keyFile, s.dir)), NOW, 7);
  assert.deepEqual(after.delete.map((e) => e.name), [verified20, bad15, bad12]);
  assert.deepEqual(names(s.dir), [fresh]);
});

test('backups under another key count as unverified: kept until a newer verified backup under this key exists', async () => {
  const s = ws.settings(db.url, { dir: join(ws.dir, 'c'), retentionDays: 7 });
  const oldKeyBackup = await backupAt(s, 30);
  const rotated = { ...s, keyFile: ws.otherKeyFile() };
  assert.deepEqual(applyRetention(readCatalog(s.dir, loadBackupKey(rotated.keyFile, s.dir)), NOW, 7).delete, []);
  assert.deepEqual(names(s.dir), [oldKeyBackup]);
});

test('stale partial files go, fresh ones stay; a file without manifest past retention goes', async () => {
  const s = ws.settings(db.url, { dir: join(ws.dir, 'd'), retentionDays: 7 });
  const keep = await backupAt(s, 1);
  mkdirSync(s.dir, { recursive: true });
  const stale = join(s.dir, 'x-20200101T000000Z.dump.enc.partial');
  const fresh = join(s.dir, 'y-20200101T000000Z.dump.enc.partial');
  const orphanData = join(s.dir, 'orphan-20200101T000000Z.dump.enc');
  writeFileSync(stale, 'x');
  writeFileSync(fresh, 'y');
  writeFileSync(orphanData, 'z');
  const longAgo = daysAgo(9);
  utimesSync(stale, longAgo, longAgo);
  utimesSync(orphanData, longAgo, longAgo);
  const plan = applyRetention(readCatalog(s.dir, loadBackupKey(s.keyFile, s.dir)), NOW, 7);
  assert.deepEqual(plan.stalePartials, [stale]);
  assert.deepEqual(plan.delete.map((e) => e.name), ['orphan-20200101T000000Z']);
  assert.deepEqual(readdirSync(s.dir).sort(), [`${keep}.dump.enc`, `${keep}.manifest.json`, 'y-20200101T000000Z.dump.enc.partial']);
  rmSync(fresh);
});

test('the contract with doctor: its backups check passes on what `backup run` leaves, and fails once verification fails', async () => {
  const s = ws.settings(db.url, { dir: join(ws.dir, 'doctor') });
  const job = await runBackupJob(s, createMemoryLogger());
  const config = parseConfig('routes:\n  - name: api\n    host: api.test.local\n    upstream: http://127.0.0.1:9\n    auth: none\n', { BACKUP_ENABLED: 'true', BACKUP_DIR: s.dir });
  const ctx = { cwd: ws.dir, production: true, now: new Date(), env: {}, envSources: [], envFile: { path: join(ws.dir, '.env') }, config, composeFiles: [], probeTimeoutMs: 1_000, at: (p: string) => resolve(ws.dir, p) };
  const ok = await backupsCheck(ctx);
  assert.deepEqual(ok.map((r) => r.status), ['PASS'], JSON.stringify(ok));
  const buf = readFileSync(job.created.dataPath);
  buf[HEADER_BYTES + 1] = (buf[HEADER_BYTES + 1] as number) ^ 1;
  writeFileSync(job.created.dataPath, buf);
  await assert.rejects(verifyBackup(job.created.dataPath, loadBackupKey(s.keyFile, s.dir)));
  const failed = await backupsCheck(ctx);
  assert.equal(failed[0]?.status, 'FAIL');
  assert.match(failed[0]?.message ?? '', /no verified backup/);
});
