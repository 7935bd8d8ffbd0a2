import type { RequestContext } from '../context.js';
import { enforce, Limiter, type LimitDeps, type LimitPolicy } from './limiter.js';
import { canonicalUserName, userBucket } from './keys.js';
import { clientBucket } from './route.js';

const MINUTE = 60_000;

/**
 * Fixed limits of the credential endpoints, per client address and per user name, whatever the
 * route config says. Counted on every attempt, successful or not (failed logins also feed the
 * auth lockout, which is separate). An office behind one NAT address still fits the per-IP
 * numbers; one user name gets a handful of tries.
 */
export const CREDENTIAL_LIMITS = {
  login: { perIp: { windowMs: 15 * MINUTE, max: 60 }, perUser: { windowMs: 15 * MINUTE, max: 10 } },
  token: { perIp: { windowMs: 15 * MINUTE, max: 300 }, perUser: { windowMs: 15 * MINUTE, max: 60 } },
} as const;
export type CredentialEndpoint = keyof typeof CREDENTIAL_LIMITS;

/** IPv6 grouping of the credential limits. */
const CREDENTIAL_IPV6_PREFIX = 64;

/**
 * Checks one attempt at a credential endpoint; throws RATE_LIMITED (429, `Retry-After`) when the
 * client address or the user name is over its limit, and RATE_LIMIT_UNAVAILABLE (503) when the
 * store cannot be reached: these limits fail closed. Sets the RateLimit headers on
 * `ctx.reply.headers`. `userName` is the name as typed (or the client id); without it only the
 * address is limited.
 */
export type CredentialLimiter = (ctx: RequestContext, userName?: string) => Promise<void>;

/**
 * The limiter for `/auth/login` (`endpoint: 'login'`) or the token endpoints (`'token'`). Build it
 * once at startup and call it for each attempt, before checking the password or token; login
 * and token budgets are separate.
 */
export function createLoginLimiter(deps: LimitDeps, endpoint: CredentialEndpoint = 'login'): CredentialLimiter {
  const limits = CREDENTIAL_LIMITS[endpoint];
  const policy = (scope: string, l: { windowMs: number; max: number }): LimitPolicy => ({
    name: `${endpoint}:${scope}`,
    keyPrefix: `auth:${endpoint}`,
    windowMs: l.windowMs,
    max: l.max,
    failMode: 'closed',
  });
  const perIp = new Limiter(policy('ip', limits.perIp), deps);
  const perUser = new Limiter(policy('user', limits.perUser), deps);
  return async (ctx, userName) => {
    const name = userName === undefined ? '' : canonicalUserName(userName);
    const usages = await Promise.all([perIp.take(clientBucket(ctx, CREDENTIAL_IPV6_PREFIX)), name ? perUser.take(userBucket(name)) : undefined]);
    enforce(ctx, usages);
  };
}
