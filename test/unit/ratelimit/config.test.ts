import { test } from 'node:test';
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { ConfigError, parseConfig, type ConfigProblem } from '../../../src/config/load.js';
import { sentinelOptions } from '../../../src/stores/sentinel.js';

const ROUTE = (rateLimit: string): string => `routes:\n  - { name: r, host: a.test, upstream: "http://127.0.0.1:8000", auth: jwt, rateLimit: ${rateLimit} }\n`;

function problems(yaml: string, env: Record<string, string> = {}): ConfigProblem[] {
  try {
    parseConfig(yaml, env, 't.yaml');
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return [...err.problems];
  }
  return [];
}

test('rateLimit defaults: by ip, fail open, IPv6 /64', () => {
  const r = parseConfig(ROUTE('{ window: 1m, max: 5 }'), {}).routes[0];
  assert.deepEqual(r?.rateLimit, { window: 60_000, max: 5, by: 'ip', failMode: 'open', ipv6Prefix: 64 });
});

test('rateLimit refuses unknown keys, bad fail modes, windows out of range and bad prefixes, all at once', () => {
  const found = problems(ROUTE('{ window: 10ms, max: 0, by: host, failMode: maybe, ipv6Prefix: 129, burst: 3 }')).map((p) => p.path);
  for (const path of ['window', 'max', 'by', 'failMode', 'ipv6Prefix']) assert.ok(found.includes(`routes[0].rateLimit.${path} (route r)`), `${path} in ${found.join(', ')}`);
  assert.ok(found.some((p) => p.startsWith('routes[0].rateLimit')) && found.length >= 6, found.join(', '));
  assert.equal(problems(ROUTE('{ window: 25h, max: 1 }')).length, 1);
});

test('GATEWAY_WORKERS: a number or auto; more than one needs REDIS_URL', () => {
  const yaml = ROUTE('{ window: 1m, max: 5 }');
  assert.equal(parseConfig(yaml, {}).server.workers, 1);
  assert.equal(parseConfig(yaml, { GATEWAY_WORKERS: '4', REDIS_URL: 'redis://127.0.0.1:6379' }).server.workers, 4);
  assert.equal(parseConfig(yaml, { GATEWAY_WORKERS: 'auto', REDIS_URL: 'redis://127.0.0.1:6379' }).server.workers, availableParallelism());
  assert.deepEqual(problems(yaml, { GATEWAY_WORKERS: '2' }), [{ path: 'server.workers (from GATEWAY_WORKERS)', message: 'more than one worker needs REDIS_URL (shared limits and state)' }]);
  assert.equal(problems(yaml, { GATEWAY_WORKERS: 'many' }).length, 1);
  assert.equal(problems(yaml, { GATEWAY_WORKERS: '0' }).length, 1);
});

test('REDIS_SENTINELS becomes ioredis Sentinel options; REDIS_URL still required', () => {
  const yaml = ROUTE('{ window: 1m, max: 5 }');
  const cfg = parseConfig(yaml, { REDIS_URL: 'rediss://:pw@redis.internal:6379/2', REDIS_SENTINELS: 's1:26379, [fd00::5]:26380', REDIS_SENTINEL_NAME: 'crm' });
  assert.deepEqual(sentinelOptions(cfg), {
    sentinels: [
      { host: 's1', port: 26379 },
      { host: 'fd00::5', port: 26380 },
    ],
    name: 'crm',
    enableTLSForSentinelMode: true,
  });
  assert.deepEqual(sentinelOptions(parseConfig(yaml, { REDIS_URL: 'redis://127.0.0.1:6379' })), {});
  assert.equal(problems(yaml, { REDIS_SENTINELS: 's1:26379' }).length, 1);
  assert.equal(problems(yaml, { REDIS_URL: 'redis://x:6379', REDIS_SENTINELS: 'no-port' }).length, 1);
});
