import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { formatPreviousKeys, keyId, KEY_RETIRE_SKEW_MS, parsePreviousKeys, rotateRing } from '../../../src/secrets/keyring.js';
import { kidOf } from '../../../src/auth/keyring.js';

const HOUR = 3_600_000;
const now = new Date('2025-06-01T12:00:00.000Z');

describe('JWT key ring format', () => {
  test('kid: first 16 hex of sha256(secret), the same as the verifier computes', () => {
    const secret = 'a'.repeat(64);
    assert.equal(keyId(secret), createHash('sha256').update(secret).digest('hex').slice(0, 16));
    assert.equal(keyId(secret), kidOf(secret));
  });

  test('PREVIOUS round-trips as <secret>@<ISO UTC>, comma-separated', () => {
    const keys = [
      { secret: 'k1'.repeat(32), retireAfter: new Date('2025-06-02T12:00:30.000Z') },
      { secret: 'k2'.repeat(32), retireAfter: new Date('2025-06-03T00:00:00.000Z') },
    ];
    const text = formatPreviousKeys(keys);
    assert.equal(text, `${'k1'.repeat(32)}@2025-06-02T12:00:30.000Z,${'k2'.repeat(32)}@2025-06-03T00:00:00.000Z`);
    assert.deepEqual(parsePreviousKeys(text), keys);
    assert.deepEqual(parsePreviousKeys(''), []);
  });

  test('a malformed entry is an error naming its position, never its secret', () => {
    assert.throws(() => parsePreviousKeys('goodsecret@2025-01-01T00:00:00.000Z,topsecretvalue'), (err: Error) => /entry 2/.test(err.message) && !err.message.includes('topsecret'));
    assert.throws(() => parsePreviousKeys('s@yesterday'), /entry 1/);
    assert.throws(() => parsePreviousKeys('@2025-01-01T00:00:00.000Z'), /entry 1/);
  });
});

describe('rotateRing', () => {
  test('the current key moves to PREVIOUS until now + max token lifetime + 30 s', () => {
    const r = rotateRing('old', undefined, 'new', { now, maxTokenTtlMs: 24 * HOUR });
    assert.equal(r.current, 'new');
    assert.deepEqual(r.previous, [{ secret: 'old', retireAfter: new Date(now.getTime() + 24 * HOUR + KEY_RETIRE_SKEW_MS) }]);
    assert.equal(KEY_RETIRE_SKEW_MS, 30_000);
  });

  test('retired entries are dropped, live ones kept, newest first', () => {
    const prev = formatPreviousKeys([
      { secret: 'expired', retireAfter: new Date(now.getTime() - 1) },
      { secret: 'live', retireAfter: new Date(now.getTime() + HOUR) },
    ]);
    const r = rotateRing('cur', prev, 'next', { now, maxTokenTtlMs: 2 * HOUR });
    assert.deepEqual(r.previous.map((k) => k.secret), ['cur', 'live']);
    assert.equal(r.dropped, 1);
  });

  test('no grace: every earlier key stops now (a leaked key)', () => {
    const prev = formatPreviousKeys([{ secret: 'live', retireAfter: new Date(now.getTime() + HOUR) }]);
    const r = rotateRing('cur', prev, 'next', { now, maxTokenTtlMs: HOUR, grace: false });
    assert.deepEqual(r.previous, []);
    assert.equal(r.current, 'next');
  });

  test('a first key (nothing current) just installs the new one', () => {
    assert.deepEqual(rotateRing(undefined, undefined, 'first', { now, maxTokenTtlMs: HOUR }).previous, []);
  });

  test('a current key that cannot live in the ring format is refused, not mangled', () => {
    assert.throws(() => rotateRing('has,comma', undefined, 'n', { now, maxTokenTtlMs: HOUR }), /--no-grace/);
  });
});
