import { test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { Redis } from 'ioredis';
import { addClient, startAuthGateway } from '../helpers/auth-gateway.js';
import { RedisServerProcess, waitFor } from '../helpers/redis.js';
import { REDIS_PREFIX } from '../../src/stores/redis.js';

/**
 * Redis stopped and restarted under load (issue #8). The gateway's own redis-server child on a
 * port of its own; the shared one is never touched. While Redis is gone every request still
 * gets an answer by its limit's fail mode, none hangs, the process stays up; once Redis is back
 * limits and revocations work again without a restart.
 */

/** Longest a single request may take before it counts as hung. */
const HUNG_MS = 10_000;

const ROUTES = `
  - name: api
    host: api.test.local
    upstream: UPSTREAM
    auth: jwt
    roles: [api]
    rateLimit: { window: 1m, max: 1000000, by: user, failMode: open }
  - name: strict
    host: api.test.local
    path: /strict
    upstream: UPSTREAM
    auth: none
    rateLimit: { window: 1m, max: 1000000, failMode: closed }
`;

interface Outcome {
  path: string;
  at: number;
  status?: number;
  code?: string;
  limited?: boolean;
  error?: string;
}

/** `concurrency` loops of keep-alive requests until stopped; every outcome recorded, hangs included. */
function load(port: number, ca: string, concurrency: number, path: (i: number) => string, headers: Record<string, string> = {}): { outcomes: Outcome[]; stop(): Promise<Outcome[]> } {
  const agent = new https.Agent({ keepAlive: true, maxSockets: concurrency });
  const outcomes: Outcome[] = [];
  let running = true;
  let n = 0;
  const one = (p: string): Promise<Outcome> =>
    new Promise((resolve) => {
      const at = Date.now();
      const req = https.request(
        { host: '127.0.0.1', port, path: p, agent, ca, servername: 'api.test.local', headers: { host: 'api.test.local', ...headers }, checkServerIdentity: () => undefined },
        (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => {
            let code: string | undefined;
            if ((res.statusCode ?? 0) >= 400) code = (JSON.parse(body) as { error?: { code?: string } }).error?.code;
            resolve({ path: p, at, status: res.statusCode, code, limited: res.headers.ratelimit !== undefined });
          });
          res.on('error', (err) => resolve({ path: p, at, error: err.message }));
        },
      );
      req.setTimeout(HUNG_MS, () => req.destroy(new Error('HUNG')));
      req.on('error', (err) => resolve({ path: p, at, error: err.message }));
      req.end();
    });
  const loops = Array.from({ length: concurrency }, async () => {
    while (running) outcomes.push(await one(path(n++)));
  });
  return {
    outcomes,
    async stop() {
      running = false;
      await Promise.all(loops);
      agent.destroy();
      return outcomes;
    },
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('Redis stopped and restarted under load: answers by fail mode, nothing hangs, limits and revocations come back by themselves', { timeout: 80_000 }, async (t) => {
  const server = await RedisServerProcess.start();
  const gw = await startAuthGateway({ routes: ROUTES, redis: true, env: { REDIS_URL: server.url } }).catch(async (err: unknown) => {
    await server.stop();
    throw err;
  });
  // Another instance's client, publishing a revocation later (connects on first use).
  const other = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  // In this order: the gateway's clients quit while their server still answers, then it stops.
  t.after(async () => {
    await server.start();
    await gw.close();
    other.disconnect();
    await server.stop();
  });
  await addClient(gw.auth, 'loader', ['api']);
  const token = gw.auth.tokens.issue({ sub: 'client:loader', roles: ['api'], ttlMs: 600_000, typ: 'access' }).token;

  const api = load(gw.port, gw.ca, 6, (i) => `/api/${i}`, { authorization: `Bearer ${token}` });
  const strict = load(gw.port, gw.ca, 4, (i) => `/strict/${i}`);
  await sleep(1_000);
  const stoppedAt = Date.now();
  await server.stop();
  await sleep(3_000);
  await server.start();
  const restartedAt = Date.now();
  // Both limits count again: their RateLimit headers are back (ioredis retries within 2 s).
  await waitFor(() => api.outcomes.slice(-6).every((o) => o.limited && o.at > restartedAt) && strict.outcomes.slice(-4).every((o) => o.status === 200 && o.limited && o.at > restartedAt), 15_000, 'limits counted again after the restart');
  const recoveredAt = Date.now();
  const apiOut = await api.stop();
  const strictOut = await strict.stop();

  for (const o of [...apiOut, ...strictOut]) assert.equal(o.error, undefined, `${o.path}: ${o.error} (every request answered, none hung)`);
  assert.deepEqual([...new Set(apiOut.map((o) => o.status))], [200], 'fail open: the jwt route kept serving');
  assert.ok(apiOut.some((o) => !o.limited && o.at > stoppedAt), 'requests passed unchecked while Redis was down');
  const refused = strictOut.filter((o) => o.status !== 200);
  assert.ok(refused.length > 0, 'fail closed: the strict route refused while Redis was down');
  for (const o of refused) {
    assert.equal(o.status, 503, `${o.path}`);
    assert.equal(o.code, 'RATE_LIMIT_UNAVAILABLE');
    assert.ok(o.at >= stoppedAt - 100 && o.at <= recoveredAt, `${o.path} refused only during the outage`);
  }
  t.diagnostic(`${apiOut.length + strictOut.length} requests; ${refused.length} refused (fail closed) during the ${Math.round((restartedAt - stoppedAt) / 1000)} s outage; limits back ${Math.round((recoveredAt - restartedAt) / 100) / 10} s after the restart`);
  const events = gw.log.securityEvents.map((e) => `${String(e.event)}:${String(e.limit ?? '')}`);
  for (const limit of ['api', 'strict']) {
    assert.ok(events.includes(`ratelimit.store_unavailable:${limit}`), `outage of ${limit} logged`);
    assert.ok(events.includes(`ratelimit.store_recovered:${limit}`), `recovery of ${limit} logged`);
  }

  // The revocation subscriber reconnected too: a revocation published by another instance
  // (a plain client on the restarted server) reaches this gateway.
  const second = gw.auth.tokens.issue({ sub: 'client:loader', roles: ['api'], ttlMs: 600_000, typ: 'access' });
  assert.equal((await gw.request({ path: '/api/before-revoke', headers: { authorization: `Bearer ${second.token}` } })).status, 200);
  await other.set(`${REDIS_PREFIX}revoked:${second.claims.jti}`, '1', 'PX', 600_000);
  await other.publish(`${REDIS_PREFIX}revocations`, `${second.claims.jti} ${second.claims.exp}`);
  await waitFor(async () => (await gw.request({ path: '/api/after-revoke', headers: { authorization: `Bearer ${second.token}` } })).status === 401, 5_000, 'the revocation published after the restart to be applied');
  assert.equal((await gw.request({ path: '/api/still', headers: { authorization: `Bearer ${token}` } })).status, 200, 'still serving');
});
