import { readFileSync } from 'node:fs';
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * A gateway's metrics registry, served on its admin listener at /metrics: Node's default metrics
 * and `crmgw_build_info`, registered here once per registry. Features register their own metrics
 * on it (prefix `crmgw_`, each through its `create…Metrics(registry)`); every name is listed in
 * docs/audit.md "Metrics". Made by what builds the gateway (src/metrics/gateway.ts), never at import.
 */
export function createMetricsRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'crmgw_' });
  /**
   * prom-client's totals of active handles, requests and resources are gauges named `*_total`,
   * which Prometheus reserves for counters (`promtool check metrics` fails on them). Each is the
   * sum of its per-type gauge, which stays: `sum(crmgw_nodejs_active_handles)`.
   */
  for (const name of ['crmgw_nodejs_active_handles_total', 'crmgw_nodejs_active_requests_total', 'crmgw_nodejs_active_resources_total']) {
    registry.removeSingleMetric(name);
  }
  /** Prometheus's `*_info` idiom: always 1, the facts are its labels (join them onto other series). */
  new Gauge({
    name: 'crmgw_build_info',
    help: 'Always 1; the labels say which crm-gateway version runs on which Node.js.',
    labelNames: ['version', 'node'] as const,
    registers: [registry],
  }).set({ version: packageVersion(), node: process.version }, 1);
  return registry;
}

/** The package's version: src/metrics/ and dist/metrics/ both sit two folders below package.json. */
function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}
