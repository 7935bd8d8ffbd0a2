import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { createMemoryLogger } from '../../src/log/logger.js';
import { checkBackupSetup, scheduleBackups, startBackupScheduler } from '../../src/backup/scheduler.js';
import { watchBackupDir } from '../../src/backup/metrics.js';
import { readCatalog } from '../../src/backup/catalog.js';
import { parseConfig, ConfigError } from '../../src/config/load.js';
import { testCertificate, testEnv } from '../helpers/harness.js';
import { SHARED_REDIS_URL } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';
import { createDb, runBackupCli, workspace, type TestDb, type Workspace } from '../helpers/backup.js';

/** Every second (croner's six-field form): a test sees runs without waiting for 02:00. */
const EVERY_SECOND = '* * * * * *';
const WAIT_MS = 60_000;
/** Starting tsx processes on a busy 2-core machine can be slow. */
const START_WAIT_MS = 90_000;

let db: TestDb;
let ws: Workspace;

before(async () => {
  db = await createDb('sch');
  await db.query(`CREATE TABLE t (id int, s text); INSERT INTO t SELECT g, 'ç' || g FROM generate_series(1, 1000) g;`);
  ws = workspace();
});
after(async () => {
  await db.drop();
  ws.cleanup();
});

function verifiedCount(dir: string): number {
  return readCatalog(dir).entries.filter((e) => e.verified).length;
}

test('scheduleBackups runs the job on the schedule; stop() ends it; the stored-backup gauges read the folder', async () => {
  const s = ws.settings(db.url, { dir: join(ws.dir, 'sched'), schedule: EVERY_SECOND });
  const log = createMemoryLogger();
  const scheduler = scheduleBackups(s, log);
  try {
    assert.ok(scheduler.next() instanceof Date);
    await waitFor(() => verifiedCount(s.dir) >= 2, 'two verified scheduled backups', WAIT_MS, 100);
  } finally {
    await scheduler.stop();
  }
  assert.ok(log.securityEvents.filter((e) => e.event === 'backup.verified').length >= 2);
  assert.equal(readdirSync(s.dir).filter((f) => f.endsWith('.partial')).length, 0);

  const registry = new Registry();
  watchBackupDir(s.dir, registry);
  const text = await registry.metrics();
  assert.match(text, new RegExp(`crmgw_backup_stored\\{state="verified"\\} ${verifiedCount(s.dir)}\\n`));
  const newest = readCatalog(s.dir).entries.filter((e) => e.verified).pop();
  assert.match(text, new RegExp(`crmgw_backup_newest_verified_timestamp_seconds ${(newest?.time.getTime() ?? 0) / 1000}\\n`));
  assert.match(text, /crmgw_backup_last_verified 1\n/);
});

test('stop() during a run aborts it: pg_dump killed, no partial file, a backup.failed event with BACKUP_ABORTED', async () => {
  const big = await createDb('schbig');
  try {
    await big.query(`CREATE TABLE blob (id int, data text); INSERT INTO blob SELECT g, repeat(md5(g::text), 40) FROM generate_series(1, 300000) g;`);
    const s = ws.settings(big.url, { dir: join(ws.dir, 'abort'), schedule: EVERY_SECOND });
    const log = createMemoryLogger();
    const scheduler = scheduleBackups(s, log);
    try {
      await waitFor(() => existsSync(s.dir) && readdirSync(s.dir).some((f) => f.endsWith('.partial')), 'a run in progress', WAIT_MS, 20);
    } finally {
      await scheduler.stop();
    }
    assert.deepEqual(readdirSync(s.dir).filter((f) => f.endsWith('.partial')), []);
    assert.ok(log.securityEvents.some((e) => e.event === 'backup.failed' && e.code === 'BACKUP_ABORTED'), JSON.stringify(log.securityEvents));
  } finally {
    await big.drop();
  }
});

test('startBackupScheduler: nothing when BACKUP_ENABLED is false; a startup error naming the problem when the setup cannot work', async () => {
  const yaml = 'routes:\n  - name: api\n    host: api.test.local\n    upstream: http://127.0.0.1:9\n    auth: none\n';
  assert.equal(await startBackupScheduler(parseConfig(yaml, {}), createMemoryLogger(), new Registry()), undefined);
  const cfg = parseConfig(yaml, { BACKUP_ENABLED: 'true', BACKUP_DIR: ws.backupDir, BACKUP_KEY_FILE: join(ws.dir, 'nokey', 'backup.key'), BACKUP_DATABASE_URL: db.url });
  await assert.rejects(startBackupScheduler(cfg, createMemoryLogger(), new Registry()), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.match(err.message, /BACKUP_KEY_INVALID: no backup key at .*nokey\/backup\.key: run `npx crm-gateway setup`/);
    return true;
  });
  await assert.rejects(checkBackupSetup(ws.settings(undefined)), /BACKUP_CONFIG: no database to back up/);
});

for (const workers of [2, 1]) {
  test(`the gateway process (GATEWAY_WORKERS=${workers}) runs scheduled backups in one process (the primary), reports them on /metrics, and stops cleanly`, { timeout: 240_000 }, async (t) => {
    const cert = await testCertificate();
    const dir = join(ws.dir, `gw${workers}`);
    const backupDir = join(dir, 'backups');
    rmSync(dir, { recursive: true, force: true });
    const config = join(ws.dir, `gw${workers}.yaml`);
    writeFileSync(config, 'routes:\n  - name: api\n    host: api.test.local\n    upstream: http://127.0.0.1:9\n    auth: none\n');
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: process.cwd(),
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: process.env.PATH ?? '',
        GATEWAY_CONFIG: config,
        GATEWAY_WORKERS: String(workers),
        ...(workers > 1 ? { REDIS_URL: SHARED_REDIS_URL } : {}),
        ...testEnv(cert),
        DATA_DIR: join(dir, 'data'),
        LOG_DIR: join(dir, 'logs'),
        BACKUP_ENABLED: 'true',
        BACKUP_SCHEDULE: EVERY_SECOND,
        BACKUP_DIR: backupDir,
        BACKUP_KEY_FILE: ws.keyFile,
        BACKUP_DATABASE_URL: db.url,
      },
    });
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    t.after(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    const lines: Record<string, unknown>[] = [];
    for (const stream of [child.stdout, child.stderr]) {
      let buffered = '';
      stream.on('data', (c: Buffer) => {
        buffered += c.toString();
        const parts = buffered.split('\n');
        buffered = parts.pop() ?? '';
        for (const p of parts) {
          try {
            lines.push(JSON.parse(p) as Record<string, unknown>);
          } catch {
            lines.push({ text: p });
          }
        }
      });
    }
    const listening = (): Record<string, unknown>[] => lines.filter((l) => l.message === 'gateway listening');
    await waitFor(() => listening().length >= workers || child.exitCode !== null, 'every worker listening', START_WAIT_MS, 50);
    assert.equal(child.exitCode, null, JSON.stringify(lines.slice(-10)));
    await waitFor(() => verifiedCount(backupDir) >= 2, 'two verified backups from the gateway', WAIT_MS, 100);

    // One scheduler, and it is the primary's (workers' lines carry their worker id).
    const scheduled = lines.filter((l) => l.message === 'backups scheduled');
    assert.equal(scheduled.length, 1, JSON.stringify(scheduled));
    assert.equal(scheduled[0]?.worker, undefined);
    const securityLog = (): string =>
      readdirSync(join(dir, 'logs'))
        .filter((f) => f.startsWith('security'))
        .map((f) => readFileSync(join(dir, 'logs', f), 'utf8'))
        .join('');
    await waitFor(() => /"event":"backup\.verified"/.test(securityLog()), 'backup events in the security log', WAIT_MS, 100);
    const events = securityLog()
      .split('\n')
      .filter((l) => l.includes('"event":"backup.'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.ok(events.length > 0);
    assert.ok(events.every((e) => e.worker === undefined), 'no worker ran a backup');

    // Whichever worker answers, /metrics reports the backups on disk.
    const admin = String(listening()[0]?.admin);
    const text = await (await fetch(`http://${admin}/metrics`)).text();
    const stored = Number(/crmgw_backup_stored\{state="verified"\} (\d+)/.exec(text)?.[1]);
    assert.ok(stored >= 2, text.split('\n').filter((l) => l.includes('backup')).join('\n'));

    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const [code] = await Promise.race([exited, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('no exit after SIGTERM')), WAIT_MS)))]).finally(() => clearTimeout(timer));
    assert.equal(code, 0);
    // Whatever run was in flight when the primary exited left no partial file.
    assert.deepEqual(readdirSync(backupDir).filter((f) => f.endsWith('.partial')), []);
  });
}

test('backup run --schedule (the compose job): runs on the schedule, SIGTERM stops it with exit 0 and no partial file; refuses BACKUP_ENABLED=false', { timeout: 120_000 }, async () => {
  const dir = join(ws.dir, 'cli-schedule');
  const env = { BACKUP_DIR: dir, BACKUP_KEY_FILE: ws.keyFile, BACKUP_DATABASE_URL: db.url, BACKUP_SCHEDULE: EVERY_SECOND, BACKUP_ENABLED: 'true' };
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `import { run } from './src/cli/main.ts'; process.exitCode = await run(process.argv.slice(1));`, 'backup', 'run', '--schedule'], {
    cwd: process.cwd(),
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', GATEWAY_CONFIG: '/nonexistent/gateway.yaml', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  child.stdout.resume();
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  try {
    await waitFor(() => verifiedCount(dir) >= 1 || child.exitCode !== null, 'a verified backup from the job', WAIT_MS, 100);
    assert.equal(child.exitCode, null, stderr);
    assert.match(stderr, /crm-gateway backup: scheduled "\* \* \* \* \* \*", next run /);
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const [code] = await Promise.race([exited, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no exit after SIGTERM:\n${stderr}`)), WAIT_MS)))]).finally(() => clearTimeout(timer));
    assert.equal(code, 0, stderr);
    assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.partial')), []);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  const disabled = await runBackupCli(['backup', 'run', '--schedule'], { ...env, BACKUP_ENABLED: 'false' });
  assert.equal(disabled.code, 1);
  assert.match(disabled.stderr, /BACKUP_CONFIG: backup run --schedule with BACKUP_ENABLED=false/);
});
