// RefreshTokens (src/auth/refresh.ts): what a revoked family hands over.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMemoryKv } from '../../../src/stores/kv.js';
import { RefreshTokens, type AccessRef } from '../../../src/auth/refresh.js';

test('refresh: revoking a family hands over every access token it was issued, not only the current one', async () => {
  const revoked: { family: string; current: AccessRef | undefined; earlier: readonly AccessRef[] }[] = [];
  const refresh = new RefreshTokens(createMemoryKv(), 60_000, async (family, current, earlier) => {
    revoked.push({ family, current, earlier });
  });
  const login = await refresh.start('alice', ['staff']);
  const family = login.record.family;
  await refresh.setAccess(family, 'jti-login-00001', 2_000_000_000);
  const renewed = await refresh.rotate(login.token);
  await refresh.setAccess(family, 'jti-renew-00002', 2_000_000_100);
  // Inside the grace: the same refresh token again, a second live access token for the family.
  const raced = await refresh.rotate(login.token);
  assert.equal(raced.token, undefined);
  await refresh.setAccess(family, 'jti-raced-00003', 2_000_000_200);
  await refresh.rotate(renewed.token as string);
  await refresh.setAccess(family, 'jti-later-00004', 2_000_000_300);

  await refresh.revokeFamily(family);
  assert.equal(revoked.length, 1);
  assert.deepEqual(revoked[0]?.current, { jti: 'jti-later-00004', exp: 2_000_000_300 });
  assert.deepEqual(
    revoked[0]?.earlier.map((a) => a.jti),
    ['jti-login-00001', 'jti-renew-00002', 'jti-raced-00003'],
  );
});
