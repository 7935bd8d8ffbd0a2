import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatJson, formatList } from '../../../src/cli/commands/block.js';
import type { Block } from '../../../src/containment/model.js';

/** What must not reach a terminal; the output's own line breaks aside. */
// eslint-disable-next-line no-control-regex -- control characters are what this looks for
const UNPRINTABLE_BUT_NEWLINE = /[\p{Cf}\u2028\u2029\u0000-\u0009\u000b-\u001f\u007f-\u009f]/u;

const stored: Block = {
  kind: 'user',
  target: 'bob',
  // What an older version's automatic reason could hold: the alert message quoting a typed name.
  reason: 'automatic: 5 failed logins for user \u001b]0;owned\u0007\u001b[2J\u009b31m\u202eevil\u2028next',
  until: Date.parse('2026-12-06T12:00:00Z'),
  createdAt: 0,
  by: 'ops\u001b[8m',
  source: 'manual',
};

test('regression: block list escapes control and format characters of stored blocks (table and --json)', () => {
  const table = formatList([stored]);
  assert.doesNotMatch(table, UNPRINTABLE_BUT_NEWLINE);
  assert.equal(table.split('\n').length, 3, 'a header, one row, the final newline');
  assert.match(table, /\\u001b\]0;owned\\u0007\\u001b\[2J\\u009b31m\\u202eevil\\u2028next/);
  assert.match(table, /ops\\u001b\[8m/);
  const json = formatJson([stored]);
  assert.doesNotMatch(json, UNPRINTABLE_BUT_NEWLINE);
  const back = JSON.parse(json) as { reason: string; by: string }[];
  assert.equal(back[0]?.reason, stored.reason, 'the same value, escaped');
  assert.equal(back[0]?.by, stored.by);
});
