import type { Server } from 'node:net';
import { Counter, Gauge, Histogram } from 'prom-client';
import { metrics } from './registry.js';
import { performance } from 'node:perf_hooks';
import type { RequestContext } from '../context.js';

/** Latency buckets (seconds): a proxy's answers range from sub-millisecond refusals to slow uploads. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const UPSTREAM_ERRORS = new Set<string>(['UPSTREAM_UNAVAILABLE', 'UPSTREAM_BAD_RESPONSE', 'UPSTREAM_TIMEOUT']);
/** Label value for requests refused before a route was known. */
const NO_ROUTE = '(none)';

const registers = [metrics];

export const requestsTotal = new Counter({
  name: 'crmgw_http_requests_total',
  help: 'Requests and websocket upgrades answered, by route, status and kind.',
  labelNames: ['route', 'status', 'kind'] as const,
  registers,
});
/**
 * By outcome too: a 1 ms refusal and a 2 s upstream answer on one route are different
 * populations, and mixed they hide the upstream's latency.
 */
export const requestDuration = new Histogram({
  name: 'crmgw_http_request_duration_seconds',
  help: 'Time from arrival to the end of the answer, by route and outcome (forwarded, answered, denied, failed, aborted).',
  labelNames: ['route', 'outcome'] as const,
  buckets: LATENCY_BUCKETS,
  registers,
});
export const denialsTotal = new Counter({
  name: 'crmgw_denials_total',
  help: 'Requests refused by the gateway, by reason code.',
  labelNames: ['reason'] as const,
  registers,
});
export const upstreamErrors = new Counter({
  name: 'crmgw_upstream_errors_total',
  help: 'Upstream failures (refused, bad response, timeout), by route and reason.',
  labelNames: ['route', 'reason'] as const,
  registers,
});
export const securityEventsTotal = new Counter({
  name: 'crmgw_security_events_total',
  help: 'Security events written, by event name.',
  labelNames: ['event'] as const,
  registers,
});
/**
 * Fed by the stores' own connection events (`store.redis_connected`/`_lost`,
 * `store.postgres_connected`/`_lost`), so the metric and the security log never disagree; a
 * store that is not configured has no series.
 */
export const storeUp = new Gauge({
  name: 'crmgw_store_up',
  help: '1 while the store answers, 0 from its loss until it answers again, by store (redis, postgres).',
  labelNames: ['store'] as const,
  registers,
});
const STORE_EVENT = /^store\.(redis|postgres)_(connected|lost)$/;

/** Counts a security event written; a store's connection event also moves `crmgw_store_up`. */
export function observeSecurityEvent(event: string): void {
  securityEventsTotal.inc({ event });
  const store = STORE_EVENT.exec(event);
  if (store) storeUp.set({ store: store[1] as string }, store[2] === 'connected' ? 1 : 0);
}
export const alertsTotal = new Counter({
  name: 'crmgw_alerts_total',
  help: 'Alerts raised, by type.',
  labelNames: ['type'] as const,
  registers,
});
type StatusSource = () => readonly { chain: string; backlogBytes: number; writtenLines: number; droppedLines: number; state: string; queuedLines: number }[];
const statusSources = new Set<StatusSource>();
const eventsBacklogSources = new Set<() => number>();

/** Lets the log gauges read a logger's sinks when scraped; returns the way to stop. */
export function registerLogStatus(sinks: StatusSource, eventsBacklog: () => number): () => void {
  statusSources.add(sinks);
  eventsBacklogSources.add(eventsBacklog);
  return () => {
    statusSources.delete(sinks);
    eventsBacklogSources.delete(eventsBacklog);
  };
}

type StreamValue = (s: ReturnType<StatusSource>[number]) => number;

function perStream(name: string, help: string, value: StreamValue): Gauge<'stream'> {
  return new Gauge({
    name,
    help,
    labelNames: ['stream'] as const,
    registers,
    collect() {
      this.reset();
      for (const source of statusSources) for (const s of source()) this.inc({ stream: s.chain }, value(s));
    },
  });
}

/** A sink's own since-start count, exposed as the counter it is (read at scrape, never decreasing while the sink lives). */
function perStreamCounter(name: string, help: string, value: StreamValue): Counter<'stream'> {
  return new Counter({
    name,
    help,
    labelNames: ['stream'] as const,
    registers,
    collect() {
      this.reset();
      for (const source of statusSources) for (const s of source()) this.inc({ stream: s.chain }, value(s));
    },
  });
}

export const logBacklogBytes = perStream('crmgw_log_backlog_bytes', 'Bytes of log lines held in memory, not yet on disk (the log write backlog), by stream.', (s) => s.backlogBytes);
export const logQueuedLines = perStream('crmgw_log_backlog_lines', 'Log lines waiting to be handed to the file, by stream.', (s) => s.queuedLines);
export const logLinesWritten = perStreamCounter('crmgw_log_lines_written_total', 'Log lines confirmed on disk since start, by stream.', (s) => s.writtenLines);
export const logLinesDropped = perStreamCounter('crmgw_log_lines_dropped_total', 'Log lines dropped because the backlog was full, since start, by stream.', (s) => s.droppedLines);
export const logSinkHealthy = new Gauge({
  name: 'crmgw_log_sink_healthy',
  help: '1 when the stream writes to disk normally; 0 while failing, retrying or dropping.',
  labelNames: ['stream'] as const,
  registers,
});
export const eventsDbBacklog = new Gauge({
  name: 'crmgw_security_events_db_backlog',
  help: 'Security events waiting to be written to PostgreSQL.',
  registers,
  collect() {
    let n = 0;
    for (const source of eventsBacklogSources) n += source();
    this.set(n);
  },
});

const servers = new Set<Server>();
export const openConnections = new Gauge({
  name: 'crmgw_open_connections',
  help: 'Client connections open on the public listeners.',
  registers,
  async collect() {
    const counts = await Promise.all([...servers].map((s) => new Promise<number>((r) => s.getConnections((err, n) => r(err ? 0 : n)))));
    this.set(counts.reduce((a, b) => a + b, 0));
  },
});

/** Counts a listener's connections in `crmgw_open_connections` until it closes. */
export function countConnections(server: Server): void {
  servers.add(server);
  server.once('close', () => servers.delete(server));
}

/**
 * Feeds the request metrics from a request's reply, as its access line is written (never
 * re-read from the redacted line).
 */
export function observeRequest(ctx: RequestContext): void {
  const reply = ctx.reply;
  const route = ctx.route?.name ?? NO_ROUTE;
  requestsTotal.inc({ route, status: reply.status === undefined ? '0' : String(reply.status), kind: ctx.kind });
  requestDuration.observe({ route, outcome: reply.outcome ?? 'none' }, (performance.now() - ctx.startedAt) / 1000);
  const code = reply.error?.code;
  if (!code) return;
  if (UPSTREAM_ERRORS.has(code)) upstreamErrors.inc({ route, reason: code });
  else if ((reply.error?.status ?? 500) < 500 || reply.outcome === 'denied') denialsTotal.inc({ reason: code });
}
