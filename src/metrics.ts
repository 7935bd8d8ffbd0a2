import { Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The process's metrics registry, served on the admin listener at /metrics. Features register
 * their own metrics on it (prefix `crmgw_`).
 */
export const metrics = new Registry();
collectDefaultMetrics({ register: metrics, prefix: 'crmgw_' });
