/**
 * Rate limits: per route (`rateLimit: { window, max, by, failMode, ipv6Prefix }`) and the fixed
 * limits of the credential endpoints, counted in Redis (shared by every gateway process) or,
 * without REDIS_URL, in this process's memory.
 */
export { createRouteLimit, chargeStopped, clientBucket, type RouteLimit } from './route.js';
export { createLoginLimiter, CREDENTIAL_LIMITS, type CredentialLimiter, type CredentialEndpoint } from './login.js';
export { ipBucket, ipGroup, userBucket, canonicalUserName } from './keys.js';
export { RATE_LIMIT_KEY_PREFIX } from './store.js';
export { createRateLimitMetrics, type RateLimitMetrics } from './metrics.js';
export type { LimitDeps } from './limiter.js';
