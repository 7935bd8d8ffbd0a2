import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { parseConfig } from '../../src/config/load.js';
import { createMemoryLogger } from '../../src/log/logger.js';
import { createRedis } from '../../src/stores/redis.js';
import { startTestGateway, testCertificate } from '../helpers/harness.js';
import { freePort, waitFor } from '../helpers/redis.js';

test('rediss:// with REDIS_PASSWORD: limits counted over TLS on a password-protected Redis', { timeout: 60_000 }, async (t) => {
  const cert = await testCertificate();
  const port = await freePort();
  const server = spawn(
    'redis-server',
    ['--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1', '--tls-cert-file', cert.cert, '--tls-key-file', cert.key, '--tls-ca-cert-file', cert.cert, '--tls-auth-clients', 'no', '--requirepass', 'test-password-1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
  t.after(async () => {
    if (server.exitCode === null) {
      const exited = once(server, 'exit');
      server.kill('SIGKILL');
      await exited;
    }
  });

  const cfg = parseConfig('routes:\n  - { name: r, host: a.test, upstream: "http://127.0.0.1:1", auth: none }\n', {
    REDIS_URL: `rediss://127.0.0.1:${port}`,
    REDIS_PASSWORD: 'test-password-1',
  });
  // The test CA is private; in production a private CA comes through NODE_EXTRA_CA_CERTS.
  const redis = await createRedis(cfg, createMemoryLogger(), { tls: { ca: readFileSync(cert.cert, 'utf8'), servername: 'localhost' } });
  assert.ok(redis);
  t.after(() => redis.disconnect());
  await waitFor(() => redis.status === 'ready', 20_000, 'TLS connection with the password');

  const gw = await startTestGateway('  - { name: over-tls, host: api.test.local, upstream: UPSTREAM, auth: none, rateLimit: { window: 1m, max: 1 } }\n', {}, '', { redis });
  t.after(() => gw.close());
  assert.equal((await gw.request({ path: '/' })).status, 200);
  assert.equal((await gw.request({ path: '/' })).status, 429);
  assert.equal(gw.upstream.seen.length, 1);
  // Counted over TLS; the refusal came from the limiter's memory of the full bucket (no round trip, nothing counted).
  assert.equal(await redis.get('crmgw:rl:r:over-tls:ip:127.0.0.1'), '1');
});
