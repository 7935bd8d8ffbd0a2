import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { SecretSealer } from '../../../../src/auth/mfa/sealed-secret.js';

const KEY = randomBytes(32).toString('hex');

test('sealed TOTP secrets: AES-256-GCM, fresh IV, bound to the user, tamper-evident', () => {
  const sealer = new SecretSealer(KEY);
  const a = sealer.seal('JBSWY3DPEHPK3PXP', 'alice');
  const b = sealer.seal('JBSWY3DPEHPK3PXP', 'alice');
  assert.notEqual(a, b, 'a fresh IV per seal');
  assert.ok(!a.includes('JBSWY3DPEHPK3PXP'));
  assert.deepEqual(sealer.open(a, 'alice'), { plain: 'JBSWY3DPEHPK3PXP', fresh: true });
  assert.equal(sealer.open(a, 'bob'), undefined, "copied onto another user's row: does not open");
  const flipped = Buffer.from(a, 'base64url');
  const last = flipped.length - 1;
  flipped[last] = (flipped[last] ?? 0) ^ 1; // the last byte of the ciphertext
  assert.equal(sealer.open(flipped.toString('base64url'), 'alice'), undefined, 'one bit changed');
  const otherVersion = Buffer.from(a, 'base64url');
  otherVersion[0] = 2;
  assert.equal(sealer.open(otherVersion.toString('base64url'), 'alice'), undefined, 'an unknown format version');
  assert.equal(sealer.open('v2.x.y.z', 'alice'), undefined, 'not base64url');
  assert.equal(new SecretSealer(randomBytes(32).toString('hex')).open(a, 'alice'), undefined, 'another API_SECRET_KEY');
});

test('after a key rotation the previous key still opens (not fresh: the caller reseals)', () => {
  const next = randomBytes(32).toString('hex');
  const sealed = new SecretSealer(KEY).seal('SECRET', 'alice');
  assert.deepEqual(new SecretSealer(next, [KEY]).open(sealed, 'alice'), { plain: 'SECRET', fresh: false });
});
