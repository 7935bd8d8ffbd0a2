import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { startTestGateway, type TestGateway } from '../helpers/harness.js';
import { freePort, waitFor } from '../helpers/redis.js';

/**
 * An upstream that refuses, hangs, or resets mid-body, under load (issue #8). Each fault gets a
 * clean, bounded answer (502, 504, or a response cut off where the upstream cut it), the other
 * routes keep serving meanwhile, the process stays up, and once the upstream behaves again the
 * gateway serves it again by itself (no stale pooled sockets, no restart).
 */

/** Longer than any answer may take: a request past it counts as hung. */
const HUNG_MS = 8_000;
const ROUTE_TIMEOUT_MS = 1_000;
const BODY_BYTES = 64 * 1024;

type Mode = 'ok' | 'hang' | 'reset-mid-body' | 'reset-before-headers';

/** An upstream whose behaviour the test switches; `down()` closes its port, `up()` reopens the same one. */
class FlakyUpstream {
  mode: Mode = 'ok';
  /** Requests held by `hang` that the gateway has not torn down yet. */
  readonly held = new Set<http.IncomingMessage>();
  private server: http.Server | undefined;
  private readonly sockets = new Set<Socket>();

  private constructor(readonly port: number) {}

  static async create(t: TestContext, listening = true): Promise<FlakyUpstream> {
    const u = new FlakyUpstream(await freePort());
    if (listening) await u.up();
    t.after(() => u.down());
    return u;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async up(): Promise<void> {
    const server = http.createServer((req, res) => this.handle(req, res));
    server.keepAliveTimeout = 30_000;
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.server = server;
  }

  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    const closed = new Promise<void>((r) => server.close(() => r()));
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    req.resume();
    switch (this.mode) {
      case 'ok':
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BODY_BYTES });
        res.end(Buffer.alloc(BODY_BYTES, 0x61));
        return;
      case 'hang':
        this.held.add(req);
        res.once('close', () => this.held.delete(req));
        return;
      case 'reset-mid-body':
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BODY_BYTES });
        res.write(Buffer.alloc(1024, 0x62));
        setTimeout(() => req.socket.destroy(), 5);
        return;
      case 'reset-before-headers':
        req.socket.destroy();
        return;
    }
  }
}

interface Outcome {
  path: string;
  at: number;
  ms: number;
  status?: number;
  code?: string;
  bytes: number;
  complete: boolean;
  error?: string;
}

function request(gw: TestGateway, agent: https.Agent, path: string): Promise<Outcome> {
  return new Promise((resolve) => {
    const at = Date.now();
    let status: number | undefined;
    let bytes = 0;
    let body = '';
    const done = (o: Partial<Outcome>): void => resolve({ path, at, ms: Date.now() - at, status, bytes, complete: false, ...o });
    const req = https.request({ host: '127.0.0.1', port: gw.port, path, agent, ca: gw.ca, servername: 'api.test.local', headers: { host: 'api.test.local' }, checkServerIdentity: () => undefined }, (res) => {
      status = res.statusCode;
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        if (status !== 200) body += c.toString();
      });
      res.on('end', () => {
        let code: string | undefined;
        if (status !== 200) code = (JSON.parse(body) as { error: { code: string } }).error.code;
        done({ complete: res.complete, code });
      });
      res.on('error', (err) => done({ error: err.message }));
      res.on('aborted', () => done({ error: 'aborted' }));
    });
    req.setTimeout(HUNG_MS, () => req.destroy(new Error('HUNG')));
    req.on('error', (err) => done({ error: err.message }));
    req.end();
  });
}

/** `concurrency` loops on `prefix` until stopped. */
function load(gw: TestGateway, prefix: string, concurrency: number): { outcomes: Outcome[]; stop(): Promise<Outcome[]> } {
  const agent = new https.Agent({ keepAlive: true, maxSockets: concurrency });
  const outcomes: Outcome[] = [];
  let running = true;
  let n = 0;
  const loops = Array.from({ length: concurrency }, async () => {
    while (running) outcomes.push(await request(gw, agent, `${prefix}/${n++}`));
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

async function gatewayFor(t: TestContext, faulty: FlakyUpstream, healthy: FlakyUpstream): Promise<TestGateway> {
  const gw = await startTestGateway(
    `
  - name: faulty
    host: api.test.local
    path: /faulty
    upstream: ${faulty.url}
    auth: none
    timeout: ${ROUTE_TIMEOUT_MS}ms
  - name: healthy
    host: api.test.local
    path: /healthy
    upstream: ${healthy.url}
    auth: none
`,
    {},
    'server: { shutdownTimeout: 2s }',
  );
  t.after(() => gw.close());
  return gw;
}

/**
 * Runs load on the faulty and the healthy route, applies `fault` for `faultMs`, clears it, and
 * waits until the faulty route serves complete 200s again. Returns the outcomes of the fault.
 */
async function underLoad(gw: TestGateway, fault: () => Promise<void>, clear: () => Promise<void>, faultMs = 1_500): Promise<{ during: Outcome[]; healthy: Outcome[]; recoveredMs: number }> {
  const faulty = load(gw, '/faulty', 8);
  const healthy = load(gw, '/healthy', 2);
  await sleep(300);
  const from = Date.now();
  await fault();
  await sleep(faultMs);
  await clear();
  const cleared = Date.now();
  await waitFor(() => faulty.outcomes.filter((o) => o.at > cleared).slice(-8).length === 8 && faulty.outcomes.filter((o) => o.at > cleared).slice(-8).every((o) => o.status === 200 && o.complete), 10_000, 'the faulty route to serve again');
  const recoveredMs = Date.now() - cleared;
  const all = await faulty.stop();
  const healthyOut = await healthy.stop();
  for (const o of [...all, ...healthyOut]) assert.notEqual(o.error, 'HUNG', `${o.path} hung`);
  for (const o of healthyOut) assert.deepEqual([o.status, o.complete, o.bytes], [200, true, BODY_BYTES], `${o.path}: the other route kept serving`);
  return { during: all.filter((o) => o.at >= from + 50 && o.at < cleared - ROUTE_TIMEOUT_MS - 200), healthy: healthyOut, recoveredMs };
}

test('an upstream that refuses connections: 502 at once under load, served again as soon as it listens', async (t) => {
  const faulty = await FlakyUpstream.create(t);
  const gw = await gatewayFor(t, faulty, await FlakyUpstream.create(t));
  const r = await underLoad(
    gw,
    () => faulty.down(),
    () => faulty.up(),
  );
  assert.ok(r.during.length > 0);
  for (const o of r.during) {
    assert.deepEqual([o.status, o.code], [502, 'UPSTREAM_UNAVAILABLE'], `${o.path}: ${o.error ?? ''}`);
    assert.ok(o.ms < 1_000, `${o.path} refused quickly (${o.ms} ms)`);
  }
  t.diagnostic(`${r.during.length} requests refused with 502 while the upstream was down; serving again ${r.recoveredMs} ms after it listened`);
});

test('an upstream that hangs: 504 after the route timeout, the upstream requests torn down, other routes unaffected', async (t) => {
  const faulty = await FlakyUpstream.create(t);
  const gw = await gatewayFor(t, faulty, await FlakyUpstream.create(t));
  const r = await underLoad(
    gw,
    async () => {
      faulty.mode = 'hang';
    },
    async () => {
      faulty.mode = 'ok';
    },
    2_500,
  );
  const timedOut = r.during.filter((o) => o.status === 504);
  assert.ok(timedOut.length >= 8, `every loop timed out at least once (${timedOut.length})`);
  for (const o of r.during) {
    if (o.status === 200) continue; // sent before the fault began
    assert.deepEqual([o.status, o.code], [504, 'UPSTREAM_TIMEOUT']);
    assert.ok(o.ms >= ROUTE_TIMEOUT_MS - 50 && o.ms < ROUTE_TIMEOUT_MS + 1_500, `${o.path} answered at the route timeout (${o.ms} ms)`);
  }
  assert.ok(Math.max(...r.healthy.map((o) => o.ms)) < ROUTE_TIMEOUT_MS, 'the healthy route never waited on the hung one');
  await waitFor(() => faulty.held.size === 0, 5_000, 'every held upstream request torn down by the gateway');
  t.diagnostic(`${timedOut.length} requests answered 504 at ~${ROUTE_TIMEOUT_MS} ms; serving again ${r.recoveredMs} ms after the upstream answered again`);
});

test('an upstream that resets mid-body: the response is cut off where the upstream cut it, never hangs, and the next ones are whole', async (t) => {
  const faulty = await FlakyUpstream.create(t);
  const gw = await gatewayFor(t, faulty, await FlakyUpstream.create(t));
  const r = await underLoad(
    gw,
    async () => {
      faulty.mode = 'reset-mid-body';
    },
    async () => {
      faulty.mode = 'ok';
    },
  );
  const cut = r.during.filter((o) => o.status === 200 && !o.complete);
  assert.ok(cut.length > 0, 'responses were cut off');
  for (const o of r.during) {
    if (o.status === 200 && o.complete) {
      assert.equal(o.bytes, BODY_BYTES, `${o.path}: a complete response is whole`);
      continue;
    }
    // Headers (200) had gone out before the reset: the client sees the body end early, never a hang.
    assert.equal(o.status, 200, `${o.path}: ${o.status} ${o.error ?? ''}`);
    assert.ok(o.bytes < BODY_BYTES, `${o.path}: cut off (${o.bytes} bytes)`);
    assert.ok(o.ms < 2_000, `${o.path} ended quickly (${o.ms} ms)`);
  }
  const logged = gw.log.accessEntries.filter((e) => String(e.path).startsWith('/faulty/') && e.outcome === 'aborted');
  assert.ok(logged.length > 0, 'cut-off responses are logged as aborted');
  t.diagnostic(`${cut.length} responses cut off mid-body; serving again ${r.recoveredMs} ms after the upstream behaved`);
});

test('an upstream that resets before answering: 502 under load, and no dead pooled socket is reused after', async (t) => {
  const faulty = await FlakyUpstream.create(t);
  const gw = await gatewayFor(t, faulty, await FlakyUpstream.create(t));
  const r = await underLoad(
    gw,
    async () => {
      faulty.mode = 'reset-before-headers';
    },
    async () => {
      faulty.mode = 'ok';
    },
  );
  assert.ok(r.during.length > 0);
  for (const o of r.during) {
    if (o.status === 200 && o.complete) continue; // sent before the fault began
    assert.deepEqual([o.status, o.code], [502, 'UPSTREAM_UNAVAILABLE'], `${o.path}: ${o.error ?? ''}`);
  }
  t.diagnostic(`${r.during.filter((o) => o.status === 502).length} requests answered 502; serving again ${r.recoveredMs} ms after`);
});

test('regression: the last request a keep-alive connection may carry (maxRequestsPerSocket) closes it; the next one is not a 503', async (t) => {
  const upstream = await FlakyUpstream.create(t);
  const gw = await gatewayFor(t, upstream, upstream);
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const statuses = new Map<number, number>();
  let connections = 0;
  let closeAt = -1;
  for (let i = 1; i <= 1_005; i++) {
    const { status, fresh, close } = await new Promise<{ status: number; fresh: boolean; close: boolean }>((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port: gw.port, path: `/healthy/${i}`, agent, ca: gw.ca, servername: 'api.test.local', headers: { host: 'api.test.local' }, checkServerIdentity: () => undefined }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, fresh: !req.reusedSocket, close: res.headers.connection === 'close' }));
      });
      req.on('error', reject);
      req.end();
    });
    statuses.set(status, (statuses.get(status) ?? 0) + 1);
    if (fresh) connections++;
    if (close && closeAt < 0) closeAt = i;
  }
  assert.deepEqual([...statuses], [[200, 1_005]], 'no 503 after the per-connection limit');
  assert.equal(closeAt, 1_000, 'the 1000th answer says Connection: close');
  assert.equal(connections, 2, 'the client moved to a new connection once');
});
