import { Counter } from 'prom-client';
import { metrics } from '../metrics/registry.js';

/**
 * The one count of rate-limit refusals (429), as they happen, per limit: a route's name, or
 * `login:ip`, `login:user`, `token:ip`, `token:user`. A request over two limits at once counts
 * under each; `crmgw_denials_total{reason="RATE_LIMITED"}` counts the requests.
 */
export const rejectedTotal = new Counter({
  name: 'crmgw_ratelimit_rejected_total',
  help: 'Requests refused because a rate limit was exceeded, by limit (route name, login:ip, login:user, token:ip, token:user).',
  labelNames: ['limit'] as const,
  registers: [metrics],
});

/** Requests whose limit could not be checked because the store failed, per limit and fail mode. */
export const storeFailuresTotal = new Counter({
  name: 'crmgw_ratelimit_store_failures_total',
  help: 'Rate-limit checks that could not reach the store; fail_mode says whether the request passed (open) or was refused (closed).',
  labelNames: ['limit', 'fail_mode'] as const,
  registers: [metrics],
});
