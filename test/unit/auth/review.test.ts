// Findings of the adversarial review of src/auth, at unit level (each test failed before its fix).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { createMemoryKv } from '../../../src/stores/kv.js';
import { createMemoryLogger } from '../../../src/log/logger.js';
import { RefreshTokens, type AccessRef } from '../../../src/auth/refresh.js';
import { createAuthEndpoints } from '../../../src/auth/endpoints.js';
import { dummyHash, hashPassword } from '../../../src/auth/password.js';
import type { GatewayConfig } from '../../../src/config/schema.js';
import { parseConfig } from '../../../src/config/load.js';
import type { AuthService } from '../../../src/auth/service.js';

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

test('login timing: the dummy hash for unknown users is ready before the first login, not built by it', async () => {
  // One scrypt run at the gateway's cost, for scale.
  const t0 = performance.now();
  await hashPassword('a password for timing');
  const scryptMs = performance.now() - t0;

  // A whole parsed config: the sign-in flows of issue 14 read their sections at build time.
  const cfg: GatewayConfig = parseConfig('routes:\n  - { name: x, host: x.test, upstream: "http://127.0.0.1:9", auth: session }\n', {});
  createAuthEndpoints(cfg, {} as AuthService, createMemoryLogger(), { login: async () => undefined, token: async () => undefined });
  await new Promise((r) => setTimeout(r, scryptMs * 3 + 100));

  const t1 = performance.now();
  await dummyHash();
  const firstUseMs = performance.now() - t1;
  // Before: the first unknown-user login built the dummy (one scrypt) and then verified against
  // it (another), twice the time of a wrong password for a real user.
  assert.ok(firstUseMs < scryptMs / 4, `dummyHash() took ${firstUseMs.toFixed(1)} ms at first use; one scrypt is ${scryptMs.toFixed(1)} ms`);
});
