import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { parseConfig } from '../../src/config/load.js';
import { createMemoryLogger } from '../../src/log/logger.js';
import { RATE_LIMIT_KEY_PREFIX } from '../../src/ratelimit/index.js';
import { createRedis } from '../../src/stores/redis.js';
import { sentinelOptions } from '../../src/stores/sentinel.js';
import { startTestGateway } from '../helpers/harness.js';
import { freePort, listKeys, RedisServerProcess, waitFor } from '../helpers/redis.js';

test('REDIS_SENTINELS: the gateway finds the master through a real Sentinel and limits there', { timeout: 60_000 }, async (t) => {
  const master = await RedisServerProcess.start();
  t.after(() => master.stop());
  const dir = mkdtempSync(join(tmpdir(), 'crm-gw-sentinel-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const sentinelPort = await freePort();
  // Sentinel rewrites its config file, so it gets one of its own.
  writeFileSync(join(dir, 'sentinel.conf'), `port ${sentinelPort}\nbind 127.0.0.1\nsentinel monitor crm 127.0.0.1 ${master.port} 1\n`);
  const sentinel = spawn('redis-server', [join(dir, 'sentinel.conf'), '--sentinel'], { stdio: 'ignore' });
  t.after(async () => {
    if (sentinel.exitCode === null) {
      const exited = once(sentinel, 'exit');
      sentinel.kill('SIGKILL');
      await exited;
    }
  });

  // The URL's host is a placeholder that nothing listens on: only the sentinel can say where the master is.
  const cfg = parseConfig('routes:\n  - { name: r, host: a.test, upstream: "http://127.0.0.1:1", auth: none }\n', {
    REDIS_URL: 'redis://127.0.0.1:1',
    REDIS_SENTINELS: `127.0.0.1:${sentinelPort}`,
    REDIS_SENTINEL_NAME: 'crm',
  });
  const log = createMemoryLogger();
  const redis = await createRedis(cfg, log, sentinelOptions(cfg));
  assert.ok(redis);
  t.after(() => redis.disconnect());
  await waitFor(() => redis.status === 'ready', 20_000, 'connected to the master through the sentinel');

  const gw = await startTestGateway(
    `
  - name: via-sentinel
    host: api.test.local
    upstream: UPSTREAM
    auth: none
    rateLimit: { window: 1m, max: 2 }
`,
    {},
    '',
    { redis },
  );
  t.after(() => gw.close());
  assert.equal((await gw.request({ path: '/' })).status, 200);
  assert.equal((await gw.request({ path: '/' })).status, 200);
  assert.equal((await gw.request({ path: '/' })).status, 429);

  const direct = new Redis(master.url);
  t.after(() => direct.disconnect());
  assert.deepEqual(await listKeys(direct, `${RATE_LIMIT_KEY_PREFIX}*`), [`${RATE_LIMIT_KEY_PREFIX}r:via-sentinel:ip:127.0.0.1`]);
});
