import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { testCertificate } from '../helpers/harness.js';
import { waitFor } from '../helpers/wait.js';

/**
 * 10,000 client-aborted requests leave the gateway's RSS within 10% of where it started, after
 * GC (issue #8; http-proxy alone leaks on aborted requests: node-http-proxy #1586). The gateway
 * runs as `src/main.ts` in a child process started with --expose-gc, so the client's own
 * memory is not counted; it collects garbage and reports its memory when asked over IPC.
 * Half the clients abort while the upstream holds their request, half in the middle of the
 * response body; each time the upstream's request must be torn down too.
 */

const WARMUP = 2_000;
const ABORTS = 10_000;
const CONCURRENCY = 50;
/** Longest one abort cycle may take before it counts as failed. */
const CYCLE_MS = 5_000;

import { startGcGateway } from '../helpers/gc-gateway.js';

/** An upstream that never finishes: `/hold/*` never answers, `/body/*` sends 1 KB of 64 KB. */
async function holdingUpstream(t: TestContext): Promise<{ url: string; open: Set<string>; arrived(path: string): Promise<void> }> {
  const open = new Set<string>();
  const waiting = new Map<string, () => void>();
  const seen = new Set<string>();
  const server = http.createServer((req, res) => {
    const path = req.url ?? '';
    open.add(path);
    res.once('close', () => open.delete(path));
    if (path.startsWith('/body/')) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': 64 * 1024 });
      res.write(Buffer.alloc(1024, 0x61));
    }
    seen.add(path);
    waiting.get(path)?.();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    open,
    arrived: (path) =>
      seen.has(path)
        ? Promise.resolve()
        : new Promise((resolve) =>
            waiting.set(path, () => {
              waiting.delete(path);
              seen.delete(path);
              resolve();
            }),
          ),
  };
}

/**
 * One aborted request on a fresh TLS connection (resuming the last session, to spend the time
 * on aborts rather than handshakes): `/hold/n` is aborted once the upstream has it, `/body/n`
 * once the first body bytes arrived. Resolves true when aborted as planned.
 */
function abortOnce(port: number, ca: string, path: string, upstream: { arrived(p: string): Promise<void> }, session: { value?: Buffer }): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca, servername: 'api.test.local', checkServerIdentity: () => undefined, ...(session.value ? { session: session.value } : {}) });
    const timer = setTimeout(() => finish(false), CYCLE_MS);
    let done = false;
    function finish(ok: boolean): void {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    }
    socket.on('session', (s: Buffer) => (session.value = s));
    socket.on('error', () => finish(false));
    socket.once('secureConnect', () => socket.write(`GET ${path} HTTP/1.1\r\nHost: api.test.local\r\n\r\n`));
    if (path.startsWith('/hold/')) void upstream.arrived(path).then(() => finish(true));
    else {
      let got = '';
      socket.on('data', (c: Buffer) => {
        got += c.toString('latin1');
        const head = got.indexOf('\r\n\r\n');
        if (head >= 0 && got.length > head + 4) finish(got.startsWith('HTTP/1.1 200'));
      });
    }
  });
}

async function abortMany(port: number, ca: string, count: number, from: number, upstream: { arrived(p: string): Promise<void> }): Promise<number> {
  const session: { value?: Buffer } = {};
  let next = 0;
  let failed = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < count) {
        const n = from + next++;
        if (!(await abortOnce(port, ca, `/${n % 2 === 0 ? 'hold' : 'body'}/${n}`, upstream, session))) failed++;
      }
    }),
  );
  return failed;
}

const MB = 1024 * 1024;
const mb = (b: number): string => `${(b / MB).toFixed(1)} MB`;

test(`${ABORTS} client-aborted requests leave the gateway's RSS within 10% after GC, and every upstream request torn down`, { timeout: 85_000 }, async (t) => {
  const upstream = await holdingUpstream(t);
  const gw = await startGcGateway(t, upstream.url);
  const ca = readFileSync((await testCertificate()).cert, 'utf8');

  assert.equal(await abortMany(gw.port, ca, WARMUP, 0, upstream), 0, 'every warm-up request aborted as planned');
  await waitFor(() => upstream.open.size === 0, 'the warm-up upstream requests torn down', 10_000);
  const before = await gw.measure();
  const started = Date.now();
  const failed = await abortMany(gw.port, ca, ABORTS, WARMUP, upstream);
  const took = Date.now() - started;
  assert.equal(failed, 0, 'every request aborted as planned');
  // node-http-proxy #1586: the upstream request of an aborted client request is torn down.
  await waitFor(() => upstream.open.size === 0, `every upstream request torn down (${upstream.open.size} left)`, 10_000);
  await waitFor(async () => (await gw.measure()).connections === 0, 'the gateway to close every client connection', 10_000);
  const after = await gw.measure();
  t.diagnostic(`${ABORTS} aborts in ${(took / 1000).toFixed(1)} s; RSS ${mb(before.rss)} → ${mb(after.rss)} (${(((after.rss - before.rss) / before.rss) * 100).toFixed(1)}%), heap used ${mb(before.heapUsed)} → ${mb(after.heapUsed)}`);
  assert.ok(after.rss <= before.rss * 1.1, `RSS ${mb(after.rss)} is more than 10% over ${mb(before.rss)}`);
  assert.ok(after.heapUsed <= before.heapUsed * 1.1 + 2 * MB, `heap used ${mb(after.heapUsed)} grew from ${mb(before.heapUsed)}`);
});
