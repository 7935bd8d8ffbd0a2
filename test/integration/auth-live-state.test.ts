import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, Socket, type Server } from 'node:net';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { parseConfig } from '../../src/config/load.js';
import { createAuthService } from '../../src/auth/service.js';
import { createRedisRevocationList } from '../../src/auth/revocation.js';
import { createMemoryLogger } from '../../src/log/logger.js';
import { createRedis, REDIS_PREFIX } from '../../src/stores/redis.js';
import { RedisSubscription } from '../../src/stores/subscriber.js';
import { addClient, createTestDatabase, randomSecret, startAuthGateway, type AuthTestGateway } from '../helpers/auth-gateway.js';
import { gatewayRedis, RedisServerProcess, waitFor } from '../helpers/redis.js';
import type { GatewayConfig } from '../../src/config/schema.js';

/**
 * Revocations and account state are answered from memory, kept current by Redis pub/sub
 * (src/stores/subscriber.ts); while the subscription is not live, from Redis or the account
 * store. Two gateway instances on one private redis-server (CLIENT KILL must not reach anyone
 * else's subscribers on the shared one) and one PostgreSQL database.
 */

const ROUTES = `
  - name: api
    host: api.test.local
    upstream: UPSTREAM
    auth: jwt
    roles: [api]
`;

interface Pair {
  server: RedisServerProcess;
  a: AuthTestGateway;
  b: AuthTestGateway;
  admin: Redis;
}

async function pair(t: TestContext): Promise<Pair> {
  const server = await RedisServerProcess.start();
  const db = await createTestDatabase('crmgw_live_state');
  const secret = randomSecret();
  const env = { REDIS_URL: server.url };
  const a = await startAuthGateway({ routes: ROUTES, redis: true, databaseUrl: db.url, secret, env });
  const b = await startAuthGateway({ routes: ROUTES, redis: true, databaseUrl: db.url, secret, env });
  const admin = new Redis(server.url);
  t.after(async () => {
    admin.disconnect();
    await a.close();
    await b.close();
    await server.stop();
    await db.drop();
  });
  return { server, a, b, admin };
}

function bearer(gw: AuthTestGateway, client: string): { token: string; jti: string; exp: number } {
  const { token, claims } = gw.auth.tokens.issue({ sub: `client:${client}`, roles: ['api'], ttlMs: 600_000, typ: 'access' });
  return { token, jti: claims.jti, exp: claims.exp };
}

async function status(gw: AuthTestGateway, token: string): Promise<string> {
  const res = await gw.request({ path: '/x', headers: { authorization: `Bearer ${token}` } });
  return res.status === 200 ? '200' : `${res.status} ${res.json<{ error: { code: string } }>().error.code}`;
}

/** Commands Redis received from clients (MONITOR), those run inside scripts left out. */
async function monitor(url: string): Promise<{ stop(): Promise<string[]> }> {
  const names: string[] = [];
  const admin = new Redis(url);
  const m = await admin.monitor();
  m.on('monitor', (_time: string, args: string[], source: string) => {
    if (source !== 'lua') names.push(String(args[0]).toLowerCase());
  });
  await new Promise((r) => setTimeout(r, 50));
  return {
    async stop() {
      await new Promise((r) => setTimeout(r, 50));
      m.disconnect();
      admin.disconnect();
      return names;
    },
  };
}

test('a token revoked on one instance is refused on the other within 100 ms, from memory (no Redis command per request)', { timeout: 60_000 }, async (t) => {
  const { server, a, b } = await pair(t);
  await addClient(a.auth, 'billing', ['api']);
  const tok = bearer(a, 'billing');
  assert.equal(await status(b, tok.token), '200');

  const seen = await monitor(server.url);
  for (let i = 0; i < 10; i++) assert.equal(await status(b, tok.token), '200');
  // The subscription's heartbeat (a PING a second) is not per request.
  assert.deepEqual((await seen.stop()).filter((c) => c !== 'ping'), [], 'revocation and account checks cost no Redis command while the subscription is live');

  await a.auth.revocations.revoke(tok.jti, tok.exp);
  const revokedAt = Date.now();
  assert.ok(await waitForTrue(() => b.auth.revocations.isRevoked(tok.jti) === true, 100), 'instance b knows within 100 ms');
  assert.equal(await status(b, tok.token), '401 AUTH_REVOKED');
  t.diagnostic(`refused on the other instance ${Date.now() - revokedAt} ms after the revocation was stored (including one HTTPS request)`);
});

test('the subscription killed (CLIENT KILL TYPE pubsub): revocations issued meanwhile are honoured, then learnt by catching up', { timeout: 60_000 }, async (t) => {
  const { a, b, admin } = await pair(t);
  await addClient(a.auth, 'sync', ['api']);
  const first = bearer(a, 'sync');
  const second = bearer(a, 'sync');
  assert.equal(await status(b, first.token), '200');
  assert.ok(b.auth.revocations.live);

  // Every subscriber connection of both instances is cut; the command connections stay.
  assert.ok(Number(await admin.client('KILL', 'TYPE', 'pubsub')) >= 2);
  await waitFor(() => !b.auth.revocations.live && !a.auth.revocations.live, 2_000, 'both instances see their subscription gone');
  // Revoked while b cannot hear it: b asks Redis instead of its memory.
  await a.auth.revocations.revoke(first.jti, first.exp);
  assert.equal(await status(b, first.token), '401 AUTH_REVOKED', 'honoured while the subscription is down');
  await a.auth.revocations.revoke(second.jti, second.exp);

  await waitFor(() => b.auth.revocations.live, 10_000, 'b subscribed again');
  // The second was never looked up by b: it is in memory because b read every revocation before going live.
  assert.equal(b.auth.revocations.isRevoked(second.jti), true, 'learnt by catching up, not from the missed message');
  assert.equal(await status(b, second.token), '401 AUTH_REVOKED');
  // And messages flow again.
  const third = bearer(a, 'sync');
  assert.equal(await status(b, third.token), '200');
  await a.auth.revocations.revoke(third.jti, third.exp);
  assert.ok(await waitForTrue(() => b.auth.revocations.isRevoked(third.jti) === true, 100));
});

test('an account disabled on one instance is refused on the other at once; a change missed while unsubscribed is not kept', { timeout: 60_000 }, async (t) => {
  const { a, b, admin } = await pair(t);
  await addClient(a.auth, 'crm', ['api']);
  const tok = bearer(a, 'crm');
  assert.equal(await status(b, tok.token), '200', 'b now holds the account as enabled');

  await a.auth.store.updateClient('crm', { disabled: true });
  const disabledAt = Date.now();
  assert.ok(await waitForTrue(async () => (await status(b, tok.token)) === '401 AUTH_DISABLED', 100), 'refused within 100 ms, not after the 5 s the state used to be kept');
  t.diagnostic(`refused on the other instance ${Date.now() - disabledAt} ms after the change`);

  await a.auth.store.updateClient('crm', { disabled: false });
  assert.ok(await waitForTrue(async () => (await status(b, tok.token)) === '200', 100));

  // Changed while b's subscription is down: b may not keep what it held.
  await admin.client('KILL', 'TYPE', 'pubsub');
  await waitFor(() => !b.auth.revocations.live, 2_000, 'b sees its subscription gone');
  await a.auth.store.updateClient('crm', { disabled: true });
  await waitFor(() => b.auth.revocations.live, 10_000, 'b subscribed again');
  assert.equal(await status(b, tok.token), '401 AUTH_DISABLED', 'everything held before the new subscription was dropped');
});

test('a subscriber connection that dies silently is noticed by the heartbeat, and what was revoked meanwhile is looked up', { timeout: 60_000 }, async (t) => {
  const server = await RedisServerProcess.start();
  const proxy = await BlackholeProxy.start(server.port);
  const log = createMemoryLogger();
  const direct = await gatewayRedis(server.url, log);
  const proxied = await gatewayRedis(`redis://127.0.0.1:${proxy.port}`, log);
  const other = new Redis(server.url);
  // The subscriber goes through the proxy; lookups use the direct connection.
  const subscription = new RedisSubscription(proxied, log, 200, 200);
  const list = createRedisRevocationList(direct, subscription, log);
  t.after(async () => {
    await subscription.close();
    direct.disconnect();
    proxied.disconnect();
    other.disconnect();
    await proxy.close();
    await server.stop();
  });
  assert.ok(await subscription.start(5_000));

  proxy.blackhole = true;
  // Published while the connection still looks open: this message never arrives.
  const exp = Math.floor(Date.now() / 1000) + 600;
  await other.multi().set(`${REDIS_PREFIX}revoked:silent-1`, '1', 'PX', 600_000).publish(`${REDIS_PREFIX}revocations`, `silent-1 ${exp}`).exec();
  await waitFor(() => !subscription.live, 2_000, 'the heartbeat notices within its interval and timeout');
  assert.equal(await list.isRevoked('silent-1'), true, 'looked up in Redis while not live');
  assert.ok(log.appMessages.some((m) => String(m.message).startsWith('pub/sub subscription lost')));

  proxy.blackhole = false;
  await waitFor(() => subscription.live, 10_000, 'reconnected through the proxy');
});

test('a gateway that has never read the revocations (Redis down since it started) refuses tokens, then serves once it has', { timeout: 60_000 }, async (t) => {
  const server = await RedisServerProcess.start();
  await server.stop();
  const dataDir = mkdtempSync(join(tmpdir(), 'crm-gw-live-'));
  const log = createMemoryLogger();
  const cfg: GatewayConfig = parseConfig('routes:\n  - { name: r, host: a.test, upstream: "http://127.0.0.1:1", auth: jwt }\n', {
    API_SECRET_KEY: randomSecret(),
    DATA_DIR: dataDir,
    REDIS_URL: server.url,
  });
  const redis = await createRedis(cfg, log);
  assert.ok(redis);
  const started = Date.now();
  const auth = await createAuthService(cfg, { log, redis });
  assert.ok(auth);
  t.after(async () => {
    await auth.close();
    redis.disconnect();
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });
  assert.ok(Date.now() - started >= 2_500, 'startup waited for the subscription a while');
  await addClient(auth, 'early', ['api']);
  const { claims } = auth.tokens.issue({ sub: 'client:early', roles: ['api'], ttlMs: 600_000, typ: 'access' });
  // 503, not 401 AUTH_INVALID: the token is good, the revocations cannot be read (issue 18, item 5).
  await assert.rejects(auth.principalFor(claims, 'jwt'), (err: Error & { code?: string; status?: number }) => err.code === 'AUTH_STORE_UNAVAILABLE' && err.status === 503);

  await server.start();
  await waitFor(() => auth.revocations.live, 20_000, 'subscribed once Redis is up');
  assert.equal((await auth.principalFor(claims, 'jwt')).subject, 'client:early');
});

/** Polls `check` every 5 ms for `ms`. */
async function waitForTrue(check: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A TCP proxy to a local port that can stop passing bytes without closing anything (a silent network failure). */
class BlackholeProxy {
  blackhole = false;
  port = 0;
  private readonly sockets = new Set<Socket>();
  private readonly server: Server;

  private constructor(targetPort: number) {
    this.server = createServer((client) => {
      const upstream = new Socket();
      upstream.connect(targetPort, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => this.sockets.delete(s));
      }
      client.on('data', (d: Buffer) => {
        if (!this.blackhole) upstream.write(d);
      });
      upstream.on('data', (d: Buffer) => {
        if (!this.blackhole) client.write(d);
      });
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
  }

  static async start(targetPort: number): Promise<BlackholeProxy> {
    const proxy = new BlackholeProxy(targetPort);
    proxy.server.listen(0, '127.0.0.1');
    await once(proxy.server, 'listening');
    const address = proxy.server.address();
    assert.ok(address && typeof address === 'object');
    proxy.port = address.port;
    return proxy;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
