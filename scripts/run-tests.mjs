#!/usr/bin/env node
// Runs every test file under test/ (or those named on the command line) with node's test
// runner, TypeScript loaded through tsx. Node 20's --test does not expand globs itself.
import { readdirSync, statSync } from 'node:fs';
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
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', ...files],
  { stdio: 'inherit', env: { ...process.env, NODE_ENV: 'test' } },
);
process.exit(result.status ?? 1);
