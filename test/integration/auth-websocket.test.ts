import { after, before, test, describe } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { ACCESS_COOKIE, REFRESH_COOKIE } from '../../src/auth/cookies.js';
import { addClient, addUser, claimsFor, ringToken, startAuthGateway, uniq, waitFor, type AuthTestGateway } from '../helpers/auth-gateway.js';
import { startReviewedAuthGateway, signedInStaff } from '../helpers/reviewed-auth-gateway.js';
import { SessionClient } from '../helpers/session-client.js';

const ROUTES = `
  - name: api
    host: api.test.local
    upstream: UPSTREAM
    auth: jwt
    roles: [api]
  - name: nocodb
    host: nocodb.test.local
    upstream: UPSTREAM
    auth: session
    roles: [staff]
`;
const ENV = { TRUSTED_PROXIES: '127.0.0.1' };
const PASSWORD = 'correct horse battery staple';

let gw: AuthTestGateway;
let second: AuthTestGateway;
let sub: string;

before(async () => {
  gw = await startAuthGateway({ routes: ROUTES, redis: true, env: ENV });
  second = await startAuthGateway({ routes: ROUTES, redis: true, env: ENV, secret: gw.secret, dataDir: gw.dataDir, upstream: gw.upstream });
  const client = uniq('ws-client');
  sub = `client:${client}`;
  await addClient(gw.auth, client, ['api']);
});

after(async () => {
  await second?.close();
  await gw?.close();
});

interface Opened {
  ws: WebSocket;
  /** The upstream's first message: what it received in the upgrade. */
  hello: { headers: Record<string, string> };
  closed: Promise<number>;
}

/** Opens a websocket through a gateway; resolves when open (and the echo greeted) or rejects with the HTTP status. */
function connect(g: AuthTestGateway, headers: Record<string, string>, host = 'api.test.local', path = '/ws'): Promise<Opened> {
  return new Promise((resolve, reject) => {
    // `servername` reaches tls.connect (SNI = Host) though ws's types do not list it.
    const options: WebSocket.ClientOptions & { servername: string } = { headers: { host, ...headers }, servername: host, ca: g.ca };
    const ws = new WebSocket(`wss://127.0.0.1:${g.port}${path}`, options);
    const closed = new Promise<number>((r) => ws.once('close', () => r(Date.now())));
    ws.once('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode, body }));
      });
    });
    ws.once('error', reject);
    ws.once('message', (data) => resolve({ ws, hello: JSON.parse(data.toString()) as Opened['hello'], closed }));
  });
}

async function refusedUpgrade(g: AuthTestGateway, headers: Record<string, string>, status: number, code: string, host?: string): Promise<void> {
  const before = g.upstream.seen.length;
  await assert.rejects(connect(g, headers, host), (err: Error & { status?: number; body?: string }) => {
    assert.equal(err.status, status, err.message);
    assert.equal((JSON.parse(err.body ?? '{}') as { error?: { code?: string } }).error?.code, code);
    return true;
  });
  assert.equal(g.upstream.seen.length, before, 'nothing reached the upstream');
}

const bearer = (t: string): Record<string, string> => ({ authorization: `Bearer ${t}` });

/** Sends a message and waits for its echo: the socket is really proxied end to end. */
async function echo(ws: WebSocket, text: string): Promise<string> {
  const reply = new Promise<string>((r) => ws.once('message', (d) => r(d.toString())));
  ws.send(text);
  return reply;
}

test('a websocket upgrade without a token is refused with 401 AUTH_REQUIRED', async () => {
  await refusedUpgrade(gw, {}, 401, 'AUTH_REQUIRED');
});

test('a websocket upgrade with an invalid, expired or unsigned token is refused', async () => {
  const now = Math.floor(Date.now() / 1000);
  await refusedUpgrade(gw, bearer(ringToken(gw.secret, claimsFor(sub, { iat: now - 120, exp: now - 60 }))), 401, 'AUTH_EXPIRED');
  await refusedUpgrade(gw, bearer(`${ringToken(gw.secret, claimsFor(sub)).slice(0, -3)}AAA`), 401, 'AUTH_INVALID');
  await refusedUpgrade(gw, bearer(ringToken(gw.secret, claimsFor(sub, { roles: ['other'] }))), 403, 'ROLE_FORBIDDEN');
});

test('a websocket upgrade from a foreign Origin is refused even with a valid token', async () => {
  await refusedUpgrade(gw, { ...bearer(gw.auth.tokens.issue({ sub, roles: ['api'], ttlMs: 60_000, typ: 'access' }).token), origin: 'https://evil.example' }, 403, 'CORS_ORIGIN_DENIED');
});

test('with a valid bearer token the websocket is proxied, with identity headers and without the token', async () => {
  const { token, claims } = gw.auth.tokens.issue({ sub, roles: ['api'], ttlMs: 60_000, typ: 'access' });
  const { ws, hello } = await connect(gw, { ...bearer(token), origin: 'https://api.test.local' });
  try {
    assert.equal(hello.headers['x-gateway-user'], sub);
    assert.equal(hello.headers['x-gateway-token-id'], claims.jti);
    assert.equal(hello.headers.authorization, undefined);
    assert.equal(await echo(ws, 'ping'), 'ping');
  } finally {
    ws.close();
  }
});

test('the socket is closed when its token is revoked on the same instance', async () => {
  const { token, claims } = gw.auth.tokens.issue({ sub, roles: ['api'], ttlMs: 60_000, typ: 'access' });
  const { ws, closed } = await connect(gw, bearer(token));
  assert.equal(await echo(ws, 'before'), 'before');
  const t0 = Date.now();
  await gw.auth.revocations.revoke(claims.jti, claims.exp);
  const at = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(-1), 2_000))]);
  assert.ok(at > 0, 'closed within 2 s of the revocation');
  assert.ok(at - t0 < 2_000);
  // And a new upgrade with it is refused.
  await refusedUpgrade(gw, bearer(token), 401, 'AUTH_REVOKED');
});

test('the socket is closed when its token is revoked on a second instance (Redis pub/sub)', async () => {
  const { token, claims } = gw.auth.tokens.issue({ sub, roles: ['api'], ttlMs: 60_000, typ: 'access' });
  const { ws, closed } = await connect(second, bearer(token));
  assert.equal(await echo(ws, 'hello'), 'hello');
  await gw.auth.revocations.revoke(claims.jti, claims.exp);
  const at = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(-1), 3_000))]);
  assert.ok(at > 0, 'the socket on the other instance closed within 3 s');
});

test('the socket is closed when its account is disabled (within the account re-check), an unaffected one stays open', async () => {
  const client = uniq('ws-disabled');
  const victim = `client:${client}`;
  await addClient(gw.auth, client, ['api']);
  const mine = gw.auth.tokens.issue({ sub: victim, roles: ['api'], ttlMs: 60_000, typ: 'access' });
  const other = gw.auth.tokens.issue({ sub, roles: ['api'], ttlMs: 60_000, typ: 'access' });
  const a = await connect(gw, bearer(mine.token));
  const b = await connect(gw, bearer(other.token));
  try {
    assert.equal(await echo(a.ws, 'before'), 'before');
    const t0 = Date.now();
    // As `clients disable` does, in another process: the store changes, nothing is revoked.
    await gw.auth.store.updateClient(client, { disabled: true });
    // Account state is cached 5 s and re-checked every 5 s: closed within about 10 s (15 s of slack for a busy machine).
    const at = await Promise.race([a.closed, new Promise<number>((r) => setTimeout(() => r(-1), 15_000))]);
    assert.ok(at > 0, 'closed within 15 s of the account being disabled');
    process.stdout.write(`# websocket of a disabled account closed ${at - t0} ms after the change\n`);
    assert.equal(await echo(b.ws, 'still here'), 'still here', 'another account keeps its websocket');
    await refusedUpgrade(gw, bearer(mine.token), 401, 'AUTH_DISABLED');
  } finally {
    a.ws.close();
    b.ws.close();
  }
});

test('the socket is closed when its token expires (a 2 s token)', async () => {
  const issuedAt = Date.now();
  const { token, claims } = gw.auth.tokens.issue({ sub, roles: ['api'], ttlMs: 2_000, typ: 'access' });
  const { ws, closed } = await connect(gw, bearer(token));
  assert.equal(await echo(ws, 'alive'), 'alive');
  const at = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(-1), 4_000))]);
  assert.ok(at > 0, 'closed by the gateway');
  assert.ok(at >= claims.exp * 1000 - 50, `not before the expiry (closed ${at - claims.exp * 1000} ms after exp)`);
  assert.ok(at - issuedAt < 3_500, `closed ${at - issuedAt} ms after issue`);
});

test('a session websocket: opened with the session cookie, closed on logout-style revocation; an expired session cannot renew over an upgrade', async () => {
  const user = uniq('ws-staff');
  await addUser(gw.auth, user, PASSWORD, ['staff']);
  const c = new SessionClient(gw, 'nocodb.test.local');
  await c.login(user, PASSWORD);
  const cookie = c.jar.header();
  const { ws, hello, closed } = await connect(gw, { cookie, origin: 'https://nocodb.test.local' }, 'nocodb.test.local');
  assert.equal(hello.headers['x-gateway-user'], user);
  assert.equal(hello.headers['x-gateway-auth'], 'session');
  assert.doesNotMatch(hello.headers.cookie ?? '', /__Host-crmgw/);
  // Cross-site websocket hijacking: the same cookie from a foreign page is refused.
  await refusedUpgrade(gw, { cookie, origin: 'https://evil.example' }, 403, 'CORS_ORIGIN_DENIED', 'nocodb.test.local');
  await refusedUpgrade(gw, { cookie, origin: 'https://api.test.local' }, 403, 'CORS_ORIGIN_DENIED', 'nocodb.test.local');
  const claims = await gw.auth.tokens.verify(c.jar.get(ACCESS_COOKIE) as string);
  await gw.auth.revocations.revoke(claims.jti, claims.exp);
  assert.ok((await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(-1), 2_000))])) > 0, 'closed on revocation');
  ws.terminate();

  // Only the refresh cookie: an upgrade cannot set cookies, so it is refused rather than renewed.
  const other = uniq('ws-staff');
  await addUser(gw.auth, other, PASSWORD, ['staff']);
  const c2 = new SessionClient(gw, 'nocodb.test.local');
  await c2.login(other, PASSWORD);
  await refusedUpgrade(gw, { cookie: `${REFRESH_COOKIE}=${c2.jar.get(REFRESH_COOKIE) as string}` }, 401, 'AUTH_EXPIRED', 'nocodb.test.local');
});

test('after a revocation closes a socket, the upstream side of it is closed too', async () => {
  const { token, claims } = gw.auth.tokens.issue({ sub, roles: ['api'], ttlMs: 60_000, typ: 'access' });
  const count = (): Promise<number> => new Promise((r) => gw.upstream.server.getConnections((_e, n) => r(n)));
  const base = await count();
  const { ws, closed } = await connect(gw, bearer(token));
  assert.equal(await echo(ws, 'x'), 'x');
  assert.ok((await count()) > base);
  await gw.auth.revocations.revoke(claims.jti, claims.exp);
  await closed;
  assert.ok(await waitFor(async () => (await count()) <= base, 3_000), 'the upstream connection is closed within 3 s');
});

// A gateway of its own (session and bearer routes, a short refresh reuse grace): from the
// adversarial review of src/auth, where each test failed before its fix.
describe('websocket origins (from the adversarial review)', () => {
  let gw: AuthTestGateway;

  before(async () => {
    gw = await startReviewedAuthGateway();
  });

  after(async () => {
    await gw?.close();
  });

  const loggedIn = (): Promise<SessionClient & { user: string }> => signedInStaff(gw);

  /** Opens a websocket; resolves on the upstream's greeting, rejects with the refusal's status and body. */
  function connect(headers: Record<string, string>, host: string): Promise<WebSocket> {
    return new Promise((resolve, reject) => {
      const options: WebSocket.ClientOptions & { servername: string } = { headers: { host, ...headers }, servername: host, ca: gw.ca };
      const ws = new WebSocket(`wss://127.0.0.1:${gw.port}/ws`, options);
      ws.once('unexpected-response', (_req, res) => {
        const chunks: Buffer[] = [];
        res.on('data', (b: Buffer) => chunks.push(b));
        res.on('end', () => reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode, body: Buffer.concat(chunks).toString() })));
      });
      ws.once('error', reject);
      ws.once('message', () => resolve(ws));
    });
  }

  test('cross-site websocket hijacking: a session websocket from a CORS-listed foreign origin is 403 CSRF_REJECTED, upstream untouched', async () => {
    const c = await loggedIn();
    const cookie = c.jar.header();
    // The route's own host opens it.
    const own = await connect({ cookie, origin: 'https://nocodb.test.local' }, 'nocodb.test.local');
    own.close();
    // CORS lists these origins (an exact one, and a bare host on any port and scheme), but a
    // websocket is not bound by CORS: with the session cookie it must come from the route's host.
    for (const origin of ['https://other.test.local', 'http://localhost:5173', undefined]) {
      const before = gw.upstream.seen.length;
      await assert.rejects(connect({ cookie, ...(origin ? { origin } : {}) }, 'nocodb.test.local'), (err: Error & { status?: number; body?: string }) => {
        assert.equal(err.status, 403, `${String(origin)}: ${err.message}`);
        assert.equal((JSON.parse(err.body ?? '{}') as { error?: { code?: string } }).error?.code, 'CSRF_REJECTED', String(origin));
        return true;
      });
      assert.equal(gw.upstream.seen.length, before, `${String(origin)}: nothing reached the upstream`);
    }
  });

  test('a bearer websocket needs no Origin (bearer tokens are not sent by browsers on their own)', async () => {
    const client = uniq('review-client');
    await addClient(gw.auth, client, ['api']);
    const { token } = gw.auth.tokens.issue({ sub: `client:${client}`, roles: ['api'], ttlMs: 60_000, typ: 'access' });
    const ws = await connect({ authorization: `Bearer ${token}` }, 'api.test.local');
    ws.close();
  });
});


