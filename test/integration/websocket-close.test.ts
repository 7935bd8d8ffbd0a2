import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { addClient, claimsFor, ringToken, startAuthGateway, uniq, waitFor, type AuthTestGateway } from '../helpers/auth-gateway.js';
import { redactFields } from '../../src/audit/redact/redact.js';

/**
 * Issue 12 item 6: a websocket the gateway ends gets a close frame that says why (1008 with the
 * error code as reason, 1001 on shutdown) instead of a dropped connection (1006), without
 * corrupting a frame in flight, and the upstream is closed too. Browser clients authenticate
 * with the `bearer.<jwt>` subprotocol or a single-use ticket (`?ws_token=`).
 */

/** 1 MB frames: a cut almost always lands while one is in flight. */
const FRAME = 1024 * 1024;

interface StreamUpstream {
  url: string;
  /** Close code and reason each upstream socket saw, in order. */
  closes: { code: number; reason: string }[];
  upgrades: number;
  close(): Promise<void>;
}

/**
 * A websocket upstream that greets with the headers it got; on `stream` it sends 1 MB binary
 * frames back to back (message i: FRAME + i bytes, all i % 251), each after the last was written.
 */
async function streamUpstream(): Promise<StreamUpstream> {
  const server = http.createServer((_req, res) => res.writeHead(404).end());
  const wss = new WebSocketServer({ server });
  const closes: { code: number; reason: string }[] = [];
  const up: StreamUpstream = {
    url: '',
    closes,
    upgrades: 0,
    close: () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate();
        wss.close();
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
  wss.on('connection', (ws, req) => {
    up.upgrades++;
    ws.send(JSON.stringify({ headers: req.headers }));
    ws.on('close', (code, reason) => closes.push({ code, reason: reason.toString() }));
    ws.on('message', (data) => {
      if (data.toString() !== 'stream') {
        ws.send(data.toString());
        return;
      }
      let i = 0;
      const next = (): void => {
        if (ws.readyState !== WebSocket.OPEN) return;
        const n = i++;
        ws.send(Buffer.alloc(FRAME + n, n % 251), (err) => {
          if (!err) next();
        });
      };
      next();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  up.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return up;
}

let gw: AuthTestGateway;
let stream: StreamUpstream;
let sub: string;

before(async () => {
  stream = await streamUpstream();
  const routes = `
  - name: api
    host: api.test.local
    upstream: UPSTREAM
    auth: jwt
    roles: [api]
    websocket: true
  - name: stream
    host: api.test.local
    path: /stream
    upstream: ${stream.url}
    auth: jwt
    roles: [api]
    websocket: true
  - name: other
    host: other.test.local
    upstream: UPSTREAM
    auth: jwt
    roles: [api]
    websocket: true
  - name: staff
    host: nocodb.test.local
    upstream: UPSTREAM
    auth: session
    roles: [staff]
    websocket: true
`;
  gw = await startAuthGateway({ routes, redis: true, env: { TRUSTED_PROXIES: '127.0.0.1' } });
  const client = uniq('ws-close');
  sub = `client:${client}`;
  await addClient(gw.auth, client, ['api']);
});

after(async () => {
  await gw?.close();
  await stream?.close();
});

interface Opened {
  ws: WebSocket;
  hello: { headers: Record<string, string> };
  /** Close code and reason the client saw, and whether ws reported an error (a corrupt stream) first. */
  closed: Promise<{ code: number; reason: string; error?: Error }>;
}

function connect(g: AuthTestGateway, opts: { headers?: Record<string, string>; protocols?: string[]; host?: string; path?: string } = {}): Promise<Opened> {
  const host = opts.host ?? 'api.test.local';
  return new Promise((resolve, reject) => {
    const options: WebSocket.ClientOptions & { servername: string } = { headers: { host, ...opts.headers }, servername: host, ca: g.ca };
    const ws = new WebSocket(`wss://127.0.0.1:${g.port}${opts.path ?? '/ws'}`, opts.protocols ?? [], options);
    let error: Error | undefined;
    ws.on('error', (err) => (error = err));
    const closed = new Promise<{ code: number; reason: string; error?: Error }>((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString(), ...(error ? { error } : {}) })));
    ws.once('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode, body: Buffer.concat(chunks).toString() })));
    });
    ws.once('error', reject);
    ws.once('message', (data) => resolve({ ws, hello: JSON.parse(data.toString()) as Opened['hello'], closed }));
  });
}

async function refused(g: AuthTestGateway, opts: Parameters<typeof connect>[1], status: number, code: string, upstream: () => number): Promise<void> {
  const before = upstream();
  await assert.rejects(connect(g, opts), (err: Error & { status?: number; body?: string }) => {
    assert.equal(err.status, status, err.message);
    assert.equal((JSON.parse(err.body ?? '{}') as { error?: { code?: string } }).error?.code, code);
    return true;
  });
  assert.equal(upstream(), before, 'nothing reached the upstream');
}

const seen = (): number => gw.upstream.seen.length;
const issue = (ttlMs = 60_000): { token: string; claims: { jti: string; exp: number } } => gw.auth.tokens.issue({ sub, roles: ['api'], ttlMs, typ: 'access' });
const bearer = (t: string): Record<string, string> => ({ authorization: `Bearer ${t}` });

async function echo(ws: WebSocket, text: string): Promise<string> {
  const reply = new Promise<string>((r) => ws.once('message', (d) => r(d.toString())));
  ws.send(text);
  return reply;
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, new Promise<T>((_r, reject) => setTimeout(() => reject(new Error(`${what} not within ${ms} ms`)), ms))]);
}

const upstreamConnections = (): Promise<number> => new Promise((r) => gw.upstream.server.getConnections((_e, n) => r(n)));

test('revocation closes the websocket with 1008 AUTH_REVOKED (not 1006), and the upstream connection closes too', async () => {
  const base = await upstreamConnections();
  const { token, claims } = issue();
  const { ws, closed } = await connect(gw, { headers: bearer(token) });
  assert.equal(await echo(ws, 'x'), 'x');
  await gw.auth.revocations.revoke(claims.jti, claims.exp);
  const c = await within(closed, 3_000, 'the close');
  assert.deepEqual({ code: c.code, reason: c.reason, error: c.error?.message }, { code: 1008, reason: 'AUTH_REVOKED', error: undefined });
  assert.ok(await waitFor(async () => (await upstreamConnections()) <= base, 3_000), 'the upstream connection is closed within 3 s');
  const event = (): Record<string, unknown> | undefined => gw.log.securityEvents.find((e) => e.event === 'websocket.closed' && e.tokenId === claims.jti);
  assert.ok(await waitFor(() => event() !== undefined, 3_000), 'the close is in the security log');
  assert.deepEqual([event()?.closeCode, event()?.reason, event()?.user, event()?.route], [1008, 'AUTH_REVOKED', sub, 'api']);
});

test('expiry closes the websocket with 1008 AUTH_EXPIRED', async () => {
  const { token, claims } = issue(1_500);
  const { ws, closed } = await connect(gw, { headers: bearer(token) });
  assert.equal(await echo(ws, 'alive'), 'alive');
  const c = await within(closed, 4_000, 'the close');
  assert.ok(Date.now() >= claims.exp * 1000 - 50, 'not before the expiry');
  assert.deepEqual({ code: c.code, reason: c.reason }, { code: 1008, reason: 'AUTH_EXPIRED' });
});

test('a disabled account: 1008 AUTH_DISABLED within the account re-check', async () => {
  const name = uniq('ws-close-disabled');
  await addClient(gw.auth, name, ['api']);
  const { token } = gw.auth.tokens.issue({ sub: `client:${name}`, roles: ['api'], ttlMs: 60_000, typ: 'access' });
  const { ws, closed } = await connect(gw, { headers: bearer(token) });
  assert.equal(await echo(ws, 'before'), 'before');
  await gw.auth.store.updateClient(name, { disabled: true });
  const c = await within(closed, 15_000, 'the close');
  assert.deepEqual({ code: c.code, reason: c.reason }, { code: 1008, reason: 'AUTH_DISABLED' });
});

test('a cut while the upstream streams 1 MB frames: the client reads every frame whole, then 1008; the upstream gets the close frame', async () => {
  const { token, claims } = issue();
  const { ws, closed } = await connect(gw, { headers: bearer(token), path: '/stream/x' });
  let count = 0;
  let bad: string | undefined;
  ws.on('message', (data: Buffer) => {
    const n = count++;
    if (data.length !== FRAME + n || data[0] !== n % 251 || data[data.length - 1] !== n % 251) bad ??= `message ${n}: ${data.length} bytes, first ${data[0]}`;
  });
  ws.send('stream');
  assert.ok(await waitFor(() => count >= 3, 5_000), 'frames are streaming');
  const closesBefore = stream.closes.length;
  await gw.auth.revocations.revoke(claims.jti, claims.exp);
  const c = await within(closed, 6_000, 'the close');
  assert.equal(bad, undefined, 'every frame arrived whole and in order');
  assert.equal(c.error, undefined, `no protocol error at the client (${c.error?.message})`);
  assert.deepEqual({ code: c.code, reason: c.reason }, { code: 1008, reason: 'AUTH_REVOKED' });
  assert.ok(await waitFor(() => stream.closes.length > closesBefore, 6_000), 'the upstream socket closed');
  assert.deepEqual(stream.closes.at(-1), { code: 1008, reason: 'AUTH_REVOKED' }, 'the upstream got the close frame, not a dropped connection');
  process.stdout.write(`# ${count} frames of ~1 MB read whole before the close\n`);
});

test('browser-style auth: the `bearer.<jwt>` subprotocol opens a jwt route; the upstream sees neither the token nor `bearer`', async () => {
  const { token, claims } = issue();
  const { ws, hello, closed } = await connect(gw, { protocols: ['bearer', `bearer.${token}`], headers: { origin: 'https://api.test.local' } });
  assert.equal(ws.protocol, 'bearer', 'the answer names a protocol the client offered');
  assert.equal(hello.headers['x-gateway-user'], sub);
  assert.equal(hello.headers['x-gateway-token-id'], claims.jti);
  assert.equal(hello.headers['sec-websocket-protocol'], undefined);
  assert.equal(hello.headers.authorization, undefined);
  assert.doesNotMatch(JSON.stringify(gw.upstream.seen.at(-1)), new RegExp(token.split('.')[2] as string), 'no copy of the token in what the upstream got, raw headers included');
  assert.equal(await echo(ws, 'ping'), 'ping');
  await gw.auth.revocations.revoke(claims.jti, claims.exp);
  assert.deepEqual(await within(closed, 3_000, 'the close').then((c) => [c.code, c.reason]), [1008, 'AUTH_REVOKED']);
  assert.doesNotMatch(JSON.stringify([gw.log.accessEntries, gw.log.securityEvents, gw.log.appMessages]), new RegExp(token.split('.')[2] as string), 'the token is in no log line');
});

test('with an application subprotocol beside the token, the upstream gets and answers that one', async () => {
  const { token } = issue();
  const { ws, hello } = await connect(gw, { protocols: ['chat.v1', `bearer.${token}`] });
  try {
    assert.equal(hello.headers['sec-websocket-protocol'], 'chat.v1');
    assert.equal(ws.protocol, 'chat.v1');
  } finally {
    ws.close();
  }
});

test('hostile subprotocol tokens are refused before the upstream sees anything', async () => {
  const now = Math.floor(Date.now() / 1000);
  const { token } = issue();
  await refused(gw, { protocols: ['bearer', `bearer.${token.slice(0, -3)}AAA`] }, 401, 'AUTH_INVALID', seen);
  await refused(gw, { protocols: ['bearer', 'bearer.not-a-jwt'] }, 401, 'AUTH_INVALID', seen);
  await refused(gw, { protocols: ['bearer', `bearer.${ringToken(gw.secret, claimsFor(sub, { iat: now - 120, exp: now - 60 }))}`] }, 401, 'AUTH_EXPIRED', seen);
  await refused(gw, { protocols: ['bearer', `bearer.${token}`], headers: bearer(token) }, 401, 'AUTH_AMBIGUOUS', seen);
  await refused(gw, { protocols: ['bearer', `bearer.${token}`, `bearer.${issue().token}`] }, 401, 'AUTH_AMBIGUOUS', seen);
  // Only the token: no protocol the answer could name without echoing the token.
  await refused(gw, { protocols: [`bearer.${token}`] }, 400, 'UPGRADE_NOT_ALLOWED', seen);
  // A session route takes no bearer token, in a header or a subprotocol: it is refused, never passed on.
  await refused(gw, { protocols: ['bearer', `bearer.${token}`], host: 'nocodb.test.local' }, 401, 'AUTH_INVALID', seen);
  // A revoked token stays revoked in a subprotocol.
  const r = issue();
  await gw.auth.revocations.revoke(r.claims.jti, r.claims.exp);
  await refused(gw, { protocols: ['bearer', `bearer.${r.token}`] }, 401, 'AUTH_REVOKED', seen);
  assert.doesNotMatch(JSON.stringify([gw.log.accessEntries, gw.log.securityEvents, gw.log.appMessages]), new RegExp(token.split('.')[2] as string), 'the token is in no log line');
});

test('shutdown closes open websockets with 1001 SHUTTING_DOWN when draining begins, not at the shutdown timeout', async () => {
  const own = await startAuthGateway({ routes: '  - name: api\n    host: api.test.local\n    upstream: UPSTREAM\n    auth: none\n    websocket: true\n', env: { TRUSTED_PROXIES: '127.0.0.1' } });
  let shut: Promise<void> | undefined;
  try {
    const { ws, closed } = await connect(own);
    assert.equal(await echo(ws, 'x'), 'x');
    const t0 = Date.now();
    shut = own.close();
    const c = await within(closed, 3_000, 'the close');
    assert.deepEqual({ code: c.code, reason: c.reason }, { code: 1001, reason: 'SHUTTING_DOWN' });
    await within(shut, 5_000, 'the shutdown');
    assert.ok(Date.now() - t0 < 5_000, `shutdown took ${Date.now() - t0} ms (its timeout is 10 s)`);
  } finally {
    await shut?.catch(() => undefined);
  }
});

async function ticketFor(token: string, host = 'api.test.local'): Promise<string> {
  const res = await gw.request({ method: 'POST', path: '/auth/ws-ticket', host, headers: bearer(token) });
  assert.equal(res.status, 200, res.body);
  assert.equal(res.headers['cache-control'], 'no-store');
  const body = res.json<{ ticket: string; expires_in: number }>();
  assert.equal(body.expires_in, 30);
  return body.ticket;
}

test('a single-use ticket opens a jwt route: the upstream and the access line never see it; revocation of its token still closes the socket', async () => {
  const { token, claims } = issue();
  const ticket = await ticketFor(token);
  const { ws, hello, closed } = await connect(gw, { path: `/ws?a=%7E1&ws_token=${ticket}&b=2` });
  assert.equal(hello.headers['x-gateway-user'], sub);
  assert.equal(hello.headers['x-gateway-token-id'], claims.jti, 'tracked by the token the ticket stands for');
  assert.equal(hello.headers.authorization, undefined);
  const at = gw.upstream.seen.at(-1);
  assert.equal(at?.url, '/ws?a=%7E1&b=2', 'the ticket left the query, the rest passed byte for byte');
  assert.equal(await echo(ws, 'hi'), 'hi');
  await gw.auth.revocations.revoke(claims.jti, claims.exp);
  assert.deepEqual(await within(closed, 3_000, 'the close').then((c) => [c.code, c.reason]), [1008, 'AUTH_REVOKED']);
  const logged = JSON.stringify([gw.log.accessEntries, gw.log.securityEvents, gw.log.appMessages]);
  assert.ok(!logged.includes(ticket), 'the ticket is in no log line');
  assert.ok(!logged.includes(token.split('.')[2] as string), 'nor the token');
});

test('hostile tickets: a replay, another host, a revoked token, a forged or doubled ticket are refused with 401 and reach no upstream', async () => {
  const { token } = issue();
  const ticket = await ticketFor(token);
  const { ws } = await connect(gw, { path: `/ws?ws_token=${ticket}` });
  ws.close();
  await refused(gw, { path: `/ws?ws_token=${ticket}` }, 401, 'WS_TICKET_INVALID', seen);

  const elsewhere = await ticketFor(token);
  await refused(gw, { path: `/ws?ws_token=${elsewhere}`, host: 'other.test.local' }, 401, 'WS_TICKET_INVALID', seen);
  await refused(gw, { path: `/ws?ws_token=${elsewhere}` }, 401, 'WS_TICKET_INVALID', seen);

  const r = issue();
  const revokedTicket = await ticketFor(r.token);
  await gw.auth.revocations.revoke(r.claims.jti, r.claims.exp);
  await refused(gw, { path: `/ws?ws_token=${revokedTicket}` }, 401, 'AUTH_REVOKED', seen);

  await refused(gw, { path: `/ws?ws_token=${'A'.repeat(43)}` }, 401, 'WS_TICKET_INVALID', seen);
  await refused(gw, { path: '/ws?ws_token=short' }, 401, 'WS_TICKET_INVALID', seen);
  const a = await ticketFor(token);
  const b = await ticketFor(token);
  await refused(gw, { path: `/ws?ws_token=${a}&ws_token=${b}` }, 401, 'AUTH_AMBIGUOUS', seen);
  await refused(gw, { path: `/ws?ws_token=${b}`, headers: bearer(token) }, 401, 'AUTH_AMBIGUOUS', seen);
});

test('the ticket endpoint: POST with a valid bearer token only', async () => {
  const { token, claims } = issue();
  assert.equal((await gw.request({ method: 'GET', path: '/auth/ws-ticket', host: 'api.test.local', headers: bearer(token) })).status, 405);
  const none = await gw.request({ method: 'POST', path: '/auth/ws-ticket', host: 'api.test.local' });
  assert.equal(none.status, 401);
  assert.equal(none.json<{ error: { code: string } }>().error.code, 'AUTH_REQUIRED');
  await gw.auth.revocations.revoke(claims.jti, claims.exp);
  const revoked = await gw.request({ method: 'POST', path: '/auth/ws-ticket', host: 'api.test.local', headers: bearer(token) });
  assert.equal(revoked.json<{ error: { code: string } }>().error.code, 'AUTH_REVOKED');
});

test('a ticket in a refused request\'s query is redacted in the audit log (the name ends in token)', () => {
  const line = redactFields({ path: '/ws', query: 'a=1&ws_token=abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG' });
  assert.ok(!JSON.stringify(line).includes('abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG'), JSON.stringify(line));
});
