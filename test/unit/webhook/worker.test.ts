import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { WebhookStore } from '../../../src/webhook/store.js';
import { Sealer } from '../../../src/stores/sealed.js';
import { encodeDelivery, type Delivery } from '../../../src/webhook/envelope.js';
import { DeliveryWorker } from '../../../src/webhook/worker.js';
import { createMemoryLogger, type Logger } from '../../../src/log/logger.js';
import { StandInCrm } from '../../helpers/crm-api.js';
import { deleteKeys, gatewayRedis, runId, SHARED_REDIS_URL, waitFor } from '../../helpers/redis.js';
import { Registry } from 'prom-client';
import { createWebhookMetrics } from '../../../src/webhook/metrics.js';

/**
 * The webhook queue's delivery side (DeliveryWorker), against the real Redis and a real
 * stand-in CRM API: entries that cannot become a request must be set aside, never stop the queue.
 */
const DAY = 86_400_000;
let redis: Redis;
const routes: string[] = [];
const agent = new http.Agent({ keepAlive: true });

before(async () => {
  redis = await gatewayRedis(SHARED_REDIS_URL, createMemoryLogger());
});
after(async () => {
  for (const r of routes) await deleteKeys(SHARED_REDIS_URL, `crmgw:{wa:${r}}:*`);
  redis.disconnect();
  agent.destroy();
});

function delivery(id: string, headers: Delivery['headers'] = {}, path = '/webhook/whatsapp'): Delivery {
  return { path, headers: { 'content-type': 'application/json', ...headers }, body: Buffer.from(`{"id":"${id}"}`), requestId: id, receivedAt: Date.now() };
}

async function queueWith(deliveries: Delivery[]): Promise<{ store: WebhookStore; sealer: Sealer; aad: string; name: string }> {
  const name = runId('wa-');
  routes.push(name);
  const store = new WebhookStore(redis, name);
  const sealer = new Sealer(randomBytes(32).toString('hex'));
  const aad = `crm-gateway/whatsapp-queue/v1/${name}`;
  for (const d of deliveries) {
    const r = await store.accept([`message:${d.requestId}`], sealer.seal(encodeDelivery(d), aad), { seenTtlMs: 8 * DAY, maxQueued: 100, token: 'nobody', leaseMs: 1 });
    assert.equal(r.kind, 'queued');
  }
  return { store, sealer, aad, name };
}

for (const [what, poison] of [
  ['a header value Node refuses to send', delivery('bad-header', { 'x-broken': 'a\r\nInjected: 1' })],
  ['a path Node refuses to send', delivery('bad-path', {}, '/webhook/whatsapp with space')],
] as const) {
  test(`an entry with ${what} is dead-lettered; the queue behind it is delivered and the lease is not held forever`, async (t) => {
    const crm = await StandInCrm.start();
    const { store, sealer, aad, name } = await queueWith([poison, delivery('good')]);
    const worker = new DeliveryWorker(store, sealer, createMemoryLogger(), { routeName: name, target: new URL(crm.url), agent, timeoutMs: 2_000, retryMinMs: 10, retryMaxMs: 50, aad, metrics: createWebhookMetrics(new Registry()) });
    t.after(async () => {
      await worker.stop();
      await crm.stop();
    });
    worker.start();
    // Before the fix, http.request threw synchronously, the delivery loop died, and its lease
    // renewal timer kept the lease: no process anywhere delivered this queue again.
    await waitFor(async () => (await store.depth()) === 0, 10_000, 'queue drained past the poison entry');
    assert.deepEqual(crm.received.map((r) => r.body.toString()), ['{"id":"good"}']);
    assert.equal(await redis.xlen(`crmgw:{wa:${name}}:dead`), 1, 'the poison entry is kept (sealed) in the dead letters');
  });
}

test('an unexpected error in the delivery loop neither ends it nor leaves the lease held by a deliverer that stopped', async (t) => {
  const crm = await StandInCrm.start();
  crm.behaviour = (_n, req) => ({ status: req.body.includes(Buffer.from('refused')) ? 422 : 200 });
  const { store, sealer, aad, name } = await queueWith([delivery('refused'), delivery('after')]);
  // A log sink that fails once, at the dead-letter event: a throw the loop did not expect.
  const memory = createMemoryLogger();
  let failed = false;
  const log: Logger = {
    access: memory.access,
    app: memory.app,
    security: (event, fields) => {
      if (!failed && fields?.outcome === 'dead_lettered') {
        failed = true;
        throw new Error('log sink broken');
      }
      memory.security(event, fields);
    },
  };
  const worker = new DeliveryWorker(store, sealer, log, { routeName: name, target: new URL(crm.url), agent, timeoutMs: 2_000, retryMinMs: 10, retryMaxMs: 50, aad, metrics: createWebhookMetrics(new Registry()) });
  t.after(async () => {
    await worker.stop();
    await crm.stop();
  });
  worker.start();
  // Before the fix the loop ended here, and its renewal timer kept the lease for good.
  await waitFor(async () => (await store.depth()) === 0, 10_000, 'queue drained after the unexpected error');
  assert.ok(failed, 'the log sink did fail');
  assert.deepEqual(crm.received.filter((r) => r.body.includes(Buffer.from('after'))).length, 1);
  assert.ok(memory.appMessages.some((m) => /unexpectedly; lease released/.test(String(m.message))));
});
