// test/unit/app/: the modules at the top of src/ (app.ts and step.ts: the pipeline; errors.ts: the
// error registry), which belong to no feature folder.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ERRORS, GatewayError } from '../../../src/errors.js';

test('every error code is documented in docs/errors.md with its status, and it lists no other', () => {
  const readme = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
  const rows = [...readme.matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1], Number(m[2])] as const);
  const documented = new Map(rows);
  for (const [code, { status }] of Object.entries(ERRORS)) {
    assert.equal(documented.get(code), status, `${code} documented with status ${status}`);
  }
  assert.deepEqual([...documented.keys()].sort(), Object.keys(ERRORS).sort());
});

test('GatewayError keeps the detail out of the public message', () => {
  const err = new GatewayError('IP_DENIED', 'client 10.0.0.1 not in allowlist');
  assert.equal(err.status, 403);
  assert.equal(err.publicMessage, ERRORS.IP_DENIED.message);
  assert.ok(!err.publicMessage.includes('10.0.0.1'));
});
