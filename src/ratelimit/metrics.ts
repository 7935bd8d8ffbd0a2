import { Counter, type Registry } from 'prom-client';

/** The rate limits' metrics, registered on the gateway's registry. */
export interface RateLimitMetrics {
  /**
   * The one count of rate-limit refusals (429), as they happen, per limit: a route's name, or
   * `login:ip`, `login:user`, `token:ip`, `token:user`. A request over two limits at once counts
   * under each; `crmgw_denials_total{reason="RATE_LIMITED"}` counts the requests.
   */
  readonly rejectedTotal: Counter<'limit'>;
  /** Requests whose limit could not be checked because the store failed, per limit and fail mode. */
  readonly storeFailuresTotal: Counter<'limit' | 'fail_mode'>;
}

/** Registers the rate-limit metrics on `registry` (once per registry: a second call throws). */
export function createRateLimitMetrics(registry: Registry): RateLimitMetrics {
  return {
    rejectedTotal: new Counter({
      name: 'crmgw_ratelimit_rejected_total',
      help: 'Requests refused because a rate limit was exceeded, by limit (route name, login:ip, login:user, token:ip, token:user).',
      labelNames: ['limit'] as const,
      registers: [registry],
    }),
    storeFailuresTotal: new Counter({
      name: 'crmgw_ratelimit_store_failures_total',
      help: 'Rate-limit checks that could not reach the store; fail_mode says whether the request passed (open) or was refused (closed).',
      labelNames: ['limit', 'fail_mode'] as const,
      registers: [registry],
    }),
  };
}
