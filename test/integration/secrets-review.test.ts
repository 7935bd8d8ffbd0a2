// Adversarial review of setup, secrets and doctor: real folders, real files, the real checks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runDoctor } from '../../src/doctor/run.js';
import type { CheckResult } from '../../src/doctor/types.js';
import { parseDotenv } from '../../src/secrets/dotenv.js';
import { writeFileAtomic } from '../../src/secrets/files.js';
import { runSetup } from '../../src/secrets/setup.js';
import { seedDeployment, tempDir } from '../helpers/deployment.js';

const DAY = 86_400_000;

async function deployment(): Promise<string> {
  const dir = tempDir('crm-gw-review-');
  seedDeployment(dir);
  await runSetup({ cwd: dir, mode: 'production', maxTokenTtlMs: DAY });
  return dir;
}

function setEnv(dir: string, values: Record<string, string>): void {
  const path = join(dir, '.env');
  const doc = parseDotenv(readFileSync(path, 'utf8'));
  for (const [k, v] of Object.entries(values)) doc.set(k, v);
  writeFileAtomic(path, doc.toString());
}

async function results(dir: string, id: string): Promise<CheckResult[]> {
  return (await runDoctor({ cwd: dir, env: {}, production: true })).filter((r) => r.id === id);
}

test('doctor: a secret of the right length and alphabet that repeats a short pattern FAILs secret-strength', async () => {
  const dir = await deployment();
  // 64 hex characters, 16 distinct: passed every rule, though it is one 16-character pattern.
  setEnv(dir, { CRM_API_SECRET: '0123456789abcdef'.repeat(4), LOG_HASH_KEY: 'deadbeefcafef00d1234567890abcdef'.repeat(2) });
  const found = await results(dir, 'secret-strength');
  for (const name of ['CRM_API_SECRET', 'LOG_HASH_KEY']) {
    assert.ok(found.some((r) => r.status === 'FAIL' && r.message.startsWith(`${name} is predictable`)), `${name} flagged: ${JSON.stringify(found)}`);
  }
});

test('doctor: a backup key of 32 bytes hex that is all zeros FAILs backup-key', async () => {
  const dir = await deployment();
  writeFileSync(join(dir, 'secrets', 'backup.key'), `${'0'.repeat(64)}\n`, { mode: 0o600 });
  const found = await results(dir, 'backup-key');
  assert.ok(found.some((r) => r.status === 'FAIL' && /predictable/.test(r.message)), JSON.stringify(found));
});

test('setup: an existing predictable backup key is refused before anything is written', async () => {
  const dir = await deployment();
  writeFileSync(join(dir, 'secrets', 'backup.key'), `${'ab'.repeat(32)}\n`, { mode: 0o600 });
  const before = readdirSync(dir).sort();
  const env = readFileSync(join(dir, '.env'), 'utf8');
  await assert.rejects(runSetup({ cwd: dir, rotate: true, maxTokenTtlMs: DAY }), /backup key .* is predictable/);
  assert.deepEqual(readdirSync(dir).sort(), before, 'no backup or temp file was made');
  assert.equal(readFileSync(join(dir, '.env'), 'utf8'), env);
});
