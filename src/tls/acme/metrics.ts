import { Gauge } from 'prom-client';
import { metrics } from '../../metrics/registry.js';

/** Registered only when ACME is configured (this module is loaded with the ACME manager). */
export const acmeMetrics = {
  lastSuccess: new Gauge({ name: 'crmgw_acme_last_success_timestamp_seconds', help: 'When this instance last obtained a certificate from the ACME CA (Unix time, seconds).', registers: [metrics] }),
  nextAttempt: new Gauge({ name: 'crmgw_acme_next_attempt_timestamp_seconds', help: 'When this instance next checks or renews the ACME certificate (Unix time, seconds).', registers: [metrics] }),
  failures: new Gauge({ name: 'crmgw_acme_consecutive_failures', help: 'ACME orders that failed in a row on this instance; 0 after a success.', registers: [metrics] }),
};
