import { Counter, Gauge } from 'prom-client';
import { metrics } from '../metrics/registry.js';

/** What happened to each webhook payload (one count per payload, per outcome reached). */
export type WebhookOutcome = 'forwarded' | 'duplicate' | 'queued' | 'delivered_late' | 'rejected' | 'dead_lettered';

const outcomes = new Counter({
  name: 'crmgw_whatsapp_webhook_total',
  help: 'WhatsApp webhook payloads by outcome: forwarded, duplicate, queued, delivered_late, rejected, dead_lettered.',
  labelNames: ['route', 'outcome'] as const,
  registers: [metrics],
});

export function countOutcome(route: string, outcome: WebhookOutcome): void {
  outcomes.inc({ route, outcome });
}

const clientCerts = new Counter({
  name: 'crmgw_whatsapp_client_cert_total',
  help: 'WhatsApp webhook requests by client certificate result (WHATSAPP_MTLS): accepted, absent (optional mode), rejected.',
  labelNames: ['route', 'result'] as const,
  registers: [metrics],
});

export function countClientCert(route: string, result: 'accepted' | 'absent' | 'rejected'): void {
  clientCerts.inc({ route, result });
}

/** A route's queue, read when /metrics is scraped. */
export interface QueueGauge {
  readonly route: string;
  depth(): Promise<number>;
  oldestAgeMs(): Promise<number>;
}

const queues = new Set<QueueGauge>();

new Gauge({
  name: 'crmgw_whatsapp_queue_depth',
  help: 'WhatsApp webhook payloads stored and not yet delivered to the CRM API.',
  labelNames: ['route'] as const,
  registers: [metrics],
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
  registers: [metrics],
  async collect() {
    this.reset();
    for (const q of queues) {
      const ms = await q.oldestAgeMs().catch(() => undefined);
      if (ms !== undefined) this.set({ route: q.route }, ms / 1000);
    }
  },
});

/** Reports a queue on /metrics until the returned function is called. */
export function watchQueue(q: QueueGauge): () => void {
  queues.add(q);
  return () => queues.delete(q);
}
