// Password hashing (src/auth/password.ts): an unknown user costs what a wrong password costs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { createMemoryLogger } from '../../../src/log/logger.js';
import { createAuthEndpoints } from '../../../src/auth/endpoints.js';
import { dummyHash, hashPassword } from '../../../src/auth/password.js';
import type { GatewayConfig } from '../../../src/config/schema.js';
import { parseConfig } from '../../../src/config/load.js';
import type { AuthService } from '../../../src/auth/service.js';

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
