import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFileBlockStore } from '../../../src/containment/store.js';
import type { Block } from '../../../src/containment/model.js';
import { createMemoryLogger } from '../../../src/log/logger.js';

const LIMITS = { maxMs: 86_400_000 };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function block(target: string): Block {
  const now = Date.now();
  return { kind: 'ip', target, reason: 'lock test', until: now + 60_000, createdAt: now, by: 'test', source: 'manual' };
}

const stored = (dir: string): string[] => Object.keys(JSON.parse(readFileSync(join(dir, 'blocks.json'), 'utf8')) as object);

test('regression: blocks.json is changed under a lock: a live holder is waited for, a dead or stale one taken over', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'crm-gw-blocks-lock-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const lock = join(dir, 'blocks.json.lock');
  const store = createFileBlockStore(dir, LIMITS, createMemoryLogger());

  // Held by a live process (this one): the write waits for it.
  writeFileSync(lock, JSON.stringify({ pid: process.pid, host: hostname() }), { mode: 0o600 });
  let done = false;
  const pending = store.add(block('203.0.113.1')).then(() => {
    done = true;
  });
  await sleep(300);
  assert.equal(done, false, 'waits while the lock is held');
  assert.equal(existsSync(join(dir, 'blocks.json')), false, 'nothing written meanwhile');
  rmSync(lock);
  await pending;
  assert.deepEqual(stored(dir), ['ip:203.0.113.1']);
  assert.equal(existsSync(lock), false, 'released');

  // Left by a process that died: taken over at once.
  const dead = spawnSync(process.execPath, ['-e', 'process.pid']).pid;
  writeFileSync(lock, JSON.stringify({ pid: dead, host: hostname() }), { mode: 0o600 });
  const started = Date.now();
  await store.add(block('203.0.113.2'));
  assert.ok(Date.now() - started < 1_000, `took ${Date.now() - started} ms`);

  // From a host whose pids mean nothing here, not touched for longer than any write takes: stale.
  writeFileSync(lock, JSON.stringify({ pid: 1, host: 'another-host' }), { mode: 0o600 });
  const old = new Date(Date.now() - 60_000);
  utimesSync(lock, old, old);
  assert.equal(await store.remove('ip', '203.0.113.1'), true);
  assert.deepEqual(stored(dir), ['ip:203.0.113.2']);
  assert.equal(existsSync(lock), false);
});
