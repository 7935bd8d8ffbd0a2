import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { createHash, randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { addClient, claimsFor, ringToken, startAuthGateway, uniq, type AuthTestGateway } from '../helpers/auth-gateway.js';
import type { RequestOptions, TestResponse } from '../helpers/harness.js';
import { setCookieLine } from '../helpers/session-client.js';
import { headerOf, startRealCrmApi, type RealCrmApi, type UvicornMode } from '../helpers/real-crm-api.js';
import { waitFor } from '../helpers/wait.js';
import { deleteKeys, SHARED_REDIS_URL } from '../helpers/redis.js';
import { signBody } from '../../src/webhook/signature.js';

/**
 * The real FastAPI app (crm_api.py under uvicorn) behind a real gateway with real TLS: what a
 * client sees of its redirects, cookies, errors, uploads, streams and websockets, and what the
 * app received. Issue 12, items 1, 4 and 7, and "Real applications in the tests".
 */

const APP_SECRET = randomBytes(24).toString('hex');
const WA_ENV = { WHATSAPP_APP_SECRET: APP_SECRET, WHATSAPP_VERIFY_TOKEN: randomBytes(16).toString('hex'), WHATSAPP_QUEUE_KEY: randomBytes(32).toString('hex') };
const FAST_RETRY = 'whatsapp: { ackTimeout: 3s, retryMin: 50ms, retryMax: 200ms }';

function routes(app: RealCrmApi, webhookRoute: string, preserveHost: boolean | undefined): string {
  const host = preserveHost === undefined ? '' : `\n    preserveHost: ${preserveHost}`;
  return `
  - name: ${webhookRoute}
    host: api.test.local
    path: /webhook/whatsapp
    upstream: ${app.url}
    auth: whatsapp
    maxBody: 3mb
    timeout: 5s
    websocket: false
  - name: crm-public
    host: api.test.local
    path: /public
    upstream: ${app.url}
    auth: none
  - name: crm-api
    host: api.test.local
    upstream: ${app.url}
    auth: jwt
    roles: [api]
    timeout: 30s
    maxBody: 5mb${host}
`;
}

interface Bed {
  app: RealCrmApi;
  gw: AuthTestGateway;
  /** Host header as a browser sends it on a non-default port. */
  host: string;
  /** https://api.test.local:<gateway port> */
  origin: string;
  token: string;
  /** A valid token of a real client whose roles the route does not allow. */
  wrongRoleToken: string;
  /** A request through the gateway with the bearer token (unless `auth: false`). */
  send(opts: RequestOptions & { auth?: boolean }): Promise<TestResponse>;
  close(): Promise<void>;
}

/** `preserveHost` undefined: the route does not say, and the default applies. */
async function startBed(mode: UvicornMode, preserveHost?: boolean): Promise<Bed> {
  const app = await startRealCrmApi({ mode, env: { WHATSAPP_APP_SECRET: APP_SECRET } });
  // The webhook queue lives in Redis (the embedded store refuses with WEBHOOK_UNAVAILABLE); its
  // keys are named after the route, unique per run and deleted at the end.
  const webhookRoute = uniq('crm-webhook');
  let gw: AuthTestGateway;
  try {
    gw = await startAuthGateway({ routes: routes(app, webhookRoute, preserveHost), env: WA_ENV, extraYaml: FAST_RETRY, redis: true });
  } catch (err) {
    await app.stop();
    throw err;
  }
  const client = uniq('crm-client');
  await addClient(gw.auth, client, ['api']);
  const token = ringToken(gw.secret, claimsFor(`client:${client}`));
  const outsider = uniq('crm-outsider');
  await addClient(gw.auth, outsider, ['reports']);
  const wrongRoleToken = ringToken(gw.secret, claimsFor(`client:${outsider}`, { roles: ['reports'] }));
  const host = `api.test.local:${gw.port}`;
  return {
    app,
    gw,
    host,
    origin: `https://${host}`,
    token,
    wrongRoleToken,
    send: (opts) => gw.request({ host, ...opts, headers: { ...(opts.auth === false ? {} : { authorization: `Bearer ${token}` }), ...opts.headers } }),
    close: async () => {
      await gw.close();
      await app.stop();
      await deleteKeys(SHARED_REDIS_URL, `crmgw:{wa:${webhookRoute}}:*`);
    },
  };
}

/** The app's request log grew by nothing while `fn` ran: the gateway refused before the upstream. */
async function assertAppReceivedNothing(app: RealCrmApi, fn: () => Promise<void>): Promise<void> {
  const before = (await app.requests()).length;
  await fn();
  const seen = await app.requests();
  assert.deepEqual(seen.slice(before).map((r) => `${r.method} ${r.path}`), [], 'the app received nothing');
}

const MODES: UvicornMode[] = ['no-proxy-headers', 'default', 'recipe'];

for (const [mode, preserveHost] of MODES.flatMap((m) => [[m, undefined], [m, false]] as const)) {
  describe(`FastAPI redirects through the gateway, uvicorn ${mode}, preserveHost ${preserveHost ?? 'default'}`, () => {
    let bed: Bed;
    before(async () => {
      bed = await startBed(mode, preserveHost);
    });
    after(async () => {
      await bed?.close();
    });

    test('GET /v1/companies: the trailing-slash 307 names the public origin, never 127.0.0.1, and following it works', async () => {
      const res = await bed.send({ path: '/v1/companies' });
      assert.equal(res.status, 307, res.body);
      assert.equal(res.headers.location, `${bed.origin}/v1/companies/`);
      assert.doesNotMatch(JSON.stringify(res.headers), /127\.0\.0\.1/, 'no internal address in any header');
      const followed = await bed.send({ path: new URL(String(res.headers.location)).pathname });
      assert.equal(followed.status, 200, followed.body);
      assert.equal(followed.json<{ name: string }[]>()[0]?.name, 'Acme SL');
    });

    test('a url_for() redirect names the public origin', async () => {
      const res = await bed.send({ path: '/v1/companies/by-vat/ESB12345678' });
      assert.equal(res.status, 303, res.body);
      assert.equal(res.headers.location, `${bed.origin}/v1/companies/1`);
    });

    test('the app sees the public Host and the gateway’s forwarding headers, not the client’s forged ones', async () => {
      const res = await bed.send({
        path: '/v1/echo/headers',
        headers: { 'x-forwarded-host': 'evil.test', 'x-forwarded-proto': 'http', forwarded: 'for=6.6.6.6;host=evil.test;proto=http', 'x-gateway-user': 'admin' },
      });
      assert.equal(res.status, 200, res.body);
      const seen = res.json<{ host: string; url: string; scheme: string; x_forwarded: Record<string, string>; forwarded: string[]; x_gateway: Record<string, string> }>();
      if (preserveHost === false) assert.equal(seen.host, `127.0.0.1:${bed.app.port}`, 'preserveHost: false sends the upstream’s own Host');
      else assert.equal(seen.host, bed.host, 'preserveHost is the default: the app sees the public Host');
      assert.equal(seen.x_forwarded['x-forwarded-host'], bed.host);
      assert.equal(seen.x_forwarded['x-forwarded-proto'], 'https');
      assert.equal(seen.x_forwarded['x-forwarded-port'], String(bed.gw.port));
      assert.equal(seen.forwarded.length, 1);
      assert.match(seen.forwarded[0] ?? '', /^for=("?)[^;,]+\1;host="?api\.test\.local:\d+"?;proto=https$/);
      assert.doesNotMatch(JSON.stringify(seen), /evil\.test|6\.6\.6\.6/);
      assert.match(seen.x_gateway['x-gateway-user'] ?? '', /^client:crm-client-/);
      // What Starlette builds URLs from, per mode.
      if (mode === 'no-proxy-headers') assert.equal(seen.scheme, 'http');
      else assert.equal(seen.scheme, 'https', 'uvicorn trusts X-Forwarded-Proto from the gateway');
    });
  });
}

describe('the real FastAPI app behind the gateway (uvicorn with the docs/applications.md recipe)', () => {
  let bed: Bed;
  before(async () => {
    bed = await startBed('recipe');
  });
  after(async () => {
    await bed?.close();
  });

  test('FastAPI’s own cookies become host-only and Secure: Domain=127.0.0.1 dropped, the plain one kept', async () => {
    const res = await bed.send({ path: '/v1/session' });
    assert.equal(res.status, 200, res.body);
    const pref = setCookieLine(res, 'crm_pref');
    const plain = setCookieLine(res, 'crm_plain');
    assert.ok(pref && plain, JSON.stringify(res.headers['set-cookie']));
    assert.equal(pref.value, 'lang-es');
    assert.equal(pref.attrs.has('domain'), false, 'host-only');
    assert.ok(pref.attrs.has('secure') && pref.attrs.has('httponly'));
    assert.equal(pref.attrs.get('path'), '/');
    assert.equal(plain.attrs.has('domain'), false);
    assert.ok(plain.attrs.has('secure'), 'Secure on HTTPS');
  });

  test('hostile: a Set-Cookie for the parent domain of the public host is made host-only', async () => {
    for (const domain of ['test.local', '.test.local', 'api.test.local', 'evil.test']) {
      const res = await bed.send({ path: `/v1/session?domain=${encodeURIComponent(domain)}` });
      assert.equal(res.status, 200);
      const pref = setCookieLine(res, 'crm_pref');
      // Host-only or dropped; never a cookie the browser would share with sibling hosts.
      if (pref) assert.equal(pref.attrs.has('domain'), false, `Domain=${domain} is dropped: ${JSON.stringify(res.headers['set-cookie'])}`);
      assert.doesNotMatch(String(res.headers['set-cookie']), /domain=/i);
    }
  });

  test('Location, Content-Location and Refresh naming the upstream (its IP or localhost) are rewritten', async () => {
    const upstreamNames = [`http://127.0.0.1:${bed.app.port}`, `https://127.0.0.1:${bed.app.port}`, `http://localhost:${bed.app.port}`];
    for (const base of upstreamNames) {
      const to = `${base}/v1/companies/?page=2#top`;
      const loc = await bed.send({ path: `/v1/redirect?to=${encodeURIComponent(to)}` });
      assert.equal(loc.status, 302);
      assert.equal(loc.headers.location, `${bed.origin}/v1/companies/?page=2#top`, `Location ${to}`);
      const cl = await bed.send({ path: `/v1/redirect?header=content-location&to=${encodeURIComponent(to)}` });
      assert.equal(cl.headers['content-location'], `${bed.origin}/v1/companies/?page=2#top`, `Content-Location ${to}`);
      const refresh = await bed.send({ path: `/v1/redirect?header=refresh&to=${encodeURIComponent(to)}` });
      assert.match(String(refresh.headers.refresh), new RegExp(`^0; ?url=${bed.origin.replace(/\./g, '\\.')}/v1/companies/\\?page=2#top$`, 'i'), `Refresh ${to}`);
    }
  });

  test('hostile: a Location naming a look-alike host, another port or another site passes untouched', async () => {
    const otherPort = bed.app.port === 65535 ? 65534 : bed.app.port + 1;
    const untouched = [
      `http://127.0.0.1.evil.test:${bed.app.port}/v1/companies/`,
      `https://127.0.0.1.evil.test/v1/companies/`,
      `http://127.0.0.1:${otherPort}/v1/companies/`,
      `http://evil.test/127.0.0.1:${bed.app.port}/`,
      `http://127.0.0.1:${bed.app.port}@evil.test/`,
      'https://login.example.org/sso?next=http://127.0.0.1/',
      '/v1/companies/?relative=1',
      '../up',
    ];
    for (const to of untouched) {
      const res = await bed.send({ path: `/v1/redirect?to=${encodeURIComponent(to)}` });
      assert.equal(res.status, 302, to);
      assert.equal(res.headers.location, to, `${to} passes untouched`);
    }
  });

  test('Server: uvicorn (and any banner) does not reach the client', async () => {
    const direct = await fetch(`${bed.app.url}/public/hello`);
    assert.equal(direct.headers.get('server'), 'uvicorn', 'the app does send its banner');
    for (const path of ['/public/hello', '/v1/companies/']) {
      const res = await bed.send({ path });
      assert.equal(res.status, 200);
      assert.equal(res.headers.server, undefined, `${path}: ${String(res.headers.server)}`);
      assert.equal(res.headers['x-powered-by'], undefined);
    }
  });

  test('FastAPI’s own 422 body passes byte for byte', async () => {
    const body = JSON.stringify({ name: 'x', vat: 'not-a-vat', employees: -3 });
    const direct = await fetch(`${bed.app.url}/v1/contacts/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    const expected = await direct.text();
    assert.equal(direct.status, 422);
    const res = await bed.send({ method: 'POST', path: '/v1/contacts/', headers: { 'content-type': 'application/json' }, body });
    assert.equal(res.status, 422);
    assert.equal(res.body, expected);
    assert.equal(res.headers['content-type'], 'application/json');
    assert.deepEqual(
      res.json<{ detail: { loc: string[] }[] }>().detail.map((d) => d.loc.join('.')),
      ['body.name', 'body.vat', 'body.employees'],
    );
  });

  test('a multipart upload arrives byte-exact (size and sha256 computed by the app)', async () => {
    const file = randomBytes(1_500_000);
    const boundary = `----crm${randomBytes(8).toString('hex')}`;
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\npresupuesto ñ\r\n`),
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="scan.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`),
      file,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    const res = await bed.send({ method: 'POST', path: '/v1/attachments/', headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, body });
    assert.equal(res.status, 200, res.body);
    const got = res.json<{ size: number; sha256: string; filename: string; note: string }>();
    assert.equal(got.size, file.length);
    assert.equal(got.sha256, createHash('sha256').update(file).digest('hex'));
    assert.equal(got.filename, 'scan.bin');
    assert.equal(got.note, 'presupuesto ñ');
  });

  test('a StreamingResponse arrives incrementally: the first chunk before the last one is produced', async () => {
    const run = uniq('stream');
    const chunks = 5;
    const arrivals: number[] = [];
    const text = await new Promise<string>((resolve, reject) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          port: bed.gw.port,
          path: `/v1/reports/stream?run=${run}&chunks=${chunks}&interval_ms=400`,
          ca: bed.gw.ca,
          servername: 'api.test.local',
          headers: { host: bed.host, authorization: `Bearer ${bed.token}` },
          agent: false,
        },
        (res) => {
          let all = '';
          res.on('data', (c: Buffer) => {
            arrivals.push(Date.now());
            all += c.toString();
          });
          res.on('end', () => resolve(all));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end();
    });
    assert.equal(text.trim().split('\n').length, chunks);
    const produced = await bed.app.direct<number[]>(`/_test/streams/${run}`);
    assert.equal(produced.length, chunks);
    const first = arrivals[0] ?? Infinity;
    const last = produced[chunks - 1] ?? 0;
    assert.ok(first < last, `first chunk arrived ${Math.round(last - first)} ms before the last was produced (arrivals ${arrivals.length})`);
    assert.ok(arrivals.length >= 3, `the stream came in pieces, not one buffered body (${arrivals.length} reads)`);
  });

  test('the websocket echo works through the gateway with a bearer token', async () => {
    const ws = new WebSocket(`wss://127.0.0.1:${bed.gw.port}/v1/ws/echo`, {
      headers: { host: bed.host, authorization: `Bearer ${bed.token}` },
      ca: bed.gw.ca,
      servername: 'api.test.local',
    } as WebSocket.ClientOptions & { servername: string });
    const messages: string[] = [];
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no echo within 5 s: ${JSON.stringify(messages)}`)), 5000);
      ws.on('message', (d) => {
        messages.push(d.toString());
        if (messages.length === 1) ws.send('hola a través del gateway');
        else {
          clearTimeout(timer);
          resolve();
        }
      });
      ws.on('error', reject);
      ws.on('unexpected-response', (_r, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    });
    await done;
    ws.close(1000);
    const hello = JSON.parse(messages[0] ?? '{}') as { hello: string; path: string };
    assert.equal(hello.path, '/v1/ws/echo');
    assert.equal(hello.hello, bed.host, 'the app sees the public Host on the websocket too');
    assert.equal(messages[1], 'hola a través del gateway');
  });

  test('a signed WhatsApp webhook reaches the app, which checks Meta’s signature itself', async () => {
    const id = `wamid.${randomBytes(6).toString('hex')}`;
    const body = Buffer.from(
      JSON.stringify({
        object: 'whatsapp_business_account',
        entry: [{ id: '1', changes: [{ field: 'messages', value: { messaging_product: 'whatsapp', messages: [{ from: '34600111222', id, timestamp: String(Math.floor(Date.now() / 1000)), type: 'text', text: { body: 'hola' } }] } }] }],
      }),
    );
    const res = await bed.send({ method: 'POST', path: '/webhook/whatsapp', auth: false, headers: { 'content-type': 'application/json', 'x-hub-signature-256': signBody(body, APP_SECRET) }, body });
    assert.equal(res.status, 200, res.body);
    type Received = { ids: string[]; sha256: string; verified_header: string; signature_ok: boolean };
    let got: Received | undefined;
    await waitFor(async () => {
      got = (await bed.app.direct<Received[]>('/_test/webhooks')).find((w) => w.ids.includes(id));
      return got !== undefined;
    }, 'the webhook delivered to the app');
    assert.equal(got?.sha256, createHash('sha256').update(body).digest('hex'), 'exact bytes');
    assert.equal(got?.verified_header, 'sha256');
    assert.equal(got?.signature_ok, true);
  });

  test('hostile: refused requests never reach the app', async () => {
    await assertAppReceivedNothing(bed.app, async () => {
      const none = await bed.send({ path: '/v1/companies/', auth: false });
      assert.equal(none.status, 401);
      assert.equal(none.json<{ error: { code: string } }>().error.code, 'AUTH_REQUIRED');
      const bad = await bed.send({ path: '/v1/companies/', headers: { authorization: `Bearer ${bed.token.slice(0, -4)}AAAA` } });
      assert.equal(bad.status, 401);
      const wrongRole = await bed.send({ path: '/v1/companies/', headers: { authorization: `Bearer ${ringToken(bed.gw.secret, claimsFor('client:nobody', { roles: ['other'] }))}` } });
      assert.ok(wrongRole.status === 401 || wrongRole.status === 403, String(wrongRole.status));
      const traversal = await bed.send({ path: '/public/..%2f_test/requests' });
      assert.equal(traversal.status, 400);
      const forgedWebhook = Buffer.from('{"object":"whatsapp_business_account","entry":[]}');
      const wa = await bed.send({ method: 'POST', path: '/webhook/whatsapp', auth: false, headers: { 'content-type': 'application/json', 'x-hub-signature-256': signBody(forgedWebhook, 'not the secret') }, body: forgedWebhook });
      assert.ok(wa.status === 401 || wa.status === 403, `forged webhook: ${wa.status}`);
      const ws = await bed.send({ path: '/v1/ws/echo', auth: false, headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': randomBytes(16).toString('base64') } });
      assert.equal(ws.status, 401);
    });
    // What did pass is in the app's own log, joined to the gateway's by the request id.
    const res = await bed.send({ path: '/public/hello' });
    const last = (await bed.app.requests()).at(-1);
    assert.equal(last?.path, '/public/hello');
    assert.equal(last && headerOf(last, 'x-request-id'), res.headers['x-request-id']);
  });

  test('every 401 says how to authenticate: Bearer realm, error="invalid_token"; a role refusal says insufficient_scope (RFC 6750 §3)', async () => {
    const none = await bed.send({ path: '/v1/companies/', auth: false });
    assert.match(String(none.headers['www-authenticate']), /^Bearer realm="[^"]+"/);
    const now = Math.floor(Date.now() / 1000);
    for (const [what, token] of [
      ['tampered', `${bed.token.slice(0, -4)}AAAA`],
      ['expired', ringToken(bed.gw.secret, claimsFor('client:nobody', { iat: now - 120, exp: now - 60 }))],
    ] as const) {
      const res = await bed.send({ path: '/v1/companies/', headers: { authorization: `Bearer ${token}` } });
      assert.equal(res.status, 401, what);
      assert.match(String(res.headers['www-authenticate']), /^Bearer realm="[^"]+", error="invalid_token"/, what);
    }
    const wrongRole = await bed.send({ path: '/v1/companies/', headers: { authorization: `Bearer ${bed.wrongRoleToken}` } });
    assert.equal(wrongRole.status, 403, wrongRole.body);
    assert.match(String(wrongRole.headers['www-authenticate']), /^Bearer realm="[^"]+", error="insufficient_scope"/);
  });
});
