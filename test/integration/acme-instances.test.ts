import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { startPebble } from '../helpers/pebble.js';
import { servedCertificate, startAcmeGateway, type AcmeGateway } from '../helpers/acme-gateway.js';
import { deleteKeys, freePort, gatewayRedis, runId, SHARED_REDIS_URL } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';
import { createMemoryLogger } from '../../src/log/logger.js';
import { localOrderLock, orderLockScope, redisOrderLock } from '../../src/tls/acme/lock.js';
import { redisChallenges } from '../../src/tls/acme/challenges.js';

// Issue 15, item 1: several instances, one order. Both gateways share a Redis (the real one on
// 6379) and the certificate files (as workers on one host, or a shared volume, do).

const clients: Redis[] = [];
after(async () => {
  for (const c of clients) c.disconnect();
});

async function redisClient(): Promise<Redis> {
  const c = await gatewayRedis(SHARED_REDIS_URL, createMemoryLogger());
  clients.push(c);
  return c;
}

describe('ACME with two instances sharing one Redis', { timeout: 60_000 }, () => {
  test('exactly one order is placed; the instance on the CA\'s port answers the other\'s challenge from Redis; both serve the result', async () => {
    const pebble = await startPebble();
    const dir = mkdtempSync(join(tmpdir(), 'crm-gw-acme-two-'));
    const hosts = ['api.acme.test', 'nocodb.acme.test'];
    let a: AcmeGateway | undefined;
    let b: AcmeGateway | undefined;
    try {
      // B starts first and takes the lock; its plain listener is not where pebble validates, so
      // only A (on pebble's port) can answer: it must find B's challenges in Redis.
      b = await startAcmeGateway({ pebble, hosts, dir, httpPort: await freePort(), redis: await redisClient() });
      a = await startAcmeGateway({ pebble, hosts, dir, redis: await redisClient() });
      const [ga, gb] = [a, b];
      await waitFor(() => ga.events('acme.certificate_issued').length + gb.events('acme.certificate_issued').length >= 1, 'one certificate', 30_000, 50);
      const root = await pebble.issuingRoot();
      const issued = [...ga.events('acme.certificate_issued'), ...gb.events('acme.certificate_issued')][0] as Record<string, unknown>;
      for (const g of [ga, gb]) {
        await waitFor(async () => (await servedCertificate(g.running.ports.https, 'api.acme.test', root)).x509.fingerprint256 === issued.fingerprint256, 'the certificate served by both', 10_000, 100);
      }
      assert.equal(ga.events('acme.order_placed').length + gb.events('acme.order_placed').length, 1, 'exactly one order');
      assert.equal(gb.events('acme.order_placed').length, 1, 'B (first) ordered');
      assert.ok(ga.events('acme.challenge_answered').length >= 2, 'A answered B\'s challenges');
      assert.equal(gb.events('acme.challenge_answered').length, 0);
      assert.equal(ga.acme.state.failures + gb.acme.state.failures, 0);
      assert.equal(ga.upstream.seen.length + gb.upstream.seen.length, 0);
    } finally {
      await a?.close();
      await b?.close();
      await pebble.stop();
      await deleteKeys(SHARED_REDIS_URL, `crmgw:acme:${orderLockScope(pebble.directoryUrl, hosts)}:*`);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the lock: one holder at a time; a holder whose lock expired fails the fencing check', async () => {
    const redis = await redisClient();
    const scope = runId('lock');
    try {
      const lock = redisOrderLock(redis, scope, 300);
      const first = await lock.acquire();
      assert.ok(first);
      assert.equal(await lock.acquire(), undefined, 'held');
      await new Promise((r) => setTimeout(r, 450));
      const second = await lock.acquire();
      assert.ok(second, 'free again once the TTL passed');
      assert.ok(second.fence > first.fence);
      assert.equal(await first.commit(), false, 'the stalled holder may not write');
      assert.equal(await first.extend(), false);
      assert.equal(await second.commit(), true);
      await first.release();
      assert.equal(await lock.acquire(), undefined, 'a stale release does not free another\'s lock');
      await second.release();
      assert.ok(await lock.acquire());
    } finally {
      await deleteKeys(SHARED_REDIS_URL, `crmgw:acme:${scope}:*`);
    }
  });

  test('challenges put by one instance are read by another, and removed for both', async () => {
    const [one, two] = [redisChallenges(await redisClient()), redisChallenges(await redisClient())];
    const token = runId('tok').padEnd(24, 'x');
    await one.putHttp(token, `${token}.thumb`);
    assert.equal(await two.http(token), `${token}.thumb`);
    await two.removeHttp(token);
    assert.equal(await one.http(token), undefined);
  });
});

describe('ACME without Redis', () => {
  test('the one process never overlaps its own orders', async () => {
    const lock = localOrderLock();
    const a = await lock.acquire();
    assert.ok(a);
    assert.equal(await lock.acquire(), undefined);
    assert.equal(await a.commit(), true);
    await a.release();
    assert.ok(await lock.acquire());
  });
});
