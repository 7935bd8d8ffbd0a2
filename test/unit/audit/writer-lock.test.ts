import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { FOREIGN_STALE_MS, lockFilePath, lockLogDir, LogDirLocked } from '../../../src/audit/writer/writer-lock.js';

/**
 * The one-writer lock on a log folder (issue 12, item 8), against real processes: a live
 * holder refuses, a dead one is taken over, and racing starters never both win.
 */

function folder(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'crm-gw-lock-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** `node` running a snippet with the lock module loaded as `lockLogDir`; stdout lines are reported. */
function child(t: TestContext, script: string): { process: ChildProcess & { stdin: NodeJS.WritableStream }; line(pattern: RegExp): Promise<string>; exited: Promise<number | null> } {
  const code = `import { lockLogDir } from ${JSON.stringify(join(process.cwd(), 'src/audit/writer/writer-lock.ts'))};\n${script}`;
  const proc = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | null>((r) => proc.once('exit', (c) => r(c)));
  t.after(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  return {
    process: proc,
    exited,
    async line(pattern) {
      const deadline = Date.now() + 15_000;
      while (Date.now() < deadline) {
        const m = pattern.exec(out);
        if (m) return m[0];
        if (proc.exitCode !== null) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error(`no ${pattern} from the child; stdout: ${out}; stderr: ${err}`);
    },
  };
}

/** A pid that certainly belonged to a process that is gone now. */
async function deadPid(t: TestContext): Promise<number> {
  const c = child(t, 'process.exit(0);');
  const pid = c.process.pid as number;
  await c.exited;
  return pid;
}

function writeLock(dir: string, name: string, holder: Record<string, unknown> | string, ageMs = 0): string {
  const file = lockFilePath(dir, name);
  writeFileSync(file, typeof holder === 'string' ? holder : JSON.stringify({ node: 'old', startedAt: '2026-01-01T00:00:00.000Z', token: 'old-token', ...holder }), { mode: 0o600 });
  if (ageMs > 0) {
    const t = new Date(Date.now() - ageMs);
    utimesSync(file, t, t);
  }
  return file;
}

test('a free folder is locked with a 0600 file naming pid, host and start time; release removes it', async (t) => {
  const dir = join(folder(t), 'not-yet-created');
  const lock = await lockLogDir(dir, 'gateway', { node: 'n1' });
  assert.equal(lock.file, join(dir, '.gateway.lock'));
  assert.equal(lock.tookOverFrom, undefined);
  assert.equal(statSync(lock.file).mode & 0o777, 0o600);
  const holder = JSON.parse(readFileSync(lock.file, 'utf8')) as Record<string, unknown>;
  assert.equal(holder.pid, process.pid);
  assert.equal(holder.host, hostname());
  assert.equal(holder.node, 'n1');
  assert.ok(typeof holder.startedAt === 'string' && !Number.isNaN(Date.parse(holder.startedAt)));
  lock.release();
  assert.equal(existsSync(lock.file), false);
  lock.release();
  const again = await lockLogDir(dir, 'gateway', { node: 'n1' });
  again.release();
});

test('a second lock on the same folder and name is refused while the first is held, even in the same process; other names are independent', async (t) => {
  const dir = folder(t);
  const first = await lockLogDir(dir, 'gateway', { node: 'n1' });
  t.after(() => first.release());
  await assert.rejects(lockLogDir(dir, 'gateway', { node: 'n1' }), (err: unknown) => {
    assert.ok(err instanceof LogDirLocked);
    assert.equal(err.holder?.pid, process.pid);
    assert.match(err.message, new RegExp(`${dir.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}.*pid ${process.pid} on host `));
    assert.match(err.message, /\.gateway\.lock/);
    assert.match(err.message, /fork the hash chain/);
    return true;
  });
  const cli = await lockLogDir(dir, 'cli', { node: 'n1' });
  cli.release();
});

test('a live holder in another process refuses; with waitMs the lock is taken once that process exits', async (t) => {
  const dir = folder(t);
  const holder = child(t, `const l = await lockLogDir(${JSON.stringify(dir)}, 'gateway', { node: 'other' }); console.log('held'); setTimeout(() => { l.release(); process.exit(0); }, 1500);`);
  await holder.line(/held/);
  await assert.rejects(lockLogDir(dir, 'gateway', { node: 'n1' }), (err: unknown) => err instanceof LogDirLocked && err.holder?.pid === holder.process.pid);
  const started = Date.now();
  const lock = await lockLogDir(dir, 'gateway', { node: 'n1', waitMs: 10_000 });
  assert.ok(Date.now() - started > 200, 'it waited for the holder');
  assert.equal(lock.tookOverFrom, undefined, 'the holder released it: nothing to take over');
  lock.release();
});

test('a process that exits without releasing (process.exit, an uncaught exception) still removes its lock file', async (t) => {
  const dir = folder(t);
  const exits = child(t, `await lockLogDir(${JSON.stringify(dir)}, 'gateway', { node: 'x' }); console.log('held'); throw new Error('boom');`);
  await exits.line(/held/);
  assert.notEqual(await exits.exited, 0);
  assert.equal(existsSync(lockFilePath(dir, 'gateway')), false);
});

test('regression: a lock left by a SIGKILLed process is taken over at once, and says whose it was', async (t) => {
  const dir = folder(t);
  const killed = child(t, `await lockLogDir(${JSON.stringify(dir)}, 'gateway', { node: 'x' }); console.log('held'); setInterval(() => undefined, 1000);`);
  await killed.line(/held/);
  killed.process.kill('SIGKILL');
  await killed.exited;
  assert.ok(existsSync(lockFilePath(dir, 'gateway')), 'SIGKILL left the file behind');
  const lock = await lockLogDir(dir, 'gateway', { node: 'n1' });
  assert.equal(lock.tookOverFrom?.pid, killed.process.pid);
  assert.equal((JSON.parse(readFileSync(lock.file, 'utf8')) as { pid: number }).pid, process.pid);
  lock.release();
});

test('stale: a dead pid on this host; a live pid that started at another time (reused after a restart); an earlier boot', async (t) => {
  const dir = folder(t);
  const pid = await deadPid(t);
  writeLock(dir, 'gateway', { pid, host: hostname() });
  const a = await lockLogDir(dir, 'gateway', { node: 'n1' });
  assert.equal(a.tookOverFrom?.pid, pid);
  a.release();

  // Our own parent is alive, but it is not the process that wrote this: its start time differs.
  writeLock(dir, 'gateway', { pid: process.ppid, host: hostname(), procStart: '1' });
  const b = await lockLogDir(dir, 'gateway', { node: 'n1' });
  assert.equal(b.tookOverFrom?.pid, process.ppid);
  b.release();

  writeLock(dir, 'gateway', { pid: process.ppid, host: hostname(), boot: 'an-earlier-boot' });
  const c = await lockLogDir(dir, 'gateway', { node: 'n1' });
  assert.equal(c.tookOverFrom?.boot, 'an-earlier-boot');
  c.release();
});

test('a lock from another host (or container) is live while its heartbeat is fresh, stale after FOREIGN_STALE_MS', async (t) => {
  const dir = folder(t);
  writeLock(dir, 'gateway', { pid: 1, host: 'elsewhere.example' });
  await assert.rejects(lockLogDir(dir, 'gateway', { node: 'n1' }), (err: unknown) => err instanceof LogDirLocked && /on host elsewhere\.example/.test(err.message));
  writeLock(dir, 'gateway', { pid: 1, host: 'elsewhere.example' }, FOREIGN_STALE_MS + 5_000);
  const lock = await lockLogDir(dir, 'gateway', { node: 'n1' });
  assert.equal(lock.tookOverFrom?.host, 'elsewhere.example');
  lock.release();
});

test('an unreadable lock file (its writer died mid-write) is respected while young, taken over when old', async (t) => {
  const dir = folder(t);
  writeLock(dir, 'gateway', '');
  await assert.rejects(lockLogDir(dir, 'gateway', { node: 'n1' }), (err: unknown) => err instanceof LogDirLocked && err.holder === undefined);
  writeLock(dir, 'gateway', '{"pi', 60_000);
  const lock = await lockLogDir(dir, 'gateway', { node: 'n1' });
  lock.release();
});

test('release never removes a lock that another process has since taken over', async (t) => {
  const dir = folder(t);
  const lock = await lockLogDir(dir, 'gateway', { node: 'n1' });
  const theirs = writeLock(dir, 'gateway', { pid: process.ppid, host: hostname(), token: 'someone-else' });
  lock.release();
  assert.equal(existsSync(theirs), true);
});

test('regression: starters racing for one stale lock: exactly one wins, the others are refused naming it (12 rounds)', { timeout: 60_000 }, async (t) => {
  const dir = folder(t);
  const dead = await deadPid(t);
  const stale = JSON.stringify({ pid: dead, host: hostname(), node: 'old', startedAt: '2026-01-01T00:00:00.000Z', token: 'old-token' });
  writeLock(dir, 'gateway', stale);
  const rounds = 12;
  // The winner holds past a loser's wait for a takeover in progress (writer-lock's BUSY_WAIT_MS).
  const roundMs = 700;
  // Every process starts round r at the same moment (spinning until then), told once all are up;
  // the round's winner then leaves a stale lock again, as if it had been SIGKILLed.
  const racers = Array.from({ length: 6 }, () =>
    child(
      t,
      `import { writeFileSync } from 'node:fs';
      const file = ${JSON.stringify(lockFilePath(dir, 'gateway'))};
      console.log('ready');
      const at = Number(await new Promise((res) => process.stdin.once('data', (d) => res(String(d)))));
      for (let r = 0; r < ${rounds}; r++) {
        // Asleep until just before the round (six spinning processes would starve the one taking over).
        await new Promise((res) => setTimeout(res, Math.max(0, at + r * ${roundMs} - Date.now() - 15)));
        while (Date.now() < at + r * ${roundMs}) {}
        try {
          const lock = await lockLogDir(${JSON.stringify(dir)}, 'gateway', { node: 'r' });
          console.log(r + ':won');
          while (Date.now() < at + r * ${roundMs} + ${roundMs - 250}) await new Promise((res) => setTimeout(res, 5));
          lock.release();
          writeFileSync(file, ${JSON.stringify(stale)});
        } catch (err) {
          console.log(r + ':refused ' + err.holder?.pid);
        }
      }
      console.log('done');
      process.exit(0);`,
    ),
  );
  await Promise.all(racers.map((r) => r.line(/ready/)));
  const at = Date.now() + 300;
  for (const r of racers) r.process.stdin.write(`${at}\n`);
  await Promise.all(racers.map((r) => r.line(/done/)));
  for (let r = 0; r < rounds; r++) {
    const outcomes = await Promise.all(racers.map((c) => c.line(new RegExp(`(^|\\n)${r}:(won|refused \\S+)`))));
    const results = outcomes.map((o) => o.trim().slice(`${r}:`.length));
    const winners = racers.filter((_, i) => results[i] === 'won');
    assert.equal(winners.length, 1, `round ${r}: ${results.join(', ')}`);
    const winnerPid = (winners[0] as (typeof racers)[number]).process.pid;
    for (const o of results) if (o !== 'won') assert.equal(o, `refused ${winnerPid}`, `round ${r}: a loser names the winner, not the dead holder (${dead}): ${results.join(', ')}`);
  }
  assert.equal(existsSync(`${lockFilePath(dir, 'gateway')}.takeover`), false);
});
