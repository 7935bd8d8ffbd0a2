import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildContext } from '../../../src/doctor/context.js';
import { runChecks } from '../../../src/doctor/run.js';
import { redisPersistenceCheck } from '../../../src/doctor/checks/persistence.js';
import { formatReport } from '../../../src/doctor/report.js';
import type { CheckResult } from '../../../src/doctor/types.js';
import { checkWebhookRedis, RefusedToStart } from '../../../src/bootstrap.js';
import { parseConfig } from '../../../src/config/load.js';
import { createMemoryLogger } from '../../../src/log/logger.js';
import { RedisServerProcess } from '../../helpers/redis.js';
import { tempDir } from '../../helpers/deployment.js';

/**
 * Issue 18, item 7: whether the Redis the gateway uses keeps what it acknowledged, asked of
 * real redis-servers of the test's own: one without an append-only file, one with
 * `appendfsync everysec`, one with `appendfsync no`, one with CONFIG renamed away. This
 * machine's Redis (7.0) has no WAITAOF, so `whatsapp.waitAof` is refused.
 */

const WEBHOOK_ROUTE = 'routes:\n  - { name: wa, host: wa.test.local, upstream: "http://127.0.0.1:9", auth: whatsapp }\n';
const PLAIN_ROUTE = 'routes:\n  - { name: api, host: api.test.local, upstream: "http://127.0.0.1:9", auth: none }\n';

let work: string;
const servers: RedisServerProcess[] = [];
let noAof: RedisServerProcess;
let everysec: RedisServerProcess;
let lazyFsync: RedisServerProcess;
let hiddenConfig: RedisServerProcess;

before(async () => {
  work = tempDir('crm-gw-persist-');
  const dir = (name: string): string => {
    const d = join(work, name);
    mkdirSync(d);
    return d;
  };
  noAof = await RedisServerProcess.start(['--dir', dir('noaof')]);
  everysec = await RedisServerProcess.start(['--appendonly', 'yes', '--appendfsync', 'everysec', '--dir', dir('everysec')]);
  lazyFsync = await RedisServerProcess.start(['--appendonly', 'yes', '--appendfsync', 'no', '--dir', dir('lazy')]);
  hiddenConfig = await RedisServerProcess.start(['--appendonly', 'yes', '--dir', dir('hidden'), '--rename-command', 'CONFIG', '']);
  servers.push(noAof, everysec, lazyFsync, hiddenConfig);
});
after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  rmSync(work, { recursive: true, force: true });
});

async function doctor(url: string, opts: { production?: boolean; yaml?: string } = {}): Promise<CheckResult[]> {
  const cwd = tempDir('crm-gw-persist-case-');
  writeFileSync(join(cwd, 'gateway.yaml'), opts.yaml ?? WEBHOOK_ROUTE);
  try {
    return await runChecks(buildContext({ cwd, env: { GATEWAY_CONFIG: join(cwd, 'gateway.yaml'), REDIS_URL: url }, production: opts.production ?? true, composeFiles: [] }), [redisPersistenceCheck]);
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
}

describe('doctor: redis-persistence', () => {
  test('appendonly no with a webhook route in production: FAIL, with the fix', async () => {
    const [r] = await doctor(noAof.url);
    assert.equal(r?.status, 'FAIL', JSON.stringify(r));
    assert.match(r?.message ?? '', /appendonly no: no persistence at all/);
    assert.match(r?.fix ?? '', /--appendonly yes --appendfsync everysec/);
    assert.match(formatReport([r as CheckResult]), /fix: run Redis with --appendonly yes/);
  });

  test('appendonly no without a webhook route, or in development: WARN', async () => {
    assert.equal((await doctor(noAof.url, { yaml: PLAIN_ROUTE }))[0]?.status, 'WARN');
    assert.equal((await doctor(noAof.url, { production: false }))[0]?.status, 'WARN');
  });

  test('appendonly yes, appendfsync everysec: PASS, naming the second it still risks', async () => {
    const [r] = await doctor(everysec.url);
    assert.equal(r?.status, 'PASS', JSON.stringify(r));
    assert.match(r?.message ?? '', /^Redis 7\.\d+\.\d+ at redis:\/\/127\.0\.0\.1:\d+\/?: appendonly yes, appendfsync everysec: a crash of the Redis host may lose up to about 1 s/);
  });

  test('appendfsync no: WARN', async () => {
    const [r] = await doctor(lazyFsync.url);
    assert.equal(r?.status, 'WARN');
    assert.match(r?.fix ?? '', /appendfsync everysec/);
  });

  test('CONFIG renamed away: UNKNOWN with the reason, not a PASS or a FAIL', async () => {
    const [r] = await doctor(hiddenConfig.url);
    assert.equal(r?.status, 'UNKNOWN', JSON.stringify(r));
    assert.match(r?.message ?? '', /unknown command .CONFIG./i);
    assert.match(formatReport([r as CheckResult]), /0 PASS, 0 WARN, 0 FAIL, 1 UNKNOWN/);
  });

  test('Redis not reachable: UNKNOWN, never PASS', async () => {
    const down = await RedisServerProcess.start();
    await down.stop();
    const [r] = await doctor(down.url);
    assert.equal(r?.status, 'UNKNOWN');
    assert.match(r?.message ?? '', /ECONNREFUSED/);
  });

  test('whatsapp.waitAof on a Redis before 7.2: FAIL', async () => {
    const results = await doctor(everysec.url, { yaml: `whatsapp: { waitAof: true }\n${WEBHOOK_ROUTE}` });
    const r = results.find((x) => x.id === 'redis-waitaof');
    assert.equal(r?.status, 'FAIL');
    assert.match(r?.message ?? '', /has no WAITAOF \(7\.2 or later\)/);
  });
});

describe('startup with a webhook route', () => {
  const config = (url: string, env: 'production' | 'development', yaml = WEBHOOK_ROUTE): ReturnType<typeof parseConfig> => parseConfig(yaml, { REDIS_URL: url, GATEWAY_ENV: env });

  test('production refuses a Redis without an append-only file, with the reason and the fix', async () => {
    await assert.rejects(checkWebhookRedis(config(noAof.url, 'production'), createMemoryLogger()), (err: Error) => {
      assert.ok(err instanceof RefusedToStart);
      assert.match(err.message, /refusing to start in production:\n {2}- \[redis-persistence\] Redis appendonly no: no persistence at all.*--appendonly yes/);
      return true;
    });
  });

  test('production starts on appendonly yes / everysec; development on appendonly no, with a warning', async () => {
    await checkWebhookRedis(config(everysec.url, 'production'), createMemoryLogger());
    await checkWebhookRedis(config(noAof.url, 'development'), createMemoryLogger());
  });

  test('whatsapp.waitAof is refused on Redis 7.0 in any environment, with a clear message', async () => {
    await assert.rejects(checkWebhookRedis(config(everysec.url, 'development', `whatsapp: { waitAof: true }\n${WEBHOOK_ROUTE}`), createMemoryLogger()), (err: Error) => {
      assert.ok(err instanceof RefusedToStart);
      assert.match(err.message, /^refusing to start:\n {2}- \[redis-waitaof\] whatsapp\.waitAof needs WAITAOF, which Redis 7\.\d+\.\d+ lacks \(7\.2 or later\)/);
      return true;
    });
  });

  test('a Redis that hides CONFIG, or is down, cannot be judged: the gateway starts and says so', async () => {
    const log = createMemoryLogger();
    await checkWebhookRedis(config(hiddenConfig.url, 'production'), log);
    const down = await RedisServerProcess.start();
    await down.stop();
    await checkWebhookRedis(config(down.url, 'production'), log);
    const warnings = log.appMessages.map((m) => String(m.message));
    assert.ok(warnings.some((m) => /cannot read Redis's persistence settings/.test(m)), warnings.join('\n'));
    assert.ok(warnings.some((m) => /Redis not reachable at startup/.test(m)), warnings.join('\n'));
  });
});
