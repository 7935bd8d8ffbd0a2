import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { createMemoryLogger } from '../../src/log/logger.js';
import { runBackupJob } from '../../src/backup/job.js';
import { restoreBackup } from '../../src/backup/restore.js';
import { loadBackupKey } from '../../src/backup/key.js';
import { manifestSchema } from '../../src/backup/manifest.js';
import { createDb, tableDigests, workspace, type TestDb, type Workspace } from '../helpers/backup.js';

/** s3rver 3.7.1 ships no types: the part of its API used here. */
interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
}
const S3rver = createRequire(import.meta.url)('s3rver') as new (opts: { port: number; address: string; directory: string; silent: boolean; configureBuckets: { name: string }[] }) => S3rverInstance;

const BUCKET = 'crm-backups';
/** s3rver's fixed credentials. */
const CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

let db: TestDb;
let ws: Workspace;
let server: S3rverInstance;
let endpoint: string;
let s3dir: string;
let client: S3Client;

before(async () => {
  db = await createDb('s3');
  // Incompressible rows, dumped uncompressed below: a file of several parts (multipart upload).
  await db.query(`CREATE TABLE notes (id int PRIMARY KEY, body text); INSERT INTO notes SELECT g, repeat(md5(g::text), 24) || ' — ñ' FROM generate_series(1, 30000) g;`);
  ws = workspace();
  s3dir = mkdtempSync(join(tmpdir(), 'crmgw-s3rver-'));
  server = new S3rver({ port: 0, address: '127.0.0.1', directory: s3dir, silent: true, configureBuckets: [{ name: BUCKET }] });
  const addr = await server.run();
  endpoint = `http://127.0.0.1:${addr.port}`;
  client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: CREDENTIALS });
});
after(async () => {
  client.destroy();
  await server.close().catch(() => undefined);
  rmSync(s3dir, { recursive: true, force: true });
  await db.drop();
  ws.cleanup();
});

async function getObject(key: string): Promise<Buffer> {
  const out = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return Buffer.from(await (out.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
}

test('a verified backup and its manifest are copied to S3-compatible storage (s3rver), byte for byte, and restore from there', async (t) => {
  const s = ws.settings(db.url, { s3: { bucket: BUCKET, endpoint, region: 'us-east-1', prefix: 'crm/nightly/', ...CREDENTIALS } });
  const log = createMemoryLogger();
  const job = await runBackupJob(s, log, { compression: 0 });
  const file = basename(job.created.dataPath);
  assert.deepEqual(job.problems, []);
  assert.deepEqual(job.remote && { bucket: job.remote.bucket, key: job.remote.key }, { bucket: BUCKET, key: `crm/nightly/${file}` });
  assert.ok(job.created.manifest.ciphertext.bytes > 16 * 1024 * 1024, 'large enough for a multipart upload');

  const listed = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'crm/nightly/' }));
  assert.deepEqual(listed.Contents?.map((c) => c.Key).sort(), [`crm/nightly/${file}`, `crm/nightly/${file.replace('.dump.enc', '.manifest.json')}`]);
  const remote = await getObject(`crm/nightly/${file}`);
  const local = readFileSync(job.created.dataPath);
  assert.equal(remote.length, local.length);
  assert.equal(createHash('sha256').update(remote).digest('hex'), createHash('sha256').update(local).digest('hex'));
  const head = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: `crm/nightly/${file}` }));
  assert.equal(head.Metadata?.sha256, job.created.manifest.ciphertext.sha256);
  const remoteManifest = manifestSchema.parse(JSON.parse((await getObject(`crm/nightly/${file.replace('.dump.enc', '.manifest.json')}`)).toString('utf8')));
  assert.equal(remoteManifest.verified, true);
  assert.equal(remoteManifest.remote?.key, `crm/nightly/${file}`);
  assert.deepEqual(readFileSync(job.created.manifestPath, 'utf8'), JSON.stringify(remoteManifest, null, 2) + '\n');
  assert.ok(log.securityEvents.some((e) => e.event === 'backup.remote_copied' && e.bucket === BUCKET));

  // Disaster: the server is gone; only the remote copy and the key survive.
  const restoreDir = join(ws.dir, 'from-s3');
  mkdirSync(restoreDir, { mode: 0o700 });
  writeFileSync(join(restoreDir, file), remote);
  writeFileSync(join(restoreDir, file.replace('.dump.enc', '.manifest.json')), await getObject(`crm/nightly/${file.replace('.dump.enc', '.manifest.json')}`));
  const target = await createDb('s3t');
  t.after(() => target.drop());
  await restoreBackup(join(restoreDir, file), target.url, loadBackupKey(s.keyFile, restoreDir));
  assert.deepEqual(await tableDigests(target), await tableDigests(db));
  t.diagnostic(`remote copy: ${local.length} bytes (multipart, 8 MiB parts) to s3rver; restored from the downloaded copy`);
});

test('storage unreachable: the local backup stands (verified), the run reports BACKUP_REMOTE_FAILED', async () => {
  const deadDir = mkdtempSync(join(tmpdir(), 'crmgw-s3rver-dead-'));
  const dead = new S3rver({ port: 0, address: '127.0.0.1', directory: deadDir, silent: true, configureBuckets: [{ name: BUCKET }] });
  const addr = await dead.run();
  await dead.close();
  rmSync(deadDir, { recursive: true, force: true });
  const s = ws.settings(db.url, { dir: join(ws.dir, 'dead'), s3: { bucket: BUCKET, endpoint: `http://127.0.0.1:${addr.port}`, region: 'us-east-1', prefix: '', ...CREDENTIALS } });
  const log = createMemoryLogger();
  const job = await runBackupJob(s, log);
  assert.equal(job.verified.manifest.verified, true);
  assert.equal(job.remote, null);
  assert.equal(job.problems.length, 1);
  assert.equal(job.problems[0]?.code, 'BACKUP_REMOTE_FAILED');
  assert.match(job.problems[0]?.message ?? '', new RegExp(`copy to s3://${BUCKET}/.*\\.dump\\.enc \\(http://127\\.0\\.0\\.1:${addr.port}\\) failed`));
  assert.ok(!(job.problems[0]?.message ?? '').includes('S3RVER'), 'no credentials in the message');
  assert.ok(log.securityEvents.some((e) => e.event === 'backup.remote_failed'));
});

test('a bucket that does not exist: BACKUP_REMOTE_FAILED naming the bucket', async () => {
  const s = ws.settings(db.url, { dir: join(ws.dir, 'nobucket'), s3: { bucket: 'no-such-bucket', endpoint, region: 'us-east-1', prefix: '', ...CREDENTIALS } });
  const job = await runBackupJob(s, createMemoryLogger());
  assert.equal(job.problems[0]?.code, 'BACKUP_REMOTE_FAILED');
  assert.match(job.problems[0]?.message ?? '', /s3:\/\/no-such-bucket\/.*NoSuchBucket/);
});
