import { existsSync } from 'node:fs';
import { redactUrl } from '../../stores/redis.js';
import { probeRedis, withoutCredentials } from '../probes/redis.js';
import { pass, prodFail, type Check } from '../types.js';

/** libpq / node-pg modes that encrypt (node-pg verifies the certificate for all three). */
const TLS_MODES = new Set(['require', 'verify-ca', 'verify-full']);

/**
 * Redis needs a password: configured for the gateway, and, when Redis is reachable from here,
 * actually required by the server (a PING without credentials must be refused).
 */
export const redisPasswordCheck: Check = async (ctx) => {
  const url = ctx.config?.stores.redisUrl;
  if (!url) return [pass('redis-password', 'REDIS_URL not set: the gateway uses its embedded store (the compose check covers the stack’s Redis)')];
  const inUrl = new URL(url).password;
  const password = ctx.config?.stores.redisPassword || (inUrl ? decodeURIComponent(inUrl) : undefined);
  const open = await probeRedis(withoutCredentials(url), undefined, ctx.probeTimeoutMs);
  // Development runs a local Redis without a password: a warning there, a failure in production.
  if (open.result === 'open') return [{ id: 'redis-password', status: prodFail(ctx), message: `Redis at ${redactUrl(url)} answers without a password`, fix: 'start Redis with --requirepass "$REDIS_PASSWORD" (docker-compose.yml does) and set REDIS_PASSWORD for the gateway' }];
  if (!password) return [{ id: 'redis-password', status: prodFail(ctx), message: 'no Redis password configured (REDIS_PASSWORD or in REDIS_URL)', fix: 'npx crm-gateway setup production, then use REDIS_PASSWORD' }];
  if (open.result === 'unreachable') return [pass('redis-password', `password configured; Redis at ${redactUrl(url)} not reachable from here to confirm (${open.detail ?? 'no answer'})`)];
  const auth = await probeRedis(url, password, ctx.probeTimeoutMs);
  if (auth.result === 'rejected') return [{ id: 'redis-password', status: 'FAIL', message: `Redis at ${redactUrl(url)} refuses the configured password`, fix: 'make REDIS_PASSWORD match the server’s --requirepass' }];
  if (auth.result !== 'authenticated') return [{ id: 'redis-password', status: 'WARN', message: `Redis requires a password, but the configured one could not be confirmed (${auth.detail ?? auth.result})` }];
  return [pass('redis-password', `Redis at ${redactUrl(url)} refuses anonymous commands and accepts the configured password`)];
};

/** The architecture asks for encrypted database connections (TLS 1.2+). */
export const postgresTlsCheck: Check = (ctx) => {
  const url = ctx.config?.stores.databaseUrl;
  if (!url) return [pass('postgres-tls', 'DATABASE_URL not set: the gateway uses its embedded stores')];
  let params: URLSearchParams;
  try {
    params = new URL(url).searchParams;
  } catch {
    return [{ id: 'postgres-tls', status: 'FAIL', message: 'DATABASE_URL is not a URL', fix: 'postgres://user:password@host:5432/db?sslmode=verify-full' }];
  }
  const mode = params.get('sslmode') ?? (params.get('ssl') === 'true' || params.get('ssl') === '1' ? 'require' : 'disable');
  if (!TLS_MODES.has(mode)) return [{ id: 'postgres-tls', status: prodFail(ctx), message: `DATABASE_URL connects without TLS (sslmode=${mode})`, fix: 'append ?sslmode=verify-full&sslrootcert=<server certificate> (setup makes secrets/postgres.crt for the compose stack)' }];
  const root = params.get('sslrootcert');
  // WARN, not FAIL: the path may be one inside a container that this host does not have.
  if (root && !existsSync(ctx.at(root))) return [{ id: 'postgres-tls', status: 'WARN', message: `DATABASE_URL names sslrootcert ${root}, which does not exist here`, fix: 'npx crm-gateway setup (creates secrets/postgres.crt) or fix the path' }];
  return [pass('postgres-tls', `DATABASE_URL uses TLS (sslmode=${mode}${root ? `, pinned to ${root}` : ''})`)];
};
