import { redactUrl } from '../../stores/redis.js';
import { judgePersistence, probeRedisPersistence, supportsWaitAof } from '../../stores/persistence.js';
import { sentinelOptions } from '../../stores/sentinel.js';
import { readFileSync } from 'node:fs';
import { parseCompose, roleOf } from '../compose.js';
import { pass, type Check, type CheckResult, type DoctorContext } from '../types.js';

const ID = 'redis-persistence';

/**
 * What the compose file starts Redis with, when the server itself cannot be asked from here
 * (a compose deployment names it `redis:6379`): undefined without a Redis service.
 */
function composedPersistence(ctx: DoctorContext): { appendonly: string; appendfsync: string; save: string; source: string } | undefined {
  for (const file of ctx.composeFiles) {
    let services;
    try {
      services = parseCompose(readFileSync(file, 'utf8'), ctx.env, file);
    } catch {
      continue; // the compose check reports it
    }
    const redis = services.find((s) => roleOf(s) === 'redis');
    if (!redis) continue;
    return {
      appendonly: /--appendonly\s+yes\b/.test(redis.command) ? 'yes' : 'no',
      // Redis's own default when the flag is absent.
      appendfsync: /--appendfsync\s+(\w+)/.exec(redis.command)?.[1] ?? 'everysec',
      save: /--save\s+(""|'')/.test(redis.command) ? '' : "Redis's default",
      source: `${file.split('/').pop() ?? file} services.${redis.name}`,
    };
  }
  return undefined;
}

/**
 * The Redis the gateway uses keeps what it acknowledged across a crash: the WhatsApp webhook
 * answers Meta 200 once a payload is in Redis, and a Redis without an append-only file loses
 * it on a crash (issue 18, item 7). FAIL in production when a webhook route exists, else WARN.
 */
export const redisPersistenceCheck: Check = async (ctx) => {
  const cfg = ctx.config;
  const url = cfg?.stores.redisUrl;
  if (!cfg || !url) return [pass(ID, 'REDIS_URL not set: nothing kept in Redis to lose (the webhook refuses payloads without it)')];
  const webhook = cfg.routes.some((r) => r.auth === 'whatsapp');
  const inUrl = new URL(url).password;
  const read = await probeRedisPersistence(url, cfg.stores.redisPassword || (inUrl ? decodeURIComponent(inUrl) : undefined), ctx.probeTimeoutMs, sentinelOptions(cfg));
  if ('unreachable' in read) {
    const composed = composedPersistence(ctx);
    if (composed) {
      const verdict = judgePersistence({ version: undefined, ...composed }, webhook && ctx.production ? 'FAIL' : 'WARN');
      const note = `Redis at ${redactUrl(url)} not reachable from here to confirm (${read.unreachable}); ${composed.source} starts it with`;
      return [{ id: ID, status: verdict.status, message: `${note} ${verdict.message}`, fix: verdict.fix }];
    }
    return [{ id: ID, status: 'UNKNOWN', message: `Redis at ${redactUrl(url)} not reachable from here (${read.unreachable}), so its persistence is unknown`, fix: 'run doctor where Redis is reachable, or check appendonly on the Redis host' }];
  }
  const verdict = judgePersistence(read, webhook && ctx.production ? 'FAIL' : 'WARN');
  const out: CheckResult[] = [{ id: ID, status: verdict.status, message: `Redis ${read.version ?? '(version unknown)'} at ${redactUrl(url)}: ${verdict.message}`, fix: verdict.fix }];
  if (webhook && cfg.whatsapp.waitAof && !supportsWaitAof(read.version)) {
    out.push({ id: 'redis-waitaof', status: 'FAIL', message: `whatsapp.waitAof is on, but Redis ${read.version ?? '(version unknown)'} has no WAITAOF (7.2 or later): the gateway refuses to start`, fix: 'upgrade Redis to 7.2 or later, or set whatsapp.waitAof: false' });
  }
  return out;
};
