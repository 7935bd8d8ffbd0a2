import type { Server } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { RequestContext } from '../context.js';

/** Latency buckets (seconds): a proxy's answers range from sub-millisecond refusals to slow uploads. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const UPSTREAM_ERRORS = new Set<string>(['UPSTREAM_UNAVAILABLE', 'UPSTREAM_BAD_RESPONSE', 'UPSTREAM_TIMEOUT']);
/** Label value for requests refused before a route was known. */
const NO_ROUTE = '(none)';

/** The metrics of the requests a gateway answers and of its public listeners' connections. */
export interface RequestMetrics {
  readonly requestsTotal: Counter<'route' | 'status' | 'kind'>;
  readonly requestDuration: Histogram<'route' | 'outcome'>;
  readonly denialsTotal: Counter<'reason'>;
  readonly upstreamErrors: Counter<'route' | 'reason'>;
  readonly openConnections: Gauge;
  /** Counts a listener's connections in `crmgw_open_connections` until it closes. */
  countConnections(server: Server): void;
  /**
   * Feeds the request metrics from a request's reply, as its access line is written (never
   * re-read from the redacted line).
   */
  observeRequest(ctx: RequestContext): void;
}

/** Registers the request metrics on `registry` (once per registry: a second call throws). */
export function createRequestMetrics(registry: Registry): RequestMetrics {
  const registers = [registry];
  const requestsTotal = new Counter({
    name: 'crmgw_http_requests_total',
    help: 'Requests and websocket upgrades answered, by route, status and kind.',
    labelNames: ['route', 'status', 'kind'] as const,
    registers,
  });
  /**
   * By outcome too: a 1 ms refusal and a 2 s upstream answer on one route are different
   * populations, and mixed they hide the upstream's latency.
   */
  const requestDuration = new Histogram({
    name: 'crmgw_http_request_duration_seconds',
    help: 'Time from arrival to the end of the answer, by route and outcome (forwarded, answered, denied, failed, aborted).',
    labelNames: ['route', 'outcome'] as const,
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const denialsTotal = new Counter({
    name: 'crmgw_denials_total',
    help: 'Requests refused by the gateway, by reason code.',
    labelNames: ['reason'] as const,
    registers,
  });
  const upstreamErrors = new Counter({
    name: 'crmgw_upstream_errors_total',
    help: 'Upstream failures (refused, bad response, timeout), by route and reason.',
    labelNames: ['route', 'reason'] as const,
    registers,
  });

  /** The public listeners counted, each until it closes. */
  const servers = new Set<Server>();
  const openConnections = new Gauge({
    name: 'crmgw_open_connections',
    help: 'Client connections open on the public listeners.',
    registers,
    async collect() {
      const counts = await Promise.all([...servers].map((s) => new Promise<number>((r) => s.getConnections((err, n) => r(err ? 0 : n)))));
      this.set(counts.reduce((a, b) => a + b, 0));
    },
  });

  return {
    requestsTotal,
    requestDuration,
    denialsTotal,
    upstreamErrors,
    openConnections,
    countConnections(server) {
      servers.add(server);
      server.once('close', () => servers.delete(server));
    },
    observeRequest(ctx) {
      const reply = ctx.reply;
      const route = ctx.route?.name ?? NO_ROUTE;
      requestsTotal.inc({ route, status: reply.status === undefined ? '0' : String(reply.status), kind: ctx.kind });
      requestDuration.observe({ route, outcome: reply.outcome ?? 'none' }, (performance.now() - ctx.startedAt) / 1000);
      const code = reply.error?.code;
      if (!code) return;
      if (UPSTREAM_ERRORS.has(code)) upstreamErrors.inc({ route, reason: code });
      else if ((reply.error?.status ?? 500) < 500 || reply.outcome === 'denied') denialsTotal.inc({ reason: code });
    },
  };
}
