import { Counter } from 'prom-client';
import { metrics } from '../metrics.js';

/** Requests refused with 429, per limit (a route name, `login`, `token`). */
export const rejectedTotal = new Counter({
  name: 'crmgw_ratelimit_rejected_total',
  help: 'Requests refused because a rate limit was exceeded',
  labelNames: ['limit'] as const,
  registers: [metrics],
});

/** Requests whose limit could not be checked because the store failed, per limit and fail mode. */
export const storeFailuresTotal = new Counter({
  name: 'crmgw_ratelimit_store_failures_total',
  help: 'Rate-limit checks that could not reach the store; fail_mode says whether the request passed (open) or was refused (closed)',
  labelNames: ['limit', 'fail_mode'] as const,
  registers: [metrics],
});
