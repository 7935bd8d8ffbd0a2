import { Gauge, type Registry } from 'prom-client';

/** ACME's gauges on this instance. */
export interface AcmeMetrics {
  readonly lastSuccess: Gauge;
  readonly nextAttempt: Gauge;
  readonly failures: Gauge;
}

/**
 * Registers the ACME metrics on `registry` (once per registry: a second call throws). Called
 * only when ACME is configured (by createAcme, loaded with the ACME manager), so the names
 * appear on /metrics only then.
 */
export function createAcmeMetrics(registry: Registry): AcmeMetrics {
  return {
    lastSuccess: new Gauge({ name: 'crmgw_acme_last_success_timestamp_seconds', help: 'When this instance last obtained a certificate from the ACME CA (Unix time, seconds).', registers: [registry] }),
    nextAttempt: new Gauge({ name: 'crmgw_acme_next_attempt_timestamp_seconds', help: 'When this instance next checks or renews the ACME certificate (Unix time, seconds).', registers: [registry] }),
    failures: new Gauge({ name: 'crmgw_acme_consecutive_failures', help: 'ACME orders that failed in a row on this instance; 0 after a success.', registers: [registry] }),
  };
}
