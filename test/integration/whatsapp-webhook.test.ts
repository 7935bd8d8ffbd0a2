import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import tls from 'node:tls';
import type { Redis } from 'ioredis';
import { firstStatus, rawTlsExchange, startTestGateway, type TestGateway, type TestResponse } from '../helpers/harness.js';
import { StandInCrm } from '../helpers/crm-api.js';
import { deleteKeys, gatewayRedis, RedisServerProcess, runId, SHARED_REDIS_URL, waitFor } from '../helpers/redis.js';
import { createMemoryLogger } from '../../src/log/logger.js';
import { signBody } from '../../src/webhook/signature.js';
import { redactFields } from '../../src/audit/redact/redact.js';

const APP_SECRET = randomBytes(24).toString('hex');
const OLD_APP_SECRET = randomBytes(24).toString('hex');
const VERIFY_TOKEN = randomBytes(16).toString('hex');
const QUEUE_KEY = randomBytes(32).toString('hex');
const ENV = { WHATSAPP_APP_SECRET: APP_SECRET, WHATSAPP_VERIFY_TOKEN: VERIFY_TOKEN, WHATSAPP_QUEUE_KEY: QUEUE_KEY };
/** Short retry delays keep the test quick; nothing asserts on timing. */
const FAST_RETRY = 'whatsapp: { ackTimeout: 3s, retryMin: 50ms, retryMax: 200ms }';
const PATH = '/webhook/whatsapp';
const CUSTOMER = '34600111222';
const TEXT = 'Hola, ¿me envías el presupuesto? 😀';
const WAIT_MS = 20_000;

let redis: Redis;
const routeNames: string[] = [];

before(async () => {
  redis = await gatewayRedis(SHARED_REDIS_URL, createMemoryLogger());
});
after(async () => {
  for (const name of routeNames) await deleteKeys(SHARED_REDIS_URL, `crmgw:{wa:${name}}:*`);
  redis.disconnect();
});

function routeYaml(name: string, crm: StandInCrm, extra = ''): string {
  return `
  - name: ${name}
    host: api.test.local
    path: ${PATH}
    upstream: ${crm.url}
    auth: whatsapp
    maxBody: 3mb
    timeout: 5s${extra.includes('websocket:') ? '' : '\n    websocket: false'}${extra}
`;
}

interface Setup {
  gw: TestGateway;
  crm: StandInCrm;
  name: string;
  restart(): Promise<void>;
}

/** A gateway (real TLS, real Redis) in front of a stand-in CRM API, on a route of its own. */
async function setup(t: { after(fn: () => Promise<void>): void }, opts: { env?: Record<string, string>; yaml?: string; redis?: Redis | null; route?: string } = {}): Promise<Setup> {
  const crm = await StandInCrm.start();
  const name = runId('wa-');
  routeNames.push(name);
  const client = opts.redis === null ? undefined : (opts.redis ?? redis);
  const start = (): Promise<TestGateway> => startTestGateway(routeYaml(name, crm, opts.route), { ...ENV, ...opts.env }, opts.yaml ?? FAST_RETRY, client ? { redis: client } : {});
  const s: Setup = {
    gw: await start(),
    crm,
    name,
    async restart() {
      await s.gw.close();
      s.gw = await start();
    },
  };
  t.after(async () => {
    await s.gw.close();
    await crm.stop();
  });
  return s;
}

/** A notification as Meta writes it: non-ASCII escaped as \uXXXX, no spaces. */
function notification(id: string, opts: { text?: string; timestamp?: number; escape?: boolean } = {}): Buffer {
  const ts = String(Math.floor((opts.timestamp ?? Date.now()) / 1000));
  const json = JSON.stringify({
    object: 'whatsapp_business_account',
    entry: [
      {
        id: '102290129340398',
        changes: [
          {
            value: {
              messaging_product: 'whatsapp',
              metadata: { display_phone_number: '15550783881', phone_number_id: '106540352242922' },
              contacts: [{ profile: { name: 'Ana' }, wa_id: CUSTOMER }],
              messages: [{ from: CUSTOMER, id, timestamp: ts, text: { body: opts.text ?? TEXT }, type: 'text' }],
            },
            field: 'messages',
          },
        ],
      },
    ],
  });
  const escaped = opts.escape === false ? json : json.replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return Buffer.from(escaped, 'utf8');
}

function post(gw: TestGateway, body: Buffer, headers: Record<string, string> = {}, secret = APP_SECRET): Promise<TestResponse> {
  return gw.request({ method: 'POST', path: PATH, headers: { 'content-type': 'application/json', 'x-hub-signature-256': signBody(body, secret), ...headers }, body });
}

function webhookEvents(gw: TestGateway, outcome?: string): Record<string, unknown>[] {
  return gw.log.securityEvents.filter((e) => e.event === 'webhook.whatsapp' && (outcome === undefined || e.outcome === outcome));
}

/** A refusal with its security event; `byHandler` when the webhook itself (not an earlier step) refused. */
function assertRefused(gw: TestGateway, res: TestResponse, status: number, code: string, byHandler = true): void {
  assert.equal(res.status, status, res.body);
  assert.equal(res.json<{ error: { code: string } }>().error.code, code);
  const denied = gw.log.securityEvents.filter((e) => e.requestId === res.headers['x-request-id']);
  if (status < 500) assert.ok(denied.some((e) => e.event === 'request.denied' && e.code === code), `security event for ${code}`);
  if (byHandler) assert.ok(denied.some((e) => e.event === 'webhook.whatsapp' && e.outcome === 'rejected' && e.code === code), `webhook outcome for ${code}`);
}

describe('WhatsApp webhook: handshake', () => {
  test('the right verify token gets the challenge back as plain text; anything else 403', async (t) => {
    const { gw, crm } = await setup(t);
    const ok = await gw.request({ path: `${PATH}?hub.mode=subscribe&hub.verify_token=${VERIFY_TOKEN}&hub.challenge=1158201444` });
    assert.equal(ok.status, 200);
    assert.equal(ok.body, '1158201444');
    assert.match(String(ok.headers['content-type']), /^text\/plain/);
    assert.equal(ok.headers['x-content-type-options'], 'nosniff');

    for (const query of [
      `hub.mode=subscribe&hub.verify_token=${randomBytes(16).toString('hex')}&hub.challenge=1`,
      `hub.mode=subscribe&hub.challenge=1`,
      `hub.mode=subscribe&hub.verify_token=${VERIFY_TOKEN}&hub.challenge=%3Cscript%3Ealert(1)%3C%2Fscript%3E`,
      '',
    ]) {
      const res = await gw.request({ path: `${PATH}?${query}` });
      assertRefused(gw, res, 403, 'WEBHOOK_VERIFY_FAILED');
      assert.ok(!res.body.includes('script'));
    }
    assert.equal(crm.received.length, 0);
    // The webhook's own events never hold the verify token; the pipeline's lines carry the query,
    // and the audit logger's redaction (applied to every line it writes) hashes it there.
    assert.ok(!JSON.stringify([webhookEvents(gw), gw.log.appMessages]).includes(VERIFY_TOKEN));
    assert.ok(!JSON.stringify([...gw.log.accessEntries, ...gw.log.securityEvents].map((e) => redactFields(e))).includes(VERIFY_TOKEN));
  });
});

describe('WhatsApp webhook: verified payloads', () => {
  test('a signed payload reaches the CRM API byte for byte, with the gateway’s verification header', async (t) => {
    const { gw, crm } = await setup(t);
    const escaped = notification('wamid.ESCAPED');
    const raw = notification('wamid.RAW', { escape: false });
    assert.ok(escaped.toString().includes('\\u00bf') && raw.toString().includes('¿'));
    for (const body of [escaped, raw]) {
      const res = await post(gw, body, { 'x-gateway-webhook-verified': 'forged', 'user-agent': 'facebookexternalua' });
      assert.equal(res.status, 200, res.body);
      assert.deepEqual(res.json(), { status: 'forwarded' });
    }
    assert.equal(crm.received.length, 2);
    for (const [i, body] of [escaped, raw].entries()) {
      const got = crm.received[i];
      assert.ok(got);
      assert.ok(got.body.equals(body), 'exact bytes');
      assert.equal(got.method, 'POST');
      assert.equal(got.path, PATH);
      assert.equal(got.headers['x-gateway-webhook-verified'], 'sha256');
      assert.equal(got.headers['x-hub-signature-256'], signBody(body, APP_SECRET));
      assert.equal(got.headers['content-length'], String(body.length));
      assert.equal(got.headers['x-forwarded-proto'], 'https');
    }
    const forwarded = webhookEvents(gw, 'forwarded');
    assert.equal(forwarded.length, 2);
    assert.equal(forwarded[0]?.messages, 1);
    assert.ok(Array.isArray(forwarded[0]?.phoneHashes) && (forwarded[0].phoneHashes as string[]).length === 2);
    // No phone number and no message text in any log line.
    const logs = JSON.stringify([gw.log.securityEvents, gw.log.accessEntries, gw.log.appMessages]);
    assert.ok(!logs.includes(CUSTOMER) && !logs.includes('15550783881'), 'no phone number logged');
    assert.ok(!logs.includes('presupuesto'), 'no message body logged');
  });

  test('a payload signed with the previous app secret is accepted during a rotation', async (t) => {
    const { gw, crm } = await setup(t, { env: { WHATSAPP_APP_SECRET_PREVIOUS: OLD_APP_SECRET } });
    const res = await post(gw, notification('wamid.OLDKEY'), {}, OLD_APP_SECRET);
    assert.equal(res.status, 200, res.body);
    assert.equal(crm.received.length, 1);
    assert.equal(webhookEvents(gw, 'forwarded')[0]?.signedWith, 'previous app secret');
  });

  test('a duplicate (Meta’s retry, or the same message re-sent) is answered 200 and delivered once', async (t) => {
    const { gw, crm } = await setup(t);
    const body = notification('wamid.DUP');
    assert.deepEqual((await post(gw, body)).json(), { status: 'forwarded' });
    assert.deepEqual((await post(gw, body)).json(), { status: 'duplicate' });
    // Different bytes, same message id: still the same message.
    const again = Buffer.from(body.toString().replace('"messaging_product"', ' "messaging_product"'));
    const res = await post(gw, again);
    assert.equal(res.status, 200);
    assert.deepEqual(res.json(), { status: 'duplicate' });
    assert.equal(crm.received.length, 1);
    assert.equal(webhookEvents(gw, 'duplicate').length, 2);
  });
});

describe('WhatsApp webhook: bad input', () => {
  test('each bad input gets a clear 4xx, a security event, and nothing reaches the CRM API', async (t) => {
    const { gw, crm } = await setup(t);
    const body = notification('wamid.BAD');
    const sign = (b: Buffer | string): string => signBody(b, APP_SECRET);
    const cases: [string, () => Promise<TestResponse>, number, string, boolean?][] = [
      ['no signature', () => gw.request({ method: 'POST', path: PATH, body }), 401, 'WEBHOOK_SIGNATURE_INVALID'],
      ['malformed signature', () => gw.request({ method: 'POST', path: PATH, headers: { 'x-hub-signature-256': 'sha256=xyz' }, body }), 401, 'WEBHOOK_SIGNATURE_INVALID'],
      ['sha1 signature', () => gw.request({ method: 'POST', path: PATH, headers: { 'x-hub-signature-256': sign(body).replace('sha256', 'sha1') }, body }), 401, 'WEBHOOK_SIGNATURE_INVALID'],
      ['two signatures', () => gw.request({ method: 'POST', path: PATH, headers: { 'x-hub-signature-256': [sign(body), sign(body)] }, body }), 401, 'WEBHOOK_SIGNATURE_INVALID'],
      ['wrong secret', () => post(gw, body, {}, randomBytes(24).toString('hex')), 401, 'WEBHOOK_SIGNATURE_INVALID'],
      ['altered body', () => gw.request({ method: 'POST', path: PATH, headers: { 'x-hub-signature-256': sign(body) }, body: Buffer.from(body.toString().replace('wamid.BAD', 'wamid.BAE')) }), 401, 'WEBHOOK_SIGNATURE_INVALID'],
      ['non-JSON, signed', () => gw.request({ method: 'POST', path: PATH, headers: { 'x-hub-signature-256': sign('hello') }, body: 'hello' }), 400, 'WEBHOOK_PAYLOAD_INVALID'],
      ['JSON of another kind, signed', () => gw.request({ method: 'POST', path: PATH, headers: { 'x-hub-signature-256': sign('{"object":"page","entry":[]}') }, body: '{"object":"page","entry":[]}' }), 400, 'WEBHOOK_PAYLOAD_INVALID'],
      ['replayed 8-day-old payload, signed', () => post(gw, notification('wamid.OLD', { timestamp: Date.now() - 8 * 86_400_000 })), 400, 'WEBHOOK_STALE'],
      ['declared body over 3 MB', () => gw.request({ method: 'POST', path: PATH, headers: { 'x-hub-signature-256': sign('x') }, body: Buffer.alloc(3 * 1024 * 1024 + 1, 0x20) }), 413, 'BODY_TOO_LARGE', false],
      [
        'chunked body over 3 MB',
        () => gw.request({ method: 'POST', path: PATH, headers: { 'x-hub-signature-256': sign('x'), 'transfer-encoding': 'chunked' }, body: Buffer.alloc(3 * 1024 * 1024 + 1, 0x20) }),
        413,
        'BODY_TOO_LARGE',
      ],
      ['PUT', () => gw.request({ method: 'PUT', path: PATH, headers: { 'x-hub-signature-256': sign(body) }, body }), 405, 'METHOD_NOT_ALLOWED'],
    ];
    for (const [what, send, status, code, byHandler] of cases) {
      await t.test(what, async () => {
        const res = await send();
        assertRefused(gw, res, status, code, byHandler);
        assert.equal(crm.received.length, 0, `${what}: nothing forwarded`);
      });
    }
    assert.equal(await redis.xlen(`crmgw:{wa:${gw.config.routes[0]?.name}}:queue`), 0, 'nothing queued');
  });

  test('an optional IP allowlist refuses other addresses before the body is read', async (t) => {
    const { gw, crm } = await setup(t, { route: '\n    ipAllowlist: [157.240.0.0/16, "2a03:2880::/32"]' });
    const res = await post(gw, notification('wamid.IP'));
    assertRefused(gw, res, 403, 'IP_DENIED', false);
    assert.equal(crm.received.length, 0);
  });

  test('a websocket upgrade never passes, even on a route that allows websockets', async (t) => {
    const { gw, crm } = await setup(t, { route: '\n    websocket: true' });
    const raw = await rawTlsExchange(
      gw.port,
      gw.ca,
      `GET ${PATH} HTTP/1.1\r\nHost: api.test.local\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
    );
    assert.equal(firstStatus(raw), 400);
    assert.match(raw, /UPGRADE_NOT_ALLOWED/);
    assert.equal(crm.received.length, 0);
  });

  test('without its secrets the route refuses everything (fail closed)', async (t) => {
    const { gw, crm } = await setup(t, { env: { WHATSAPP_APP_SECRET: '', WHATSAPP_VERIFY_TOKEN: '' } });
    const res = await post(gw, notification('wamid.NOSECRET'));
    assert.equal(res.status, 401);
    assert.equal(res.json<{ error: { code: string } }>().error.code, 'AUTH_UNAVAILABLE');
    const hs = await gw.request({ path: `${PATH}?hub.mode=subscribe&hub.verify_token=&hub.challenge=1` });
    assert.equal(hs.status, 401);
    assert.equal(crm.received.length, 0);
  });
});

/** A signed POST whose body is held back after `sent` bytes; `answer` is everything the gateway wrote. */
function heldPost(gw: TestGateway, body: Buffer, sent: number): { finish(): void; answer: Promise<string> } {
  const socket = tls.connect({ host: '127.0.0.1', port: gw.port, ca: gw.ca, servername: 'api.test.local' });
  socket.write(`POST ${PATH} HTTP/1.1\r\nhost: api.test.local\r\ncontent-type: application/json\r\nx-hub-signature-256: ${signBody(body, APP_SECRET)}\r\ncontent-length: ${body.length}\r\n\r\n`);
  socket.write(body.subarray(0, sent));
  const chunks: Buffer[] = [];
  const answer = new Promise<string>((resolve) => {
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      setTimeout(() => socket.end(), 50);
    });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
  return { finish: () => socket.write(body.subarray(sent)), answer };
}

describe('WhatsApp webhook: bodies read within the process budget and deadline', () => {
  test('regression: payloads past server.maxBufferedBodies get 503 with Retry-After (Meta retries); a stalled one 408; nothing reaches the CRM API', async (t) => {
    const { gw, crm } = await setup(t, { yaml: `${FAST_RETRY}\nserver: { maxBufferedBodies: 4mb, bodyReadTimeout: 2s }` });
    // A padded notification of 3 MB: Meta's batches are far smaller, an attacker's need not be.
    const big = Buffer.concat([notification('wamid.BIG').subarray(0, -1), Buffer.from(`,"pad":"${'x'.repeat(3 * 1024 * 1024 - 2048)}"}`)]);
    const held = heldPost(gw, big, big.length - 1);
    await new Promise((r) => setTimeout(r, 300));
    const refused = heldPost(gw, big, 1024);
    const raw = await refused.answer;
    assert.match(raw, /^HTTP\/1\.1 503 /, raw.slice(0, 300));
    assert.match(raw, /"code":"BODY_BUFFERS_FULL"/);
    assert.match(raw, /^retry-after: 2\r$/im);
    // The held one never ends: cut off after bodyReadTimeout, and its 3 MB freed.
    const stalled = await held.answer;
    assert.match(stalled, /^HTTP\/1\.1 408 /, stalled.slice(0, 300));
    assert.match(stalled, /"code":"REQUEST_TIMEOUT"/);
    assert.equal(crm.received.length, 0, 'nothing forwarded');
    assert.ok(webhookEvents(gw, 'rejected').some((e) => e.code === 'BODY_BUFFERS_FULL'));
    // The budget is free again: a normal notification goes through.
    const ok = await post(gw, notification('wamid.AFTER'));
    assert.equal(ok.status, 200, ok.body);
    assert.equal(crm.received.length, 1);
  });
});

/** Message ids in the order the CRM API received them. */
function receivedIds(crm: StandInCrm): string[] {
  return crm.received.map((r) => (JSON.parse(r.body.toString()) as { entry: { changes: { value: { messages: { id: string }[] } }[] }[] }).entry[0]!.changes[0]!.value.messages[0]!.id);
}

async function queueDepth(name: string): Promise<number> {
  return redis.xlen(`crmgw:{wa:${name}}:queue`);
}

describe('WhatsApp webhook: no message lost', () => {
  test('with the CRM API down, payloads are acknowledged, stored sealed, then delivered once and in order', async (t) => {
    const s = await setup(t);
    const { gw, crm, name } = s;
    await crm.stop();
    const ids = ['wamid.Q1', 'wamid.Q2', 'wamid.Q3', 'wamid.Q4'];
    const bodies = ids.map((id) => notification(id));
    for (const body of bodies) {
      const res = await post(gw, body);
      assert.equal(res.status, 200, res.body);
      assert.deepEqual(res.json(), { status: 'queued' });
    }
    assert.equal(await queueDepth(name), 4);
    // At rest the payloads are sealed: no message text or phone number in Redis.
    const rows = await redis.xrangeBuffer(`crmgw:{wa:${name}}:queue`, '-', '+');
    for (const [, fields] of rows) {
      const raw = Buffer.concat(fields);
      assert.ok(!raw.includes(Buffer.from('presupuesto')) && !raw.includes(Buffer.from(CUSTOMER)) && !raw.includes(Buffer.from('wamid.Q')));
    }
    const text = await gw.running.metrics.registry.metrics();
    assert.match(text, new RegExp(`crmgw_whatsapp_queue_depth\\{route="${name}"\\} 4`));
    assert.match(text, new RegExp(`crmgw_whatsapp_queue_oldest_age_seconds\\{route="${name}"\\} [0-9.]+`));
    // A retry from Meta while queued is a duplicate, not a fifth entry.
    assert.deepEqual((await post(gw, bodies[1] as Buffer)).json(), { status: 'duplicate' });

    await crm.start();
    await waitFor(async () => (await queueDepth(name)) === 0, WAIT_MS, 'queue drained');
    assert.deepEqual(receivedIds(crm), ids);
    crm.received.forEach((r, i) => assert.ok(r.body.equals(bodies[i] as Buffer), `payload ${i} byte for byte`));
    assert.equal(crm.received[0]?.headers['x-gateway-webhook-verified'], 'sha256');
    assert.equal(webhookEvents(gw, 'delivered_late').length, 4);
    // Once more through the pipeline: nothing further arrives, the next payload goes straight through.
    assert.deepEqual((await post(gw, notification('wamid.AFTER'))).json(), { status: 'forwarded' });
    assert.deepEqual(receivedIds(crm), [...ids, 'wamid.AFTER']);
  });

  test('queued payloads survive a gateway restart and are delivered once, in order, by the next process', async (t) => {
    const s = await setup(t);
    await s.crm.stop();
    const ids = ['wamid.R1', 'wamid.R2', 'wamid.R3'];
    assert.deepEqual((await post(s.gw, notification('wamid.R1'))).json(), { status: 'queued' });
    assert.deepEqual((await post(s.gw, notification('wamid.R2'))).json(), { status: 'queued' });
    await s.restart();
    // The new process still knows what it stored: a retry is a duplicate.
    assert.deepEqual((await post(s.gw, notification('wamid.R1'))).json(), { status: 'duplicate' });
    assert.deepEqual((await post(s.gw, notification('wamid.R3'))).json(), { status: 'queued' });
    await s.crm.start();
    await waitFor(async () => (await queueDepth(s.name)) === 0, WAIT_MS, 'queue drained after restart');
    assert.deepEqual(receivedIds(s.crm), ids);
    assert.equal(webhookEvents(s.gw, 'delivered_late').length, 3, 'all three delivered by the new process');
    assert.deepEqual((await post(s.gw, notification('wamid.R4'))).json(), { status: 'forwarded' });
    assert.deepEqual(receivedIds(s.crm), [...ids, 'wamid.R4']);
  });

  test('a CRM API slower than the acknowledgement bound: Meta gets 200 at once, the CRM API gets the payload once', async (t) => {
    const s = await setup(t, { yaml: 'whatsapp: { ackTimeout: 200ms, retryMin: 50ms, retryMax: 200ms }' });
    let release: () => void = () => undefined;
    const held = new Promise<void>((r) => (release = r));
    // The first answer waits until Meta has been answered: slower than the bound, by construction.
    s.crm.behaviour = (n) => ({ status: 200, ...(n === 0 ? { until: held } : {}) });
    const res = await post(s.gw, notification('wamid.SLOW'));
    assert.deepEqual(res.json(), { status: 'queued' });
    release();
    await waitFor(() => webhookEvents(s.gw, 'delivered_late').length === 1, WAIT_MS, 'delivered late');
    assert.equal(await queueDepth(s.name), 0);
    assert.equal(s.crm.received.length, 1, 'not sent a second time');
  });

  test('a payload the CRM API refuses (4xx) is set aside after a few tries; the queue behind it moves on', async (t) => {
    const s = await setup(t);
    s.crm.behaviour = (_n, req) => ({ status: req.body.includes(Buffer.from('wamid.POISON')) ? 422 : 200 });
    await s.crm.stop();
    assert.deepEqual((await post(s.gw, notification('wamid.POISON'))).json(), { status: 'queued' });
    assert.deepEqual((await post(s.gw, notification('wamid.NEXT'))).json(), { status: 'queued' });
    await s.crm.start();
    await waitFor(async () => (await queueDepth(s.name)) === 0, WAIT_MS, 'queue moved on');
    assert.deepEqual(receivedIds(s.crm), ['wamid.POISON', 'wamid.POISON', 'wamid.POISON', 'wamid.NEXT']);
    assert.equal(webhookEvents(s.gw, 'dead_lettered').length, 1);
    assert.equal(await redis.xlen(`crmgw:{wa:${s.name}}:dead`), 1);
  });
});

describe('WhatsApp webhook: several gateway processes', () => {
  test('two gateways on one queue: one delivers at a time, in order, each payload once', async (t) => {
    const crm = await StandInCrm.start();
    const name = runId('wa-');
    routeNames.push(name);
    const clients = [await gatewayRedis(SHARED_REDIS_URL, createMemoryLogger()), await gatewayRedis(SHARED_REDIS_URL, createMemoryLogger())];
    const [a, b] = await Promise.all(clients.map((client) => startTestGateway(routeYaml(name, crm), ENV, FAST_RETRY, { redis: client })));
    assert.ok(a && b);
    t.after(async () => {
      await a.close();
      await b.close();
      for (const c of clients) c.disconnect();
      await crm.stop();
    });

    // The CRM API down: payloads alternate between the two gateways, then it comes back.
    await crm.stop();
    const ids = Array.from({ length: 6 }, (_, i) => `wamid.P${i}`);
    for (const [i, id] of ids.entries()) {
      const res = await post(i % 2 === 0 ? a : b, notification(id));
      assert.deepEqual(res.json(), { status: 'queued' });
    }
    await crm.start();
    await waitFor(async () => (await queueDepth(name)) === 0, WAIT_MS, 'shared queue drained');
    assert.deepEqual(receivedIds(crm), ids);

    // Both up, many at once on both gateways: every payload reaches the CRM API exactly once.
    const burst = Array.from({ length: 40 }, (_, i) => `wamid.B${i}`);
    const answers = await Promise.all(burst.map((id, i) => post(i % 2 === 0 ? a : b, notification(id))));
    for (const res of answers) assert.ok(['forwarded', 'queued'].includes(res.json<{ status: string }>().status), res.body);
    await waitFor(async () => (await queueDepth(name)) === 0, WAIT_MS, 'burst delivered');
    const got = receivedIds(crm).slice(ids.length);
    assert.equal(got.length, burst.length);
    assert.deepEqual([...got].sort(), [...burst].sort());
  });
});

describe('WhatsApp webhook: without Redis', () => {
  test('Redis down: 503 with Retry-After, nothing forwarded; back up: accepted', async (t) => {
    const server = await RedisServerProcess.start();
    const own = await gatewayRedis(server.url, createMemoryLogger());
    t.after(async () => {
      own.disconnect();
      await server.stop();
    });
    const s = await setup(t, { redis: own });
    await server.stop();
    await waitFor(() => own.status !== 'ready', WAIT_MS, 'client notices Redis is down');
    const res = await post(s.gw, notification('wamid.NOREDIS'));
    assertRefused(s.gw, res, 503, 'WEBHOOK_UNAVAILABLE');
    assert.equal(res.headers['retry-after'], '30');
    assert.equal(s.crm.received.length, 0);
    await server.start();
    await waitFor(() => own.status === 'ready', WAIT_MS, 'client reconnected');
    const retry = await post(s.gw, notification('wamid.NOREDIS'));
    assert.deepEqual(retry.json(), { status: 'forwarded' });
    assert.equal(s.crm.received.length, 1);
  });

  test('no Redis configured: the handshake works, payloads get 503 (nothing acknowledged that is not stored)', async (t) => {
    const s = await setup(t, { redis: null });
    const hs = await s.gw.request({ path: `${PATH}?hub.mode=subscribe&hub.verify_token=${VERIFY_TOKEN}&hub.challenge=42` });
    assert.equal(hs.body, '42');
    const res = await post(s.gw, notification('wamid.NOSTORE'));
    assertRefused(s.gw, res, 503, 'WEBHOOK_UNAVAILABLE');
    assert.equal(s.crm.received.length, 0);
  });
});

// From an adversarial review of the edge, against the real gateway: the attack is refused (or
// reaches only what the route maps to) and the upstream sees nothing it should not.
describe('rate limits by user on the webhook (from the review of the edge)', () => {
  function assertRefused(res: TestResponse, status: number, code: string): void {
    assert.equal(res.status, status, res.body);
    assert.equal(res.json<{ error: { code: string } }>().error.code, code);
  }

  const redisPatterns: string[] = [];
  after(async () => {
    for (const pattern of redisPatterns) await deleteKeys(SHARED_REDIS_URL, pattern);
  });

  test('WhatsApp webhook with by: user limits: unsigned requests spend their address budget, not Meta’s', async (t) => {
    const appSecret = randomBytes(24).toString('hex');
    const crm = await StandInCrm.start();
    const name = runId('wa-rl-');
    redisPatterns.push(`crmgw:{wa:${name}}:*`, `crmgw:rl:r:${name}:*`);
    const gw = await startTestGateway(
      `
  - name: ${name}
    host: api.test.local
    path: /webhook/whatsapp
    upstream: ${crm.url}
    auth: whatsapp
    websocket: false
    rateLimit: { window: 1m, max: 2, by: user }
`,
      {
        WHATSAPP_APP_SECRET: appSecret,
        WHATSAPP_VERIFY_TOKEN: randomBytes(16).toString('hex'),
        WHATSAPP_QUEUE_KEY: randomBytes(32).toString('hex'),
        TRUSTED_PROXIES: '127.0.0.1/32',
      },
      'whatsapp: { ackTimeout: 3s, retryMin: 50ms, retryMax: 200ms }',
      { redis },
    );
    t.after(async () => {
      await gw.close();
      await crm.stop();
    });
    const forged = Buffer.from('{"object":"whatsapp_business_account","entry":[]}');
    const attacker = { 'content-type': 'application/json', 'x-forwarded-for': '203.0.113.5', 'x-hub-signature-256': `sha256=${'0'.repeat(64)}` };
    // The webhook names its caller before the handler checks the signature; the per-user step
    // took that for an authenticated user: the forger's address charge was refunded and the one
    // shared "whatsapp-webhook" bucket charged instead.
    assertRefused(await gw.request({ method: 'POST', path: '/webhook/whatsapp', headers: attacker, body: forged }), 401, 'WEBHOOK_SIGNATURE_INVALID');
    assertRefused(await gw.request({ method: 'POST', path: '/webhook/whatsapp', headers: attacker, body: forged }), 401, 'WEBHOOK_SIGNATURE_INVALID');
    assertRefused(await gw.request({ method: 'POST', path: '/webhook/whatsapp', headers: attacker, body: forged }), 429, 'RATE_LIMITED');

    const ts = Math.floor(Date.now() / 1000);
    const body = Buffer.from(
      JSON.stringify({
        object: 'whatsapp_business_account',
        entry: [{ id: '1', changes: [{ field: 'messages', value: { messages: [{ id: `wamid.${name}`, from: '34600111222', timestamp: String(ts) }] } }] }],
      }),
    );
    const meta = await gw.request({
      method: 'POST',
      path: '/webhook/whatsapp',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': '198.51.100.7', 'x-hub-signature-256': signBody(body, appSecret) },
      body,
    });
    assert.equal(meta.status, 200, meta.body);
    assert.equal(crm.received.length, 1, 'only the signed payload reached the CRM API');
    assert.ok(crm.received[0]?.body.equals(body));
  });
});
