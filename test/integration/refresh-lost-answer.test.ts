import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { ACCESS_COOKIE, REFRESH_COOKIE } from '../../src/auth/cookies.js';
import { MAX_REISSUES_PER_TOKEN, RefreshTokens } from '../../src/auth/refresh.js';
import type { EchoUpstream, SeenRequest } from '../../src/demo/echo-upstream.js';
import { isGatewayError } from '../../src/errors.js';
import { createMemoryKv, createRedisKv, type Kv } from '../../src/stores/kv.js';
import { addUser, startAuthGateway, uniq, waitFor, type AuthTestGateway } from '../helpers/auth-gateway.js';
import { SHARED_REDIS_URL } from '../helpers/redis.js';
import { SessionClient, setCookieLine } from '../helpers/session-client.js';

// Issue #12 item 2: NocoDB's 30 s long-poll renews an expired session on arrival; the user
// navigates, the poll is cancelled, and the answer carrying the new refresh cookie never
// reaches the browser. The browser's next request presents the old refresh token after the
// reuse grace: that must continue the session, while a refresh token whose successor was
// really used (a thief's) still ends the family.

const HOST = 'nocodb.test.local';
const ROUTES = `
  - name: nocodb
    host: ${HOST}
    upstream: UPSTREAM
    auth: session
    roles: [staff]
`;
const ENV = { TRUSTED_PROXIES: '127.0.0.1', PUBLIC_HTTPS_PORT: '8443' };
const GRACE_MS = 300;
/** Short access lifetime and reuse grace, so the scenario runs in a second. */
const AUTH_YAML = `auth: { sessionTtl: 5s, refreshReuseGrace: ${GRACE_MS}ms }`;
const PASSWORD = 'correct horse battery staple';
const pastGrace = (): Promise<void> => new Promise((r) => setTimeout(r, GRACE_MS + 200));

/**
 * NocoDB's long-poll stand-in (`/api/v1/notifications/poll`, nocodb 0.301): held with no answer
 * at all, or answered after `?answer=<ms>`; `/stream` sends its headers and a first chunk, then holds; anything else is echoed.
 */
async function startHoldingUpstream(): Promise<EchoUpstream> {
  const seen: SeenRequest[] = [];
  const server = http.createServer((req, res) => {
    const entry: SeenRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body: '', complete: true };
    seen.push(entry);
    req.resume();
    if (req.url?.startsWith('/api/v1/notifications/poll')) {
      // `?answer=<ms>`: the poll answers then (a notification came); else never, the client leaves first.
      const after = Number(new URL(req.url, 'http://x').searchParams.get('answer'));
      if (after > 0) setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{"notifications":[]}'), after);
      return;
    }
    if (req.url?.startsWith('/stream')) {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first chunk\n');
      return;
    }
    const body = JSON.stringify({ path: req.url, user: req.headers['x-gateway-user'] });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

interface HeldRequest {
  /** The request id the gateway gave it, as the upstream saw it. */
  requestId: string;
  /** The response headers, when they arrived. */
  headers?: http.IncomingHttpHeaders;
  /** The browser gives up on it (a navigation cancels the page's fetches). */
  abort(): void;
}

/**
 * A browser request still in flight: sent with `cookie`, returned once the upstream has it (or,
 * with `afterHeaders`, once the response headers arrived).
 */
async function heldRequest(gw: AuthTestGateway, ip: string, path: string, cookie: string, afterHeaders = false): Promise<HeldRequest> {
  const seenBefore = gw.upstream.seen.length;
  let headers: http.IncomingHttpHeaders | undefined;
  const req = https.request({
    host: '127.0.0.1',
    port: gw.port,
    path,
    ca: gw.ca,
    servername: HOST,
    agent: false,
    checkServerIdentity: () => undefined,
    headers: { host: HOST, cookie, accept: 'application/json', 'x-forwarded-for': ip },
  });
  req.on('error', () => undefined); // the abort itself
  req.on('response', (res) => {
    headers = res.headers;
    res.resume();
  });
  req.end();
  assert.ok(await waitFor(() => gw.upstream.seen.length > seenBefore && (!afterHeaders || headers !== undefined), 5_000, 10), 'the request reached the upstream');
  const requestId = String(gw.upstream.seen.at(-1)?.headers['x-request-id']);
  return { requestId, ...(headers ? { headers } : {}), abort: () => req.destroy() };
}

/** A browser request cancelled mid-flight (see heldRequest). */
async function abortedRequest(gw: AuthTestGateway, ip: string, path: string, cookie: string, afterHeaders = false): Promise<HeldRequest> {
  const held = await heldRequest(gw, ip, path, cookie, afterHeaders);
  held.abort();
  return held;
}

function code(res: { json<T>(): T }): string {
  return res.json<{ error: { code: string } }>().error.code;
}

for (const store of ['redis', 'embedded'] as const) {
  describe(`lost renewal answers (${store} store)`, () => {
    let gw: AuthTestGateway;
    let upstream: EchoUpstream;

    before(async () => {
      upstream = await startHoldingUpstream();
      gw = await startAuthGateway({ routes: ROUTES, redis: store === 'redis', env: ENV, extraYaml: AUTH_YAML, upstream });
    });
    after(async () => {
      await gw?.close();
      await upstream?.close();
    });

    async function loggedIn(): Promise<SessionClient & { user: string }> {
      const user = uniq('staff');
      await addUser(gw.auth, user, PASSWORD, ['staff']);
      const c = Object.assign(new SessionClient(gw, HOST), { user });
      await c.login(user, PASSWORD);
      return c;
    }

    const familyOf = async (c: SessionClient): Promise<string> => (await gw.auth.tokens.verify(c.jar.get(ACCESS_COOKIE) as string)).fam as string;
    const revoked = (family: string): boolean => gw.log.securityEvents.some((e) => e.event === 'auth.session_family_revoked' && e.family === family);

    test('a renewal on a long-poll that the browser cancels mid-flight: the old refresh token presented after the grace continues the session', async () => {
      const c = await loggedIn();
      const family = await familyOf(c);
      const oldRefresh = c.jar.get(REFRESH_COOKIE) as string;
      c.jar.cookies.delete(ACCESS_COOKIE); // the access cookie reached its Max-Age
      const poll = await abortedRequest(gw, c.ip, '/api/v1/notifications/poll', c.jar.header());
      assert.ok(gw.log.securityEvents.some((e) => e.event === 'auth.session_renewed' && e.requestId === poll.requestId), 'the poll renewed the session');
      assert.ok(await waitFor(() => gw.log.securityEvents.some((e) => e.event === 'auth.session_renewal_lost' && e.requestId === poll.requestId), 2_000, 10), 'the lost renewal is recorded');
      await pastGrace();

      // The user's navigation, with the cookies the browser really has: the old refresh token.
      assert.equal(c.jar.get(REFRESH_COOKIE), oldRefresh);
      const before = gw.upstream.seen.length;
      const next = await c.send({ path: '/next-page', html: true });
      assert.equal(next.status, 200, next.body.slice(0, 300));
      assert.equal(gw.upstream.seen.length, before + 1);
      assert.equal(gw.upstream.seen.at(-1)?.headers['x-gateway-user'], c.user);
      const newRefresh = setCookieLine(next, REFRESH_COOKIE)?.value;
      assert.ok(newRefresh && newRefresh !== oldRefresh, 'a fresh refresh cookie');
      assert.ok(setCookieLine(next, ACCESS_COOKIE), 'a fresh access cookie');
      assert.ok(gw.log.securityEvents.some((e) => e.event === 'auth.session_renewal_reissued' && e.family === family && e.user === c.user));
      assert.equal(revoked(family), false, 'the family is not revoked');

      // And the session goes on: the new cookies work, and renew again once the access cookie goes.
      assert.equal((await c.send({ path: '/again' })).status, 200);
      c.jar.cookies.delete(ACCESS_COOKIE);
      await pastGrace();
      const renewed = await c.send({ path: '/renewed-again' });
      assert.equal(renewed.status, 200);
      assert.ok(setCookieLine(renewed, REFRESH_COOKIE), 'the reissued token rotates as usual');
      assert.equal(revoked(family), false);
    });

    test('the navigation comes while the renewing long-poll is still held, past the grace: it passes (no revocation); once the poll is cancelled, the old token reissues', async () => {
      const c = await loggedIn();
      const family = await familyOf(c);
      const old = c.jar.get(REFRESH_COOKIE) as string;
      c.jar.cookies.delete(ACCESS_COOKIE);
      const poll = await heldRequest(gw, c.ip, '/api/v1/notifications/poll', c.jar.header());
      await pastGrace();
      // The navigation is sent before the browser cancels the old page's poll.
      const nav = await c.send({ path: '/navigated', html: true });
      assert.equal(nav.status, 200, nav.body.slice(0, 200));
      assert.equal(setCookieLine(nav, REFRESH_COOKIE), undefined, 'the successor is still on its way: no second one');
      assert.equal(revoked(family), false);
      poll.abort();
      assert.ok(await waitFor(() => gw.log.securityEvents.some((e) => e.event === 'auth.session_renewal_lost' && e.requestId === poll.requestId), 2_000, 10));
      // Later the access cookie expires again and the browser still has only `old`.
      c.jar.cookies.delete(ACCESS_COOKIE);
      await pastGrace();
      assert.equal(c.jar.get(REFRESH_COOKIE), old);
      const later = await c.send({ path: '/later' });
      assert.equal(later.status, 200, later.body.slice(0, 200));
      assert.ok(setCookieLine(later, REFRESH_COOKIE), 'reissued');
      assert.equal(revoked(family), false);
    });

    test('a renewal answer held past the grace (pending): the old token gets a session without a new refresh cookie; the answer then arrives and its successor works', async () => {
      const c = await loggedIn();
      const family = await familyOf(c);
      const old = c.jar.get(REFRESH_COOKIE) as string;
      c.jar.cookies.delete(ACCESS_COOKIE);
      const poll = new SessionClient(gw, HOST);
      poll.jar.cookies.set(REFRESH_COOKIE, old);
      const held = poll.send({ path: `/api/v1/notifications/poll?answer=${GRACE_MS + 900}` });
      await waitFor(() => gw.upstream.seen.some((r) => r.url.startsWith('/api/v1/notifications/poll?answer=')), 2_000, 10);
      await pastGrace();
      // The poll's answer (with the successor) has not left yet: the browser still has only `old`.
      const nav = await c.send({ path: '/while-pending', html: true });
      assert.equal(nav.status, 200, nav.body.slice(0, 200));
      assert.ok(setCookieLine(nav, ACCESS_COOKIE), 'a fresh access cookie');
      assert.equal(setCookieLine(nav, REFRESH_COOKIE), undefined, 'no second successor while the first is on its way');
      assert.equal(revoked(family), false, 'not taken for reuse');
      const answered = await held;
      assert.equal(answered.status, 200);
      const successor = setCookieLine(answered, REFRESH_COOKIE)?.value as string;
      assert.ok(successor && successor !== old, 'the poll delivered the successor');
      // The browser now renews with it, as usual; the old token after that is reuse.
      const next = await new SessionClient(gw, HOST).send({ path: '/with-successor', headers: { cookie: `${REFRESH_COOKIE}=${successor}` } });
      assert.equal(next.status, 200);
      await pastGrace();
      assert.equal(code(await c.send({ path: '/old-again', headers: { cookie: `${REFRESH_COOKIE}=${old}` } })), 'AUTH_REVOKED');
      assert.ok(revoked(family));
    });

    test('after a lost renewal, the page and its assets racing with the old refresh token all pass; one gets the new refresh cookie', async () => {
      const c = await loggedIn();
      const family = await familyOf(c);
      c.jar.cookies.delete(ACCESS_COOKIE);
      const poll = await abortedRequest(gw, c.ip, '/api/v1/notifications/poll', c.jar.header());
      assert.ok(await waitFor(() => gw.log.securityEvents.some((e) => e.event === 'auth.session_renewal_lost' && e.requestId === poll.requestId), 2_000, 10));
      await pastGrace();
      const cookie = c.jar.header();
      const answers = await Promise.all([1, 2, 3, 4].map((i) => c.send({ path: `/asset${i}`, headers: { cookie } })));
      assert.deepEqual(answers.map((r) => r.status), [200, 200, 200, 200]);
      assert.equal(answers.filter((r) => setCookieLine(r, REFRESH_COOKIE)).length, 1, 'exactly one successor');
      assert.equal(revoked(family), false);
    });

    test('a lost renewal whose answer later fails too: each lost rotation rolls back, the session survives', async () => {
      const c = await loggedIn();
      const family = await familyOf(c);
      c.jar.cookies.delete(ACCESS_COOKIE);
      for (let i = 0; i < 2; i++) {
        const poll = await abortedRequest(gw, c.ip, '/api/v1/notifications/poll', c.jar.header());
        assert.ok(await waitFor(() => gw.log.securityEvents.some((e) => e.event === 'auth.session_renewal_lost' && e.requestId === poll.requestId), 2_000, 10));
        await pastGrace();
      }
      const res = await c.send({ path: '/finally' });
      assert.equal(res.status, 200, res.body.slice(0, 200));
      assert.equal(revoked(family), false);
    });

    test('stolen: the thief used the successor, then the old refresh token is presented: the family is revoked and both are refused', async () => {
      const c = await loggedIn();
      const family = await familyOf(c);
      const stolen = c.jar.get(REFRESH_COOKIE) as string;
      const thief = new SessionClient(gw, HOST);
      thief.jar.cookies.set(REFRESH_COOKIE, stolen);
      assert.equal((await thief.send({ path: '/thief-1' })).status, 200);
      await pastGrace();
      // The thief renews again with the successor it got (the successor is used).
      thief.jar.cookies.delete(ACCESS_COOKIE);
      assert.equal((await thief.send({ path: '/thief-2' })).status, 200);
      const thiefRefresh = thief.jar.get(REFRESH_COOKIE) as string;
      const thiefAccess = thief.jar.get(ACCESS_COOKIE) as string;
      await pastGrace();

      const before = gw.upstream.seen.length;
      c.jar.cookies.delete(ACCESS_COOKIE);
      const victim = await c.send({ path: '/victim', headers: { cookie: `${REFRESH_COOKIE}=${stolen}` } });
      assert.equal(victim.status, 401);
      assert.equal(code(victim), 'AUTH_REVOKED');
      assert.ok(revoked(family), 'the family is revoked');
      for (const cookie of [`${REFRESH_COOKIE}=${thiefRefresh}`, `${ACCESS_COOKIE}=${thiefAccess}`, `${REFRESH_COOKIE}=${stolen}`]) {
        const res = await thief.send({ path: '/thief-after', headers: { cookie } });
        assert.equal(res.status, 401, cookie.slice(0, 20));
        assert.equal(code(res), 'AUTH_REVOKED');
      }
      assert.equal(gw.upstream.seen.length, before, 'nothing reached the upstream');
    });

    test('a renewal whose answer was delivered, then the old refresh token after the grace: revoked, as before', async () => {
      const c = await loggedIn();
      const family = await familyOf(c);
      const old = c.jar.get(REFRESH_COOKIE) as string;
      c.jar.cookies.delete(ACCESS_COOKIE);
      assert.equal((await c.send({ path: '/renew' })).status, 200);
      const current = c.jar.get(REFRESH_COOKIE) as string;
      await pastGrace();
      const before = gw.upstream.seen.length;
      const replay = await c.send({ path: '/replay', headers: { cookie: `${REFRESH_COOKIE}=${old}` } });
      assert.equal(code(replay), 'AUTH_REVOKED');
      assert.ok(revoked(family));
      assert.equal(code(await c.send({ path: '/current', headers: { cookie: `${REFRESH_COOKIE}=${current}` } })), 'AUTH_REVOKED');
      assert.equal(gw.upstream.seen.length, before, 'nothing reached the upstream');
    });

    test('a renewal cut after its response headers left (a stream aborted mid-body) counts as delivered: the old token is reuse', async () => {
      const c = await loggedIn();
      const family = await familyOf(c);
      const old = c.jar.get(REFRESH_COOKIE) as string;
      c.jar.cookies.delete(ACCESS_COOKIE);
      const cut = await abortedRequest(gw, c.ip, '/stream', c.jar.header(), true);
      assert.ok(cut.headers?.['set-cookie']?.some((l) => l.startsWith(`${REFRESH_COOKIE}=`)), 'the new refresh cookie did reach the client');
      await pastGrace();
      assert.equal(gw.log.securityEvents.some((e) => e.event === 'auth.session_renewal_lost' && e.requestId === cut.requestId), false);
      const before = gw.upstream.seen.length;
      const replay = await c.send({ path: '/replay', headers: { cookie: `${REFRESH_COOKIE}=${old}` } });
      assert.equal(code(replay), 'AUTH_REVOKED');
      assert.ok(revoked(family));
      assert.equal(gw.upstream.seen.length, before, 'nothing reached the upstream');
    });
  });
}

// The store-level edge the gateway cannot produce on its own: a successor marked undelivered
// that was nevertheless used (the mark was wrong, or a thief raced it). Use wins: it is theft.
describe('RefreshTokens: an undelivered successor that was used is theft', () => {
  let redis: Redis;
  before(() => {
    redis = new Redis(SHARED_REDIS_URL);
  });
  after(() => redis.disconnect());

  for (const [name, kv] of [
    ['redis', (): Kv => createRedisKv(redis)],
    ['memory', (): Kv => createMemoryKv()],
  ] as const) {
    test(`${name}: rotate, mark undelivered, the successor used, the old token after the grace → AUTH_REVOKED`, async () => {
      const families: string[] = [];
      const tokens = new RefreshTokens(kv(), 60_000, async (family) => void families.push(family), 100);
      const start = await tokens.start(uniq('u'), ['staff']);
      const t0 = Date.now();
      const s1 = (await tokens.rotate(start.token, t0)).token as string;
      await tokens.markUndelivered(s1);
      assert.ok((await tokens.rotate(s1, t0 + 10)).token, 'the successor rotates');
      await assert.rejects(tokens.rotate(start.token, t0 + 500), (err) => isGatewayError(err) && err.code === 'AUTH_REVOKED');
      assert.deepEqual(families, [start.record.family]);
    });

    test(`${name}: the reissue withdraws the undelivered successor, and two racing presentations get one successor`, async () => {
      const tokens = new RefreshTokens(kv(), 60_000, async () => undefined, 100);
      const start = await tokens.start(uniq('u'), ['staff']);
      const t0 = Date.now();
      const s1 = (await tokens.rotate(start.token, t0)).token as string;
      await tokens.markUndelivered(s1);
      const racing = await Promise.all([tokens.rotate(start.token, t0 + 500), tokens.rotate(start.token, t0 + 500)]);
      assert.equal(racing.filter((r) => r.token !== undefined).length, 1, 'one fresh successor, the other the grace answer');
      assert.equal(racing.filter((r) => r.reissued).length, 1);
      await assert.rejects(tokens.rotate(s1, t0 + 600), (err) => isGatewayError(err) && err.code === 'AUTH_INVALID', 'the withdrawn successor is dead');
    });

    test(`${name}: regression (review): held-and-aborted renewals on a copied token are rolled back ${MAX_REISSUES_PER_TOKEN} times, then it is reuse and the family ends`, async () => {
      // A thief with a copy of the current refresh token held a request, aborted it before its
      // headers, presented the token again, and was never caught (4 simulated hours, 180 access tokens).
      const families: string[] = [];
      const tokens = new RefreshTokens(kv(), 60_000, async (family) => void families.push(family), 100);
      const start = await tokens.start(uniq('u'), ['staff']);
      let now = Date.now();
      let lost = (await tokens.rotate(start.token, now)).token as string;
      for (let i = 0; i < MAX_REISSUES_PER_TOKEN; i++) {
        await tokens.markUndelivered(lost);
        now += 1_000;
        const again = await tokens.rotate(start.token, now);
        assert.equal(again.reissued, true, `lost renewal ${i + 1} is rolled back`);
        lost = again.token as string;
      }
      await tokens.markUndelivered(lost);
      await assert.rejects(tokens.rotate(start.token, now + 1_000), (err) => isGatewayError(err) && err.code === 'AUTH_REVOKED');
      assert.deepEqual(families, [start.record.family]);
    });
  }

  test('redis, two instances with slow writes: the old token after a lost renewal, presented to both at once, is reissued once and never revokes', async () => {
    const slow = (kv: Kv): Kv => ({ ...kv, set: async (key, value, ttl) => (await new Promise((r) => setTimeout(r, 50)), kv.set(key, value, ttl)) });
    const families: string[] = [];
    const a = new RefreshTokens(slow(createRedisKv(redis)), 60_000, async (f) => void families.push(f), 100);
    const b = new RefreshTokens(slow(createRedisKv(redis)), 60_000, async (f) => void families.push(f), 100);
    const start = await a.start(uniq('u'), ['staff']);
    const t0 = Date.now();
    const s1 = (await a.rotate(start.token, t0)).token as string;
    await b.markUndelivered(s1);
    const [ra, rb] = await Promise.allSettled([a.rotate(start.token, t0 + 500), b.rotate(start.token, t0 + 500)]);
    assert.equal(ra.status, 'fulfilled', ra.status === 'rejected' ? String(ra.reason) : '');
    assert.equal(rb.status, 'fulfilled', rb.status === 'rejected' ? String(rb.reason) : '');
    const results = [ra, rb].map((r) => (r.status === 'fulfilled' ? r.value : undefined));
    assert.equal(results.filter((r) => r?.token !== undefined).length, 1, 'one fresh successor');
    assert.deepEqual(families, [], 'no family revoked');
  });
});
