import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import tls from 'node:tls';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import WebSocket, { type ClientOptions } from 'ws';
import { httpsRequest, testCertificate, testConfig, testEnv, type RequestOptions, type TestResponse } from '../helpers/harness.js';
import { startRealCrmApi, type RealCrmApi } from '../helpers/real-crm-api.js';
import { waitFor } from '../helpers/wait.js';
import { createMemoryLogger, type MemoryLogger } from '../../src/log/logger.js';
import { startGateway, type RunningGateway } from '../../src/server/start.js';
import { createGateway } from '../../src/app.js';
import { OpenApiSpecs } from '../../src/openapi/registry.js';
import { OpenApiSpecError } from '../../src/openapi/errors.js';
import { findUnsafePattern } from '../../src/openapi/regex-safety.js';
import { createGatewayMetrics } from '../../src/metrics/gateway.js';

/**
 * OpenAPI validation (issue 16, item 3) in front of the real FastAPI app (crm_api.py under
 * uvicorn) with the app's own /openapi.json, fetched at startup: what the schema forbids never
 * reaches the app (its request log stays empty), what it allows arrives byte for byte (the app
 * answers with the SHA-256 of the body it read). Real TLS, real gateway, no mocks.
 */

const CONTACT = {
  first_name: 'Lucía',
  last_name: 'Fernández',
  email: 'lucia@example.es',
  phone: '+34 600 000 000',
  company: 'Acme SL',
  job_title: 'CFO',
  status: 'prospect',
  source: 'web',
  owner_id: 7,
  score: 71.5,
  tags: ['vip', 'madrid'],
  newsletter: true,
  city: 'Madrid',
  country: 'ES',
  notes: 'Llamar el lunes',
};

const sha256 = (b: string | Buffer): string => createHash('sha256').update(b).digest('hex');

interface Bed {
  app: RealCrmApi;
  running: RunningGateway;
  log: MemoryLogger;
  specs: OpenApiSpecs;
  specFile: string;
  dir: string;
  ca: string;
  send(opts: RequestOptions): Promise<TestResponse>;
}

let bed: Bed;

const SMALL_SPEC = { openapi: '3.1.0', info: { title: 'files', version: '1' }, paths: { '/public/hello': { get: {} }, '/public/headers': { get: {} } } };

before(async () => {
  const app = await startRealCrmApi();
  const dir = mkdtempSync(join(tmpdir(), 'crm-gw-openapi-'));
  const specFile = join(dir, 'public.json');
  writeFileSync(specFile, JSON.stringify(SMALL_SPEC));
  const routes = `
  - name: api
    host: api.test.local
    path: /v1
    upstream: UPSTREAM
    auth: none
    maxBody: 4mb
    openapi: { spec: UPSTREAM/openapi.json, mode: enforce }
  - name: api-small
    host: small.test.local
    path: /v1
    upstream: UPSTREAM
    auth: none
    maxBody: 1mb
    openapi: { spec: UPSTREAM/openapi.json }
  - name: api-report
    host: report.test.local
    path: /v1
    upstream: UPSTREAM
    auth: none
    openapi: { spec: UPSTREAM/openapi.json, mode: report }
  - name: public-file
    host: api.test.local
    path: /public
    upstream: UPSTREAM
    auth: none
    openapi: { spec: ${specFile} }
`;
  const cert = await testCertificate();
  const config = testConfig(routes, app.url, cert);
  const log = createMemoryLogger();
  const specs = await OpenApiSpecs.load(config.routes, log);
  const running = await startGateway(config, { log, openapi: specs });
  const ca = readFileSync(cert.cert, 'utf8');
  bed = { app, running, log, specs, specFile, dir, ca, send: (opts) => httpsRequest(running.ports.https, ca, opts) };
});

after(async () => {
  await bed?.running.shutdown();
  await bed?.app.stop();
  if (bed) rmSync(bed.dir, { recursive: true, force: true });
});

const TENANT = { 'x-tenant': 'acme' };
const JSON_HEADERS = { ...TENANT, 'content-type': 'application/json' };

/** Sends a request the spec forbids and checks the answer, and that the app received nothing at all. */
async function refused(opts: RequestOptions, status: number, code: string, pointer?: string): Promise<TestResponse> {
  await bed.app.clearRequests();
  const res = await bed.send(opts);
  assert.equal(res.status, status, res.body);
  const error = res.json<{ error: { code: string; pointer?: string } }>().error;
  assert.equal(error.code, code);
  assert.equal(error.pointer, pointer);
  assert.deepEqual(await bed.app.requests(), [], 'the app received nothing');
  return res;
}

describe('what the spec allows reaches the app as it was sent', () => {
  test('a 15-field contact, formatted as the client chose, arrives byte for byte', async () => {
    // Odd spacing, key order and escapes: a re-serialized body would differ.
    const body = `{ "owner_id":7,\n  "first_name" : "Luc\\u00eda", ${JSON.stringify(CONTACT).slice(1, -1).replace('"first_name":"Lucía",', '').replace('"owner_id":7,', '')} }`;
    const res = await bed.send({ method: 'POST', path: '/v1/contact-records/', headers: JSON_HEADERS, body });
    assert.equal(res.status, 201, res.body);
    const seen = res.json<{ sha256: string; length: number; tenant: string }>();
    assert.equal(seen.sha256, sha256(body));
    assert.equal(seen.length, Buffer.byteLength(body));
    assert.equal(seen.tenant, 'acme');
  });

  test('a chunked body arrives byte for byte too', async () => {
    const body = JSON.stringify(CONTACT);
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = https.request(
        { host: '127.0.0.1', port: bed.running.ports.https, method: 'POST', path: '/v1/contact-records/', ca: bed.ca, servername: 'api.test.local', headers: { host: 'api.test.local', ...JSON_HEADERS }, agent: false },
        (r) => {
          let text = '';
          r.on('data', (c: Buffer) => (text += c.toString()));
          r.on('end', () => resolve({ status: r.statusCode ?? 0, body: text }));
        },
      );
      req.on('error', reject);
      req.write(body.slice(0, 40));
      setTimeout(() => req.end(body.slice(40)), 20);
    });
    assert.equal(res.status, 201, res.body);
    assert.equal((JSON.parse(res.body) as { sha256: string }).sha256, sha256(body));
  });

  test('path and query parameters in range pass, coerced for checking but forwarded as sent', async () => {
    await bed.app.clearRequests();
    const res = await bed.send({ path: '/v1/contact-records/12?view=full&limit=020' });
    assert.equal(res.status, 200, res.body);
    assert.deepEqual(res.json(), { id: 12, view: 'full', limit: 20 });
    const [seen] = await bed.app.requests();
    assert.equal(seen?.query, 'view=full&limit=020');
  });
});

describe('what the spec forbids never reaches the app', () => {
  test('a path the spec does not have: 404; a method it does not allow: 405 with Allow', async () => {
    await refused({ path: '/v1/admin/export' }, 404, 'API_PATH_UNKNOWN');
    const res = await refused({ method: 'DELETE', path: '/v1/contact-records/', headers: TENANT }, 405, 'API_METHOD_NOT_ALLOWED');
    assert.equal(res.headers.allow, 'POST');
    // FastAPI's own pages are not part of its API.
    await refused({ path: '/v1/docs' }, 404, 'API_PATH_UNKNOWN');
  });

  test('path, query and header parameters are checked against their schemas', async () => {
    await refused({ path: '/v1/contact-records/0' }, 400, 'API_PARAMETER_INVALID', '/path/record_id');
    await refused({ path: '/v1/contact-records/abc' }, 400, 'API_PARAMETER_INVALID', '/path/record_id');
    await refused({ path: '/v1/contact-records/3?limit=1000' }, 400, 'API_PARAMETER_INVALID', '/query/limit');
    await refused({ path: '/v1/contact-records/3?view=admin' }, 400, 'API_PARAMETER_INVALID', '/query/view');
    await refused({ path: '/v1/contact-records/3?limit=1&limit=2' }, 400, 'API_PARAMETER_INVALID', '/query/limit');
    await refused({ method: 'POST', path: '/v1/contact-records/', headers: { 'content-type': 'application/json' }, body: JSON.stringify(CONTACT) }, 400, 'API_PARAMETER_INVALID', '/header/x-tenant');
    await refused({ method: 'POST', path: '/v1/contact-records/', headers: { ...JSON_HEADERS, 'x-tenant': 'ACME;DROP' }, body: JSON.stringify(CONTACT) }, 400, 'API_PARAMETER_INVALID', '/header/x-tenant');
  });

  test('the declared content type is required (415) and the JSON must be well-formed (400)', async () => {
    await refused({ method: 'POST', path: '/v1/contact-records/', headers: { ...TENANT, 'content-type': 'text/plain' }, body: JSON.stringify(CONTACT) }, 415, 'API_CONTENT_TYPE_UNSUPPORTED');
    await refused({ method: 'POST', path: '/v1/contact-records/', headers: TENANT, body: JSON.stringify(CONTACT) }, 415, 'API_CONTENT_TYPE_UNSUPPORTED');
    await refused({ method: 'POST', path: '/v1/contact-records/', headers: JSON_HEADERS, body: '{"first_name": "Ana",' }, 400, 'API_BODY_MALFORMED', '/body');
    await refused({ method: 'POST', path: '/v1/contact-records/', headers: JSON_HEADERS }, 400, 'API_BODY_INVALID', '/body');
  });

  test('an invalid body names the pointer that failed, never the value', async () => {
    await refused({ method: 'POST', path: '/v1/contact-records/', headers: JSON_HEADERS, body: JSON.stringify({ ...CONTACT, email: undefined }) }, 400, 'API_BODY_INVALID', '/body/email');
    await refused({ method: 'POST', path: '/v1/contact-records/', headers: JSON_HEADERS, body: JSON.stringify({ ...CONTACT, owner_id: '7' }) }, 400, 'API_BODY_INVALID', '/body/owner_id');
    await refused({ method: 'POST', path: '/v1/contact-records/', headers: JSON_HEADERS, body: JSON.stringify({ ...CONTACT, tags: ['ok', 42] }) }, 400, 'API_BODY_INVALID', '/body/tags/1');
    const secret = 'not-an-address-4f1c9e';
    const res = await refused({ method: 'POST', path: '/v1/contact-records/', headers: JSON_HEADERS, body: JSON.stringify({ ...CONTACT, email: secret }) }, 400, 'API_BODY_INVALID', '/body/email');
    assert.ok(!res.body.includes(secret), 'the answer does not echo the value');
    await waitFor(() => bed.log.securityEvents.some((e) => JSON.stringify(e).includes('/body/email')), 'the denial event');
    assert.ok(!JSON.stringify(bed.log.securityEvents).includes(secret), 'no log line holds the value');
  });
});

describe('websocket upgrades', () => {
  test('an upgrade is checked for its path: OpenAPI does not describe websockets, so it is refused', async () => {
    await bed.app.clearRequests();
    const status = await new Promise<number>((resolve, reject) => {
      // `servername` goes through to tls.connect (SNI must match Host); ws's types leave it out.
      const options: ClientOptions & { servername: string } = { headers: { host: 'api.test.local' }, ca: bed.ca, servername: 'api.test.local', handshakeTimeout: 5_000 };
      const ws = new WebSocket(`wss://127.0.0.1:${bed.running.ports.https}/v1/ws/echo`, options);
      ws.on('unexpected-response', (_req, res) => {
        resolve(res.statusCode ?? 0);
        ws.terminate();
      });
      ws.on('open', () => reject(new Error('the upgrade went through')));
      ws.on('error', () => undefined);
    });
    assert.equal(status, 404);
    assert.deepEqual(await bed.app.requests(), []);
  });
});

describe('hostile bodies', () => {
  /** Runs `send` while measuring the longest event-loop stall of the process the gateway runs in. */
  async function stall(send: () => Promise<TestResponse>): Promise<{ res: TestResponse; maxMs: number; tookMs: number }> {
    const h = monitorEventLoopDelay({ resolution: 1 });
    h.enable();
    const started = performance.now();
    const res = await send();
    const tookMs = performance.now() - started;
    h.disable();
    return { res, maxMs: h.max / 1e6, tookMs };
  }

  test('a body nested 10,000 levels deep: 400 at once, the event loop never stalls', async (t) => {
    await bed.app.clearRequests();
    const body = `${'{"a":['.repeat(10_000)}${']}'.repeat(10_000)}`;
    const { res, maxMs, tookMs } = await stall(() => bed.send({ method: 'POST', path: '/v1/contact-records/', headers: JSON_HEADERS, body }));
    assert.equal(res.status, 400);
    assert.equal(res.json<{ error: { code: string } }>().error.code, 'API_BODY_MALFORMED');
    t.diagnostic(`10,000 levels: answered in ${tookMs.toFixed(1)} ms, longest event-loop stall ${maxMs.toFixed(1)} ms`);
    assert.ok(maxMs < 100, `event loop stalled ${maxMs.toFixed(1)} ms`);
    assert.ok(tookMs < 2000, `answered in ${tookMs.toFixed(0)} ms`);
    assert.deepEqual(await bed.app.requests(), []);
  });

  test('3 MB of numbers: 400 within the route limit, 413 over it; the event loop never stalls', async (t) => {
    await bed.app.clearRequests();
    const numbers = `[${Array.from({ length: 420_000 }, (_, i) => i * 7).join(',')}]`;
    assert.ok(numbers.length > 3_000_000);
    const within = await stall(() => bed.send({ method: 'POST', path: '/v1/contact-records/', headers: JSON_HEADERS, body: numbers }));
    assert.equal(within.res.status, 400);
    assert.equal(within.res.json<{ error: { pointer: string } }>().error.pointer, '/body');
    t.diagnostic(`3 MB of numbers: 400 in ${within.tookMs.toFixed(1)} ms, longest stall ${within.maxMs.toFixed(1)} ms`);
    assert.ok(within.maxMs < 250, `event loop stalled ${within.maxMs.toFixed(1)} ms`);
    const over = await stall(() => bed.send({ method: 'POST', path: '/v1/contact-records/', host: 'small.test.local', headers: JSON_HEADERS, body: numbers }));
    assert.equal(over.res.status, 413);
    t.diagnostic(`3 MB over a 1 MB limit: 413 in ${over.tookMs.toFixed(1)} ms, longest stall ${over.maxMs.toFixed(1)} ms`);
    assert.ok(over.maxMs < 100, `event loop stalled ${over.maxMs.toFixed(1)} ms`);
    // Chunked, so no Content-Length to refuse by: the read stops at the limit.
    const chunked = await stall(
      () =>
        new Promise<TestResponse>((resolve, reject) => {
          const req = https.request(
            { host: '127.0.0.1', port: bed.running.ports.https, method: 'POST', path: '/v1/contact-records/', ca: bed.ca, servername: 'small.test.local', headers: { host: 'small.test.local', ...JSON_HEADERS }, agent: false },
            (r) => {
              let text = '';
              r.on('data', (c: Buffer) => (text += c.toString()));
              r.on('end', () => resolve({ status: r.statusCode ?? 0, headers: r.headers, body: text, json: () => JSON.parse(text) }));
            },
          );
          // The gateway may answer and close before the client has written everything.
          req.on('error', reject);
          for (let i = 0; i < numbers.length; i += 256 * 1024) req.write(numbers.slice(i, i + 256 * 1024));
          req.end();
        }),
    );
    assert.equal(chunked.res.status, 413);
    t.diagnostic(`3 MB chunked over a 1 MB limit: 413 in ${chunked.tookMs.toFixed(1)} ms, longest stall ${chunked.maxMs.toFixed(1)} ms`);
    assert.deepEqual(await bed.app.requests(), [], 'nothing of the chunked body reached the app');
    assert.deepEqual(await bed.app.requests(), []);
  });
});

/** A request whose body the test sends in parts over its own TLS connection; `answer` is all the gateway wrote. */
interface SlowBody {
  send(bytes: string | Buffer): void;
  readonly answer: Promise<string>;
}

function slowBody(port: number, host: string, head: { contentLength?: number; chunked?: boolean }, first: string | Buffer = ''): SlowBody {
  const socket = tls.connect({ host: '127.0.0.1', port, ca: bed.ca, servername: host });
  const framing = head.chunked ? 'transfer-encoding: chunked' : `content-length: ${head.contentLength}`;
  socket.write(`POST /v1/contact-records/ HTTP/1.1\r\nhost: ${host}\r\nx-tenant: acme\r\ncontent-type: application/json\r\n${framing}\r\n\r\n`);
  const chunks: Buffer[] = [];
  const answer = new Promise<string>((resolve) => {
    socket.on('data', (c: Buffer) => chunks.push(c));
    // Written to after the gateway closed: the answer it sent first is what counts.
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
  });
  const send = (bytes: string | Buffer): void => {
    if (socket.destroyed) return;
    if (!head.chunked) socket.write(bytes);
    else if (bytes.length === 0) socket.end('0\r\n\r\n');
    else socket.write(`${bytes.length.toString(16)}\r\n${bytes.toString('latin1')}\r\n`, 'latin1');
  };
  if (first.length > 0) send(first);
  // Answers keep the connection open: ending ours once one has come lets `close` settle the promise.
  socket.on('data', () => setTimeout(() => socket.end(), 50));
  return { send, answer };
}

const statusOf = (raw: string): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? 0);
const headerIn = (raw: string, name: string): string | undefined => new RegExp(`^${name}: (.*)\r$`, 'im').exec(raw)?.[1];

describe('bodies read whole share one budget and one deadline (server.maxBufferedBodies, server.bodyReadTimeout)', () => {
  let gw: RunningGateway;
  const MB = 1024 * 1024;
  /** 3 MB of JSON the contact schema refuses (400 once read): what is measured is the reading. */
  const body = Buffer.from(`[${'1,'.repeat(1.5 * MB - 1)}1]`);

  before(async () => {
    const cert = await testCertificate();
    const routes = `
  - name: budget
    host: budget.test.local
    path: /v1
    upstream: UPSTREAM
    auth: none
    maxBody: 4mb
    openapi: { spec: UPSTREAM/openapi.json }
`;
    const config = testConfig(routes, bed.app.url, cert, {}, 'server: { maxBufferedBodies: 8mb, bodyReadTimeout: 3s }');
    const log = createMemoryLogger();
    gw = await startGateway(config, { log, openapi: await OpenApiSpecs.load(config.routes, log) });
  });
  after(async () => {
    await gw?.shutdown();
  });

  test('regression: slow 3 MB bodies past an 8 MB budget are refused 503 with Retry-After, unread; the budget comes back when they end', async () => {
    assert.equal(body.length, 3 * MB + 1);
    await bed.app.clearRequests();
    const port = gw.ports.https;
    // Two bodies, each held one byte short of its end: 6 MB of the 8 reserved.
    const held = [0, 1].map(() => slowBody(port, 'budget.test.local', { contentLength: body.length }, body.subarray(0, body.length - 1)));
    await new Promise((r) => setTimeout(r, 300));
    // Declared 3 MB more each: refused before a byte of theirs is read.
    const refused = [0, 1].map(() => slowBody(port, 'budget.test.local', { contentLength: body.length }, body.subarray(0, 64 * 1024)));
    for (const r of refused) {
      const raw = await r.answer;
      assert.equal(statusOf(raw), 503, raw.slice(0, 300));
      assert.match(raw, /"code":"BODY_BUFFERS_FULL"/);
      assert.equal(headerIn(raw, 'retry-after'), '3');
      assert.equal(headerIn(raw, 'connection'), 'close');
    }
    // A chunked body reserves as it arrives: the first megabyte fits, the next ones do not.
    const chunked = slowBody(port, 'budget.test.local', { chunked: true }, body.subarray(0, MB));
    await new Promise((r) => setTimeout(r, 200));
    chunked.send(body.subarray(MB, 2 * MB));
    chunked.send(body.subarray(2 * MB, 3 * MB));
    const chunkedRaw = await chunked.answer;
    assert.equal(statusOf(chunkedRaw), 503, chunkedRaw.slice(0, 300));
    assert.match(chunkedRaw, /"code":"BODY_BUFFERS_FULL"/);

    // The held bodies end: read, validated, refused by the schema (the app never sees them).
    for (const h of held) h.send(body.subarray(body.length - 1));
    for (const h of held) {
      const raw = await h.answer;
      assert.equal(statusOf(raw), 400, raw.slice(0, 300));
      assert.match(raw, /"code":"API_BODY_INVALID"/);
    }
    // Their 6 MB are free again: two more 3 MB bodies are read at once.
    const again = [0, 1].map(() => slowBody(port, 'budget.test.local', { contentLength: body.length }, body));
    for (const a of again) assert.equal(statusOf(await a.answer), 400);
    assert.deepEqual(await bed.app.requests(), [], 'the app received nothing');
  });

  test('regression: a body that stalls is cut off after bodyReadTimeout with 408, and the app receives nothing', async () => {
    await bed.app.clearRequests();
    const started = performance.now();
    const stalled = slowBody(gw.ports.https, 'budget.test.local', { contentLength: 4096 }, '{"first_name": "Lu');
    const raw = await stalled.answer;
    const tookMs = performance.now() - started;
    assert.equal(statusOf(raw), 408, raw.slice(0, 300));
    assert.match(raw, /"code":"REQUEST_TIMEOUT"/);
    assert.equal(headerIn(raw, 'connection'), 'close');
    assert.ok(tookMs >= 2900 && tookMs < 6000, `cut off after ${tookMs.toFixed(0)} ms`);
    assert.deepEqual(await bed.app.requests(), [], 'the app received nothing');
    // A valid contact sent at once still passes on the same gateway.
    const ok = slowBody(gw.ports.https, 'budget.test.local', { contentLength: Buffer.byteLength(JSON.stringify(CONTACT)) }, JSON.stringify(CONTACT));
    assert.equal(statusOf(await ok.answer), 201);
  });
});

describe('HEAD, as the real application answers it', () => {
  test('regression: FastAPI answers 405 with Allow to HEAD on a GET route, and so does the gateway, without forwarding it', async () => {
    const direct = await fetch(`${bed.app.url}/v1/contact-records/12`, { method: 'HEAD' });
    assert.equal(direct.status, 405, 'the application itself refuses HEAD');
    assert.equal(direct.headers.get('allow'), 'GET');
    await bed.app.clearRequests();
    const res = await bed.send({ method: 'HEAD', path: '/v1/contact-records/12' });
    assert.equal(res.status, 405);
    assert.equal(res.headers.allow, 'GET');
    assert.deepEqual(await bed.app.requests(), [], 'the app received nothing');
    // GET on the same path still passes.
    assert.equal((await bed.send({ path: '/v1/contact-records/12' })).status, 200);
  });
});

describe('report mode', () => {
  test('a violation is logged with its pointer, never its value, and the request goes on', async () => {
    await bed.app.clearRequests();
    const secret = 'report-mode-value-77aa';
    const body = JSON.stringify({ ...CONTACT, email: secret });
    const res = await bed.send({ method: 'POST', path: '/v1/contact-records/', host: 'report.test.local', headers: JSON_HEADERS, body });
    // FastAPI's own 422: the app saw it.
    assert.equal(res.status, 422);
    const seen = await bed.app.requests();
    assert.equal(seen.length, 1);
    const event = bed.log.securityEvents.find((e) => e.event === 'openapi.violation' && e.route === 'api-report');
    assert.ok(event, 'openapi.violation logged');
    assert.equal(event.pointer, '/body/email');
    assert.equal(event.code, 'API_BODY_INVALID');
    assert.ok(!JSON.stringify(bed.log.securityEvents).includes(secret));
    // A valid body in report mode goes as it came too.
    const good = JSON.stringify(CONTACT);
    const ok = await bed.send({ method: 'POST', path: '/v1/contact-records/', host: 'report.test.local', headers: JSON_HEADERS, body: good });
    assert.equal(ok.status, 201);
    assert.equal(ok.json<{ sha256: string }>().sha256, sha256(good));
  });
});

describe('loading and reloading', () => {
  test('SIGHUP reloads a spec; one that no longer parses keeps the previous and says so', async () => {
    assert.equal((await bed.send({ path: '/public/hello' })).status, 200);
    writeFileSync(bed.specFile, '{ "openapi": "3.1.0", "paths": {');
    const failedBefore = bed.log.securityEvents.filter((e) => e.event === 'openapi.reload_failed').length;
    process.kill(process.pid, 'SIGHUP');
    await waitFor(() => bed.log.securityEvents.filter((e) => e.event === 'openapi.reload_failed').length > failedBefore, 'openapi.reload_failed');
    const failed = bed.log.securityEvents.filter((e) => e.event === 'openapi.reload_failed').at(-1);
    assert.equal(failed?.route, 'public-file');
    assert.match(String(failed?.error), /does not parse/);
    assert.equal((await bed.send({ path: '/public/hello' })).status, 200, 'the previous spec is still in force');

    writeFileSync(bed.specFile, JSON.stringify({ ...SMALL_SPEC, paths: { '/public/headers': { get: {} } } }));
    assert.equal(await bed.specs.reload('test'), true);
    assert.equal((await bed.send({ path: '/public/hello' })).status, 404, 'the new spec is in force');
    assert.equal((await bed.send({ path: '/public/headers' })).status, 200);
  });

  test("the real application's spec, with its patterns, passes the backtracking check and loads", async () => {
    const doc = await bed.app.direct<unknown>('/openapi.json');
    assert.match(JSON.stringify(doc), /"pattern"/, 'the spec has patterns to check');
    assert.equal(findUnsafePattern(doc), undefined);
    assert.ok(bed.specs.has('api'));
  });

  test('a spec with a pattern that backtracks exponentially stops startup, naming the route, the pointer and why', async () => {
    const redos = join(bed.dir, 'redos.json');
    writeFileSync(redos, JSON.stringify({ openapi: '3.1.0', info: { title: 't', version: '1' }, paths: { '/companies': { post: { requestBody: { content: { 'application/json': { schema: { $ref: '#/components/schemas/Company' } } } } } } }, components: { schemas: { Company: { type: 'object', properties: { domain: { type: 'string', pattern: '^([a-z0-9]+-?)*[a-z0-9]\\.es$' } } } } } }));
    await assert.rejects(OpenApiSpecs.load([{ name: 'crm-api', openapi: { spec: redos, mode: 'enforce' } }], createMemoryLogger()), (err: unknown) => {
      assert.ok(err instanceof OpenApiSpecError);
      assert.match(err.message, /route crm-api: .*the pattern at #\/components\/schemas\/Company\/properties\/domain\/pattern .* can backtrack exponentially/);
      return true;
    });
  });

  test('a spec that does not load, or has a $ref loop, stops startup with every reason', async () => {
    const loop = join(bed.dir, 'loop.json');
    writeFileSync(loop, JSON.stringify({ openapi: '3.0.3', paths: { '/x': { post: { requestBody: { content: { 'application/json': { schema: { $ref: '#/components/schemas/A' } } } } } } }, components: { schemas: { A: { $ref: '#/components/schemas/A' } } } }));
    const routes = [
      { name: 'loop', openapi: { spec: loop, mode: 'enforce' as const } },
      { name: 'gone', openapi: { spec: `${bed.app.url}/no-such-spec.json`, mode: 'enforce' as const } },
      { name: 'missing', openapi: { spec: join(bed.dir, 'missing.yaml'), mode: 'enforce' as const } },
    ];
    await assert.rejects(OpenApiSpecs.load(routes, createMemoryLogger()), (err: unknown) => {
      assert.ok(err instanceof OpenApiSpecError);
      assert.match(err.message, /route loop: .*\$ref loop: #\/components\/schemas\/A → #\/components\/schemas\/A/);
      assert.match(err.message, /route gone: .*answered 404/);
      assert.match(err.message, /route missing: .*cannot read it/);
      return true;
    });
  });

  test('the gateway process stops at startup on a spec with a $ref loop: one clear line, nothing bound or written', async (t) => {
    const cert = await testCertificate();
    const loop = join(bed.dir, 'process-loop.yaml');
    writeFileSync(loop, 'openapi: 3.1.0\ninfo: { title: t, version: "1" }\npaths:\n  /x:\n    post:\n      requestBody:\n        content:\n          application/json:\n            schema: { $ref: "#/components/schemas/A" }\ncomponents:\n  schemas:\n    A: { $ref: "#/components/schemas/B" }\n    B: { allOf: [{ $ref: "#/components/schemas/A" }] }\n');
    const configFile = join(bed.dir, 'process-gateway.yaml');
    writeFileSync(configFile, `routes:\n  - name: crm-api\n    host: api.test.local\n    upstream: ${bed.app.url}\n    auth: none\n    openapi: { spec: ${loop} }\n`);
    const logDir = join(bed.dir, 'process-logs');
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      env: { ...process.env, GATEWAY_CONFIG: configFile, GATEWAY_ENV: 'development', ...testEnv(cert), LOG_DIR: logDir, DATA_DIR: join(bed.dir, 'process-data'), API_SECRET_KEY: '', DATABASE_URL: '', REDIS_URL: '', GATEWAY_WORKERS: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    t.after(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.stdout.resume();
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 1, stderr);
    assert.match(stderr, /crm-gateway: error: OpenAPI spec that cannot be used:\n {2}- route crm-api: OpenAPI spec .*process-loop\.yaml: \$ref loop: #\/components\/schemas\/A → #\/components\/schemas\/B → #\/components\/schemas\/A/);
    assert.ok(!existsSync(logDir), 'no audit file was opened');
  });

  test('a route with openapi: but no loaded spec does not build (fail closed)', async () => {
    const cert = await testCertificate();
    const config = testConfig(`  - name: api\n    path: /v1\n    upstream: UPSTREAM\n    auth: none\n    openapi: { spec: UPSTREAM/openapi.json }\n`, bed.app.url, cert);
    assert.throws(() => createGateway(config, { log: createMemoryLogger(), metrics: createGatewayMetrics() }), /its OpenAPI spec .* was not loaded/);
  });
});
