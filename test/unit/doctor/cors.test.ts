import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../../src/config/load.js';
import { corsCheck } from '../../../src/doctor/checks/network.js';
import type { CheckResult, DoctorContext } from '../../../src/doctor/types.js';

/** The CORS item of a production checklist for routes whose cors.origins are `origins`. */
async function corsResults(origins: readonly string[], corsEnv = 'https://app.example.com'): Promise<CheckResult[]> {
  const yaml = `routes:
  - name: crm-api
    host: api.example.com
    upstream: http://127.0.0.1:8000
    auth: none
    cors: { origins: ${JSON.stringify(origins)} }
`;
  const config = parseConfig(yaml, { API_SECRET_KEY: 'a'.repeat(64), CORS_ORIGINS: corsEnv, GATEWAY_DOMAIN: 'example.com' });
  const ctx = { cwd: '/nonexistent', production: true, now: new Date(), env: {}, envSources: [], envFile: { path: '/nonexistent/.env' }, config, composeFiles: [], probeTimeoutMs: 100, at: (p: string) => p } satisfies DoctorContext;
  return corsCheck(ctx);
}

test('production: a route that lets a loopback origin call it is a WARN, however the origin is spelt', async () => {
  for (const origin of ['localhost', 'LOCALHOST', 'localhost.', 'api.localhost', '127.0.0.1', '127.1.2.3', '[::1]', 'http://localhost:3000', 'http://localhost:3000/', 'HTTP://LOCALHOST:3000', 'http://[::1]:3000', 'https://127.0.0.1']) {
    const results = await corsResults(['https://app.example.com', origin]);
    const warn = results.find((r) => r.status === 'WARN');
    assert.ok(warn, `${origin}: ${JSON.stringify(results)}`);
    assert.match(warn.message, /^route crm-api still allows development origins: /);
    assert.ok(warn.message.endsWith(origin), warn.message);
  }
});

test('production: exact public origins pass; a loopback origin in CORS_ORIGINS is named once, for CORS_ORIGINS', async () => {
  const ok = await corsResults(['https://app.example.com', 'https://localhost.example.com', 'example.com']);
  assert.deepEqual(ok.map((r) => r.status), ['PASS']);
  const fromEnv = await corsResults(['https://app.example.com', 'localhost'], 'localhost');
  assert.deepEqual(fromEnv.map((r) => r.message), ['CORS_ORIGINS still allows development origins: localhost']);
});
