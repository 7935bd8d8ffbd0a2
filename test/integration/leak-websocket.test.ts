import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { WebSocket, WebSocketServer, type ClientOptions } from 'ws';
import { testCertificate } from '../helpers/harness.js';
import { waitFor } from '../helpers/wait.js';

/**
 * 1,000 websocket open/close cycles through the gateway leave its RSS within 10% of where it
 * started, after GC (issue #8). The gateway runs as `src/main.ts` in a child process started
 * with --expose-gc, so the client's memory is not counted; it collects garbage and reports its
 * memory when asked over IPC. Half the sockets are closed by the client, half by the upstream;
 * both ends must be gone afterwards (no half-open tunnels left in the gateway).
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const WARMUP = 200;
const CYCLES = 1_000;
const CONCURRENCY = 20;
const CYCLE_MS = 5_000;

interface Memory {
  rss: number;
  heapUsed: number;
  external: number;
  connections: number;
}

interface GatewayChild {
  readonly port: number;
  /** Full GC in the gateway process (several passes), then its memory and open connections. */
  measure(): Promise<Memory>;
}

/** The gateway (src/main.ts) in a child process with --expose-gc and an IPC `measure` message. */
async function startGcGateway(t: TestContext, upstreamUrl: string): Promise<GatewayChild> {
  const cert = await testCertificate();
  const work = mkdtempSync(join(tmpdir(), 'crm-gw-leak-'));
  t.after(() => rmSync(work, { recursive: true, force: true }));
  writeFileSync(join(work, 'gateway.yaml'), `routes:\n  - name: api\n    host: api.test.local\n    upstream: ${upstreamUrl}\n    auth: none\n    websocket: true\n`);
  const code = `
    const { main } = await import(${JSON.stringify(pathToFileURL(join(ROOT, 'src/main.ts')).href)});
    const running = await main();
    const connections = () => new Promise((r) => running.httpsServer.getConnections((_e, n) => r(n ?? -1)));
    process.on('message', async (m) => {
      if (m !== 'measure') return;
      for (let i = 0; i < 4; i++) {
        globalThis.gc();
        await new Promise((r) => setTimeout(r, 20));
      }
      const u = process.memoryUsage();
      process.send({ rss: u.rss, heapUsed: u.heapUsed, external: u.external, connections: await connections() });
    });
    process.send({ port: running.ports.https });
  `;
  const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: work,
      GATEWAY_CONFIG: join(work, 'gateway.yaml'),
      GATEWAY_ENV: 'development',
      GATEWAY_DOMAIN: 'test.local',
      HTTPS_PORT: '0',
      HTTP_PORT: '0',
      ADMIN_PORT: '0',
      LISTEN_ADDRESS: '127.0.0.1',
      TLS_CERT_FILE: cert.cert,
      TLS_KEY_FILE: cert.key,
      LOG_DIR: join(work, 'logs'),
      LOG_HASH_KEY: 'leak-test-hash-key-0123456789abcdef',
      DATA_DIR: join(work, 'data'),
    },
  });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-20_000)));
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway did not start:\n${stderr}`)), 30_000);
    child.once('message', (m: { port: number }) => {
      clearTimeout(timer);
      resolve(m.port);
    });
    child.once('exit', () => reject(new Error(`gateway exited:\n${stderr}`)));
  });
  return {
    port,
    measure: () =>
      new Promise<Memory>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no memory report within 10 s')), 10_000);
        child.once('message', (m: Memory) => {
          clearTimeout(timer);
          resolve(m);
        });
        child.send('measure');
      }),
  };
}

/** A websocket upstream: greets, echoes, and closes itself when asked to. */
async function wsUpstream(t: TestContext): Promise<{ url: string; wss: WebSocketServer }> {
  const server = http.createServer((_req, res) => res.writeHead(404).end());
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws) => {
    ws.send('hello');
    ws.on('message', (data) => {
      const text = data.toString();
      if (text === 'close-from-upstream') ws.close(1000, 'upstream done');
      else ws.send(text);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(
    () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate();
        wss.close();
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, wss };
}

/** Open, hello, one echo, close (by the client or by the upstream), closed on both ends. */
function cycle(port: number, n: number): Promise<boolean> {
  return new Promise((resolve) => {
    const options: ClientOptions & { servername: string } = { rejectUnauthorized: false, servername: 'api.test.local', headers: { host: 'api.test.local' }, handshakeTimeout: CYCLE_MS };
    const ws = new WebSocket(`wss://127.0.0.1:${port}/live/${n}`, options);
    const timer = setTimeout(() => finish(false), CYCLE_MS);
    let done = false;
    let echoed = false;
    function finish(ok: boolean): void {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (!ok) ws.terminate();
      resolve(ok);
    }
    ws.on('error', () => finish(false));
    ws.on('message', (data) => {
      const text = data.toString();
      if (text === 'hello') ws.send(`echo ${n}`);
      else if (text === `echo ${n}`) {
        echoed = true;
        if (n % 2 === 0) ws.close(1000, 'client done');
        else ws.send('close-from-upstream');
      }
    });
    ws.on('close', () => finish(echoed));
  });
}

async function cycles(port: number, count: number, from: number): Promise<number> {
  let next = 0;
  let failed = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < count) if (!(await cycle(port, from + next++))) failed++;
    }),
  );
  return failed;
}

const MB = 1024 * 1024;
const mb = (b: number): string => `${(b / MB).toFixed(1)} MB`;

test(`${CYCLES} websocket open/close cycles leave the gateway's RSS within 10% after GC, with no tunnel left open`, { timeout: 85_000 }, async (t) => {
  const upstream = await wsUpstream(t);
  const gw = await startGcGateway(t, upstream.url);

  assert.equal(await cycles(gw.port, WARMUP, 0), 0, 'every warm-up cycle completed');
  await waitFor(() => upstream.wss.clients.size === 0, 'the warm-up sockets closed at the upstream', 10_000);
  const before = await gw.measure();
  const started = Date.now();
  assert.equal(await cycles(gw.port, CYCLES, WARMUP), 0, 'every cycle completed');
  const took = Date.now() - started;
  await waitFor(() => upstream.wss.clients.size === 0, `every upstream socket closed (${upstream.wss.clients.size} left)`, 10_000);
  await waitFor(async () => (await gw.measure()).connections === 0, 'the gateway to close every client connection', 10_000);
  const after = await gw.measure();
  t.diagnostic(`${CYCLES} cycles in ${(took / 1000).toFixed(1)} s; RSS ${mb(before.rss)} → ${mb(after.rss)} (${(((after.rss - before.rss) / before.rss) * 100).toFixed(1)}%), heap used ${mb(before.heapUsed)} → ${mb(after.heapUsed)}`);
  assert.ok(after.rss <= before.rss * 1.1, `RSS ${mb(after.rss)} is more than 10% over ${mb(before.rss)}`);
  assert.ok(after.heapUsed <= before.heapUsed * 1.1 + 2 * MB, `heap used ${mb(after.heapUsed)} grew from ${mb(before.heapUsed)}`);
});
