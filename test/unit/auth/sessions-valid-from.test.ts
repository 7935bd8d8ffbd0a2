import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sessionVoided } from '../../../src/auth/service.js';

test('sessionVoided: sessions begun before sessionsValidFrom are void, to the millisecond', () => {
  const change = new Date('2026-12-03T12:00:00.500Z');
  const at = (iso: string): number => Date.parse(iso) / 1000;
  assert.equal(sessionVoided(at('2026-12-03T12:00:00.499Z'), change), true, 'a millisecond before');
  assert.equal(sessionVoided(at('2026-12-03T12:00:00.500Z'), change), false, 'at the change');
  assert.equal(sessionVoided(at('2026-12-03T12:00:01.000Z'), change), false, 'after it (a new login)');
  assert.equal(sessionVoided(undefined, change), true, 'a session from before auth_time was kept');
  assert.equal(sessionVoided(undefined, undefined), false, 'no change ever made');
  assert.equal(sessionVoided(at('2020-01-01T00:00:00Z'), undefined), false);
});
