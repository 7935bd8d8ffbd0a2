import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFileFactorStore } from '../../src/auth/store/factors-file.js';

// Regression (review of issue 14): with GATEWAY_WORKERS > 1 and no DATABASE_URL every worker
// shares <dataDir>/factors.json, and its read-modify-write had no lock between processes: two
// processes accepting the same 300 TOTP steps accepted 550. Two real processes (tsx) race here on
// one file; a step or a recovery code is accepted by one of them at most, and a code by exactly one.

const STEPS = 150;
const CODES = 60;
const USER = 'race-user';
const TIMEOUT_MS = 60_000;

/** The child: waits for "go" on stdin, then tries every step (or code) in order, and prints what it was granted. */
const CHILD = `
import { createFileFactorStore } from './src/auth/store/factors-file.ts';
const [dir, what, n, user] = process.argv.slice(-4);
const store = createFileFactorStore(dir);
process.stdout.write('ready\\n');
await new Promise((r) => process.stdin.once('data', r));
const granted = [];
for (let i = 1; i <= Number(n); i++) {
  const ok = what === 'steps' ? await store.acceptTotpStep(user, i) : await store.useRecoveryCode(user, 'hash-' + i);
  if (ok) granted.push(i);
  // A pause now and then, as requests arrive: the other process gets its turns at the file.
  if (i % 4 === 0) await new Promise((r) => setTimeout(r, 1));
}
process.stdout.write(JSON.stringify(granted) + '\\n');
process.exit(0);
`;

interface Racer {
  ready: Promise<void>;
  go(): void;
  granted: Promise<number[]>;
}

function racer(dir: string, what: 'steps' | 'codes', n: number): Racer {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD, dir, what, String(n), USER], { cwd: process.cwd(), stdio: ['pipe', 'pipe', 'pipe'] });
  const timer = setTimeout(() => child.kill('SIGKILL'), TIMEOUT_MS);
  let out = '';
  let err = '';
  let readyResolve: () => void = () => undefined;
  const ready = new Promise<void>((r) => (readyResolve = r));
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString('utf8');
    if (out.startsWith('ready\n')) readyResolve();
  });
  child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
  const granted = new Promise<number[]>((resolve, reject) => {
    child.on('close', (code) => {
      clearTimeout(timer);
      readyResolve();
      if (code !== 0) return reject(new Error(`racer exited ${String(code)}: ${err.slice(0, 500)}`));
      resolve(JSON.parse(out.split('\n')[1] ?? '[]') as number[]);
    });
  });
  return { ready, go: () => child.stdin.end('go\n'), granted };
}

async function race(dir: string, what: 'steps' | 'codes', n: number): Promise<[number[], number[]]> {
  const a = racer(dir, what, n);
  const b = racer(dir, what, n);
  await Promise.all([a.ready, b.ready]);
  a.go();
  b.go();
  return Promise.all([a.granted, b.granted]);
}

test('two processes on one factors.json: each TOTP step accepted at most once, each recovery code used exactly once', { timeout: TIMEOUT_MS * 2 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'crm-gw-factors-race-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const store = createFileFactorStore(dir);
  await store.enrolTotp(USER, 'sealed-secret-placeholder', Array.from({ length: CODES }, (_, i) => `hash-${i + 1}`));

  const [a, b] = await race(dir, 'steps', STEPS);
  const steps = [...a, ...b];
  assert.equal(new Set(steps).size, steps.length, `a step accepted by both processes: ${JSON.stringify(a.filter((s) => b.includes(s)))}`);
  assert.ok(steps.length <= STEPS && steps.length > 0, `${steps.length} acceptances of ${STEPS} steps`);
  assert.equal((await store.get(USER)).totp?.lastStep, Math.max(...steps), 'the file records the last step accepted');

  const [ca, cb] = await race(dir, 'codes', CODES);
  const codes = [...ca, ...cb].sort((x, y) => x - y);
  assert.deepEqual(codes, Array.from({ length: CODES }, (_, i) => i + 1), `each code once: ${ca.length} + ${cb.length}`);
  assert.deepEqual((await store.get(USER)).recoveryHashes, [], 'every code spent');
  assert.deepEqual(
    readdirSync(dir).filter((f) => f !== 'factors.json'),
    [],
    'no lock or temp file left behind',
  );
  process.stdout.write(`# factors.json race: steps ${a.length} + ${b.length} of ${STEPS}, codes ${ca.length} + ${cb.length} of ${CODES}\n`);
});
