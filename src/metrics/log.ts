import { Counter, Gauge, Registry } from 'prom-client';

/** What a logger reports of its sinks when scraped (the audit logger's `status()`). */
type StatusSource = () => readonly { chain: string; backlogBytes: number; writtenLines: number; droppedLines: number; state: string; queuedLines: number }[];
type StreamValue = (s: ReturnType<StatusSource>[number]) => number;

/** The metrics the audit logger feeds: security events, alerts, store up/down, its streams' state. */
export interface LogMetrics {
  readonly securityEventsTotal: Counter<'event'>;
  /**
   * Fed by the stores' own connection events (`store.redis_connected`/`_lost`,
   * `store.postgres_connected`/`_lost`), so the metric and the security log never disagree; a
   * store that is not configured has no series.
   */
  readonly storeUp: Gauge<'store'>;
  readonly alertsTotal: Counter<'type'>;
  readonly logBacklogBytes: Gauge<'stream'>;
  readonly logQueuedLines: Gauge<'stream'>;
  readonly logLinesWritten: Counter<'stream'>;
  readonly logLinesDropped: Counter<'stream'>;
  readonly logSinkHealthy: Gauge<'stream'>;
  readonly eventsDbBacklog: Gauge;
  /** Counts a security event written; a store's connection event also moves `crmgw_store_up`. */
  observeSecurityEvent(event: string): void;
  /** Lets the log gauges read a logger's sinks when scraped; returns the way to stop. */
  registerLogStatus(sinks: StatusSource, eventsBacklog: () => number): () => void;
}

const STORE_EVENT = /^store\.(redis|postgres)_(connected|lost)$/;

/**
 * Registers the log metrics on `registry` (once per registry: a second call throws). Without
 * one (the CLI, tests that read no metrics) they go to a registry of their own, read by nobody.
 */
export function createLogMetrics(registry: Registry = new Registry()): LogMetrics {
  const registers = [registry];
  const statusSources = new Set<StatusSource>();
  const eventsBacklogSources = new Set<() => number>();

  const securityEventsTotal = new Counter({
    name: 'crmgw_security_events_total',
    help: 'Security events written, by event name.',
    labelNames: ['event'] as const,
    registers,
  });
  const storeUp = new Gauge({
    name: 'crmgw_store_up',
    help: '1 while the store answers, 0 from its loss until it answers again, by store (redis, postgres).',
    labelNames: ['store'] as const,
    registers,
  });
  const alertsTotal = new Counter({
    name: 'crmgw_alerts_total',
    help: 'Alerts raised, by type.',
    labelNames: ['type'] as const,
    registers,
  });

  /** At scrape: each stream's `value`, summed over every sink registered here. */
  const collectPerStream = (value: StreamValue) =>
    function (this: Gauge<'stream'> | Counter<'stream'>): void {
      this.reset();
      for (const source of statusSources) for (const s of source()) this.inc({ stream: s.chain }, value(s));
    };
  const perStream = (name: string, help: string, value: StreamValue): Gauge<'stream'> =>
    new Gauge({ name, help, labelNames: ['stream'] as const, registers, collect: collectPerStream(value) });
  /** A sink's own since-start count, exposed as the counter it is (read at scrape, never decreasing while the sink lives). */
  const perStreamCounter = (name: string, help: string, value: StreamValue): Counter<'stream'> =>
    new Counter({ name, help, labelNames: ['stream'] as const, registers, collect: collectPerStream(value) });

  const logBacklogBytes = perStream('crmgw_log_backlog_bytes', 'Bytes of log lines held in memory, not yet on disk (the log write backlog), by stream.', (s) => s.backlogBytes);
  const logQueuedLines = perStream('crmgw_log_backlog_lines', 'Log lines waiting to be handed to the file, by stream.', (s) => s.queuedLines);
  const logLinesWritten = perStreamCounter('crmgw_log_lines_written_total', 'Log lines confirmed on disk since start, by stream.', (s) => s.writtenLines);
  const logLinesDropped = perStreamCounter('crmgw_log_lines_dropped_total', 'Log lines dropped because the backlog was full, since start, by stream.', (s) => s.droppedLines);
  const logSinkHealthy = new Gauge({
    name: 'crmgw_log_sink_healthy',
    help: '1 when the stream writes to disk normally; 0 while failing, retrying or dropping.',
    labelNames: ['stream'] as const,
    registers,
  });
  const eventsDbBacklog = new Gauge({
    name: 'crmgw_security_events_db_backlog',
    help: 'Security events waiting to be written to PostgreSQL.',
    registers,
    collect() {
      let n = 0;
      for (const source of eventsBacklogSources) n += source();
      this.set(n);
    },
  });

  return {
    securityEventsTotal,
    storeUp,
    alertsTotal,
    logBacklogBytes,
    logQueuedLines,
    logLinesWritten,
    logLinesDropped,
    logSinkHealthy,
    eventsDbBacklog,
    observeSecurityEvent(event) {
      securityEventsTotal.inc({ event });
      const store = STORE_EVENT.exec(event);
      if (store) storeUp.set({ store: store[1] as string }, store[2] === 'connected' ? 1 : 0);
    },
    registerLogStatus(sinks, eventsBacklog) {
      statusSources.add(sinks);
      eventsBacklogSources.add(eventsBacklog);
      return () => {
        statusSources.delete(sinks);
        eventsBacklogSources.delete(eventsBacklog);
      };
    },
  };
}
