import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { testCertificate, testEnv } from '../helpers/harness.js';
import { startEchoUpstream } from '../../src/demo/echo-upstream.js';
import { RATE_LIMIT_KEY_PREFIX } from '../../src/ratelimit/index.js';
import { deleteKeys, runId, SHARED_REDIS_URL, waitFor } from '../helpers/redis.js';

type Line = Record<string, unknown>;

/** Starting three tsx processes on a busy 2-core machine can be slow; every wait is bounded. */
const START_WAIT_MS = 90_000;
const WAIT_MS = 30_000;

interface Answer {
  reused: boolean;
  session: Buffer | undefined;
  requestId: string;
  status: number;
}

/** One request on a fresh TLS connection, offering `session` for resumption. */
function exchange(port: number, ca: string, session?: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let latest: Buffer | undefined;
    let reused = false;
    const socket = tls.connect({ host: '127.0.0.1', port, ca, servername: 'api.test.local', ...(session ? { session } : {}) }, () => {
      reused = socket.isSessionReused();
      socket.write('GET /who HTTP/1.1\r\nHost: api.test.local\r\nConnection: close\r\n\r\n');
    });
    socket.on('session', (s: Buffer) => {
      latest = s;
    });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(new Error('no answer in time')), WAIT_MS);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      const raw = Buffer.concat(chunks).toString('latin1');
      const requestId = /\r\nx-request-id: ([^\r\n]+)/i.exec(raw)?.[1] ?? '';
      resolve({ reused, session: latest ?? session, requestId, status: Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? 0) });
    });
  });
}

test('GATEWAY_WORKERS=2: shared ticket keys (resumption across workers), shared limits, restart of a dead worker, graceful SIGTERM', { timeout: 240_000 }, async (t) => {
  const cert = await testCertificate();
  const ca = readFileSync(cert.cert, 'utf8');
  const upstream = await startEchoUpstream('cluster-upstream');
  t.after(() => upstream.close());
  const dir = mkdtempSync(join(tmpdir(), 'crm-gw-cluster-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const name = runId('cl');
  t.after(async () => {
    await deleteKeys(SHARED_REDIS_URL, `${RATE_LIMIT_KEY_PREFIX}r:${name}:*`);
  });
  writeFileSync(
    join(dir, 'gateway.yaml'),
    `routes:\n  - name: ${name}\n    host: api.test.local\n    upstream: ${upstream.url}\n    auth: none\n    rateLimit: { window: 1m, max: 6 }\n`,
  );

  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: new URL('../..', import.meta.url).pathname,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH,
      GATEWAY_CONFIG: join(dir, 'gateway.yaml'),
      GATEWAY_WORKERS: '2',
      ...testEnv(cert),
      REDIS_URL: SHARED_REDIS_URL,
      DATA_DIR: join(dir, 'data'),
      LOG_DIR: join(dir, 'logs'),
    },
  });
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const lines: Line[] = [];
  const collect = (stream: NodeJS.ReadableStream): void => {
    let buffered = '';
    stream.on('data', (c: Buffer) => {
      buffered += c.toString();
      const parts = buffered.split('\n');
      buffered = parts.pop() ?? '';
      for (const p of parts) {
        try {
          lines.push(JSON.parse(p) as Line);
        } catch {
          lines.push({ text: p });
        }
      }
    });
  };
  collect(child.stdout);
  collect(child.stderr);
  const where = (pred: (l: Line) => boolean): Line[] => lines.filter(pred);
  const listening = (): Line[] => where((l) => l.message === 'gateway listening');

  await waitFor(() => listening().length >= 2 || child.exitCode !== null, START_WAIT_MS, 'two workers listening');
  assert.equal(child.exitCode, null, JSON.stringify(lines.slice(-10)));
  const ports = new Set(listening().map((l) => l.https));
  assert.equal(ports.size, 1, 'both workers serve the same port');
  const port = Number([...ports][0]);
  assert.deepEqual(new Set(listening().map((l) => l.worker)).size, 2);

  // Access lines go to the audit files, one chain per worker (`access.w<id>-<day>.log`).
  const logDir = join(dir, 'logs');
  const workerOf = async (requestId: string): Promise<string | undefined> => {
    let found: string | undefined;
    const look = (): boolean => {
      const files = existsSync(logDir) ? readdirSync(logDir).filter((f) => /^access\.w\d+-.*\.log$/.test(f)) : [];
      found = files.find((f) => readFileSync(join(logDir, f), 'utf8').includes(requestId))?.split('-')[0];
      return found !== undefined;
    };
    await waitFor(look, WAIT_MS, `access line of ${requestId}`);
    return found;
  };

  await t.test('a TLS session from one worker is resumed by the other', async () => {
    const first = await exchange(port, ca);
    assert.equal(first.status, 200);
    assert.equal(first.reused, false);
    assert.ok(first.session, 'the server issued a session ticket');
    const firstWorker = await workerOf(first.requestId);
    let other: string | undefined;
    for (let i = 0; i < 20 && other === undefined; i++) {
      const again = await exchange(port, ca, first.session);
      assert.equal(again.reused, true, `connection ${i + 1} resumed the session`);
      const w = await workerOf(again.requestId);
      if (w !== firstWorker) other = w;
    }
    assert.ok(other !== undefined, 'a resumed connection landed on the other worker');
  });

  await t.test('both workers count against one limit (Redis)', async () => {
    const before = upstream.seen.length;
    const answers: Answer[] = [];
    for (let i = 0; i < 10; i++) answers.push(await exchange(port, ca));
    const passed = answers.filter((a) => a.status === 200).length;
    // 6 per minute for this route; the resumption test above spent some of it already.
    assert.ok(passed <= 6, `${passed} passed`);
    assert.equal(answers.filter((a) => a.status === 429).length, 10 - passed);
    assert.equal(upstream.seen.length - before, passed);
    const workers = new Set(await Promise.all(answers.map((a) => workerOf(a.requestId))));
    assert.equal(workers.size, 2, 'the refusals and passes came from both workers');
  });

  await t.test('a worker that dies is restarted', async () => {
    const started = where((l) => l.message === 'worker started');
    assert.equal(started.length, 2);
    const victim = Number(started[0]?.pid);
    process.kill(victim, 'SIGKILL');
    await waitFor(() => where((l) => l.message === 'worker died; restarting it').length === 1, WAIT_MS, 'the primary notices');
    await waitFor(() => listening().length >= 3, START_WAIT_MS, 'a new worker listening');
    const now = where((l) => l.message === 'worker started').map((l) => Number(l.pid));
    assert.equal(now.length, 3);
    assert.ok(!now.slice(2).includes(victim));
    const res = await exchange(port, ca);
    assert.ok(res.status === 200 || res.status === 429);
  });

  await t.test('SIGTERM to the primary stops every worker gracefully and exits 0', async () => {
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), WAIT_MS);
    const [code, signal] = await exited;
    clearTimeout(timer);
    assert.equal(signal, null);
    assert.equal(code, 0, JSON.stringify(lines.slice(-8)));
    assert.equal(where((l) => l.message === 'gateway stopped').length, 2, 'each live worker drained and stopped');
    assert.equal(where((l) => l.message === 'all workers stopped').length, 1);
  });
});
