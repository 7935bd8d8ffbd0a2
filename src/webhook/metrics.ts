import { Counter, Gauge, type Registry } from 'prom-client';

/** What happened to each webhook payload (one count per payload, per outcome reached). */
export type WebhookOutcome = 'forwarded' | 'duplicate' | 'queued' | 'delivered_late' | 'rejected' | 'dead_lettered';

/** A route's queue, read when /metrics is scraped. */
export interface QueueGauge {
  readonly route: string;
  depth(): Promise<number>;
  oldestAgeMs(): Promise<number>;
}

/** The WhatsApp webhook's metrics, registered on the gateway's registry. */
export interface WebhookMetrics {
  countOutcome(route: string, outcome: WebhookOutcome): void;
  countClientCert(route: string, result: 'accepted' | 'absent' | 'rejected'): void;
  /** Reports a queue on /metrics until the returned function is called. */
  watchQueue(q: QueueGauge): () => void;
}

/** Registers the webhook metrics on `registry` (once per registry: a second call throws). */
export function createWebhookMetrics(registry: Registry): WebhookMetrics {
  const outcomes = new Counter({
    name: 'crmgw_whatsapp_webhook_total',
    help: 'WhatsApp webhook payloads by outcome: forwarded, duplicate, queued, delivered_late, rejected, dead_lettered.',
    labelNames: ['route', 'outcome'] as const,
    registers: [registry],
  });
  const clientCerts = new Counter({
    name: 'crmgw_whatsapp_client_cert_total',
    help: 'WhatsApp webhook requests by client certificate result (WHATSAPP_MTLS): accepted, absent (optional mode), rejected.',
    labelNames: ['route', 'result'] as const,
    registers: [registry],
  });

  const queues = new Set<QueueGauge>();
  new Gauge({
    name: 'crmgw_whatsapp_queue_depth',
    help: 'WhatsApp webhook payloads stored and not yet delivered to the CRM API.',
    labelNames: ['route'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const q of queues) {
        const n = await q.depth().catch(() => undefined);
        if (n !== undefined) this.set({ route: q.route }, n);
      }
    },
  });
  new Gauge({
    name: 'crmgw_whatsapp_queue_oldest_age_seconds',
    help: 'Age of the oldest undelivered WhatsApp webhook payload (0 when the queue is empty).',
    labelNames: ['route'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const q of queues) {
        const ms = await q.oldestAgeMs().catch(() => undefined);
        if (ms !== undefined) this.set({ route: q.route }, ms / 1000);
      }
    },
  });

  return {
    countOutcome: (route, outcome) => outcomes.inc({ route, outcome }),
    countClientCert: (route, result) => clientCerts.inc({ route, result }),
    watchQueue(q) {
      queues.add(q);
      return () => queues.delete(q);
    },
  };
}
