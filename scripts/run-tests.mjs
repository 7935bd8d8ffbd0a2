#!/usr/bin/env node
// Runs every test file under test/ (or those named on the command line) with node's test
// runner, TypeScript loaded through tsx. Node 20's --test does not expand globs itself.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { ensurePrerequisites, TEST_NEEDS } from './prereqs.mjs';

function find(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? find(p) : p.endsWith('.test.ts') ? [p] : [];
  });
}

const args = process.argv.slice(2);
const files = (args.length > 0 ? args.flatMap((a) => (statSync(a).isDirectory() ? find(a) : [a])) : find('test')).sort();
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
// Unit tests need only Node; everything else starts real browsers, servers or interpreters.
if (!files.every((f) => f.split(/[\\/]/).includes('unit'))) {
  const { message } = ensurePrerequisites(TEST_NEEDS, 'npm test');
  if (message) {
    console.error(message);
    process.exit(1);
  }
}
// A second reporter lists the skips that do not say why (scripts/skip-reasons.mjs).
const scratch = mkdtempSync(join(tmpdir(), 'crm-gw-skips-'));
const unexplained = join(scratch, 'skips.jsonl');
const result = spawnSync(
  process.execPath,
  [
    '--import',
    'tsx',
    '--test',
    '--test-concurrency=1',
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    `--test-reporter=${new URL('./skip-reasons.mjs', import.meta.url).href}`,
    `--test-reporter-destination=${unexplained}`,
    ...files,
  ],
  { stdio: 'inherit', env: { ...process.env, NODE_ENV: 'test' } },
);
let silent = [];
try {
  silent = readFileSync(unexplained, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
} catch {
  // No file: the runner never got to report (its own failure is in result.status).
}
rmSync(scratch, { recursive: true, force: true });
// CI must not pass with a check that silently did not run: every skip says why, or the run fails.
const ci = process.env.CI === '1' || process.env.CI === 'true';
if (silent.length > 0) {
  console.error(`\n${silent.length} test(s) skipped without a reason${ci ? ' (CI=1: this fails the run)' : ''}:`);
  for (const t of silent) console.error(`  ${t.file ?? '?'}: ${t.name}`);
  console.error("Give the skip a reason that says why: { skip: 'needs X (here: Y)' } or t.skip('needs X (here: Y)').");
  if (ci) process.exit(1);
}
process.exit(result.status ?? 1);
