// test/unit/app/: the modules at the top of src/ (app.ts and step.ts: the pipeline; errors.ts: the
// error registry), which belong to no feature folder.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { PIPELINE_ORDER } from '../../../src/app.js';

/** The backticked step names of docs/security-model.md's pipeline line that starts with `label`. */
function stated(readme: string, label: string): string[] {
  const line = readme.split('\n').find((l) => l.trimStart().match(new RegExp(`^\\d\\. ${label}`)));
  assert.ok(line, `docs/security-model.md states the ${label} steps`);
  // Terminal names come before their parenthesized notes; the notes' own backticks are not steps.
  const names = [...line.replace(/\([^)]*\)/g, '').matchAll(/`([a-z-]+)`/g)].map((m) => m[1] as string);
  return names;
}

test('docs/security-model.md states the pipeline in the order the code runs it', () => {
  const readme = readFileSync(new URL('../../../docs/security-model.md', import.meta.url), 'utf8');
  assert.deepEqual(stated(readme, 'Connection:'), PIPELINE_ORDER.connection);
  assert.deepEqual(stated(readme, 'Upgrades only:'), PIPELINE_ORDER.upgrade);
  assert.deepEqual(stated(readme, 'Route:'), PIPELINE_ORDER.route);
  assert.deepEqual(stated(readme, 'Terminal'), PIPELINE_ORDER.terminal);
});

test('the route steps keep the order the design asks for', () => {
  // DESIGN.md: allowlist before CORS before any limit; authentication before authorization;
  // the user limit needs a principal; CSRF after auth; the body limit, then OpenAPI validation
  // last (it reads a JSON body whole, so the declared length is refused before it reads).
  const r = PIPELINE_ORDER.route;
  const before = (a: string, b: string): void => assert.ok(r.indexOf(a) >= 0 && r.indexOf(a) < r.indexOf(b), `${a} before ${b}`);
  before('ip-allowlist', 'cors');
  before('cors', 'rate-limit');
  before('rate-limit', 'authenticate');
  before('authenticate', 'authorize');
  before('authorize', 'user-rate-limit');
  before('user-rate-limit', 'csrf');
  before('csrf', 'body-limit');
  before('authorize', 'openapi');
  before('body-limit', 'openapi');
  assert.equal(r.at(-1), 'openapi');
});
