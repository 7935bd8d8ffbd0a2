import type { Registry } from 'prom-client';
import { createMetricsRegistry } from './registry.js';
import { createRequestMetrics, type RequestMetrics } from './requests.js';
import { createLogMetrics, type LogMetrics } from './log.js';
import { createRateLimitMetrics, type RateLimitMetrics } from '../ratelimit/metrics.js';
import { createWebhookMetrics, type WebhookMetrics } from '../webhook/metrics.js';
import { createTlsMetrics, type TlsMetrics } from '../tls/metrics.js';

/**
 * One gateway's metrics: its registry (served on its admin listener) and the metric objects of
 * every feature it always loads. Features loaded only when configured (backups, ACME) register
 * theirs on `registry` when they start, so their names appear only then.
 */
export interface GatewayMetrics {
  readonly registry: Registry;
  readonly requests: RequestMetrics;
  /** Fed by the audit logger (pass it as its `metrics` option). */
  readonly log: LogMetrics;
  readonly rateLimit: RateLimitMetrics;
  readonly webhook: WebhookMetrics;
  readonly tls: TlsMetrics;
}

/**
 * Made once by what builds a gateway (main.ts, startGateway): a fresh registry with Node's
 * default metrics and build info, and every feature's metrics on it. Two gateways in one process
 * share nothing.
 */
export function createGatewayMetrics(): GatewayMetrics {
  const registry = createMetricsRegistry();
  return {
    registry,
    requests: createRequestMetrics(registry),
    log: createLogMetrics(registry),
    rateLimit: createRateLimitMetrics(registry),
    webhook: createWebhookMetrics(registry),
    tls: createTlsMetrics(registry),
  };
}
