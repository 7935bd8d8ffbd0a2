import { readFileSync } from 'node:fs';
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The process's metrics registry, served on the admin listener at /metrics. Features register
 * their own metrics on it (prefix `crmgw_`); every name is listed in README "Metrics".
 */
export const metrics = new Registry();
collectDefaultMetrics({ register: metrics, prefix: 'crmgw_' });

/**
 * prom-client's totals of active handles, requests and resources are gauges named `*_total`,
 * which Prometheus reserves for counters (`promtool check metrics` fails on them). Each is the
 * sum of its per-type gauge, which stays: `sum(crmgw_nodejs_active_handles)`.
 */
for (const name of ['crmgw_nodejs_active_handles_total', 'crmgw_nodejs_active_requests_total', 'crmgw_nodejs_active_resources_total']) {
  metrics.removeSingleMetric(name);
}

/** The package's version: src/metrics/ and dist/metrics/ both sit two folders below package.json. */
function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}

/** Prometheus's `*_info` idiom: always 1, the facts are its labels (join them onto other series). */
new Gauge({
  name: 'crmgw_build_info',
  help: 'Always 1; the labels say which crm-gateway version runs on which Node.js.',
  labelNames: ['version', 'node'] as const,
  registers: [metrics],
}).set({ version: packageVersion(), node: process.version }, 1);
