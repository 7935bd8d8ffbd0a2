import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { once } from 'node:events';
import { Redis } from 'ioredis';
import { createRedis } from '../../src/stores/redis.js';
import type { GatewayConfig } from '../../src/config/schema.js';
import type { Logger } from '../../src/log/logger.js';
import { freePort } from './ports.js';

export { freePort };

/** The shared Redis of the machine (and of CI). Tests write only keys under their own run id. */
export const SHARED_REDIS_URL = 'redis://127.0.0.1:6379';

/** A name unique to this test run, for route names and key prefixes, so parallel runs don't collide. */
export function runId(prefix = 't'): string {
  return `${prefix}${randomBytes(5).toString('hex')}`;
}

/** The gateway's own Redis client (same options as production), once it is ready. */
export async function gatewayRedis(url: string, log: Logger): Promise<Redis> {
  const redis = await createRedis({ stores: { redisUrl: url } } as GatewayConfig, log);
  if (!redis) throw new Error('no client');
  await waitFor(() => redis.status === 'ready', 10_000, `redis client for ${url} ready`);
  return redis;
}

/** Every key matching `pattern` (SCAN: never KEYS or FLUSH on a shared server). */
export async function listKeys(redis: Redis, pattern: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
    cursor = next;
    found.push(...keys);
  } while (cursor !== '0');
  return found;
}

/** Deletes every key matching `pattern` (SCAN, never KEYS or FLUSH on a shared server). */
export async function deleteKeys(url: string, pattern: string): Promise<number> {
  const admin = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await admin.connect();
  let deleted = 0;
  try {
    let cursor = '0';
    do {
      const [next, keys] = await admin.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) deleted += await admin.del(...keys);
    } while (cursor !== '0');
  } finally {
    admin.disconnect();
  }
  return deleted;
}

/** Polls `check` every 50 ms until it holds; fails after `ms`. */
export async function waitFor(check: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let data = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (c: Buffer) => {
      data += c.toString();
      if (data.includes('\r\n')) done(data.startsWith('+PONG'));
    });
    socket.on('error', () => done(false));
  });
}

/**
 * A private redis-server child on a loopback port of its own, for tests that stop Redis: the
 * shared one is never touched. `stop()` kills it; `start()` brings it back on the same port.
 */
export class RedisServerProcess {
  private child: ChildProcess | undefined;
  private constructor(
    readonly port: number,
    private readonly extraArgs: readonly string[],
  ) {}

  static async start(extraArgs: readonly string[] = []): Promise<RedisServerProcess> {
    const server = new RedisServerProcess(await freePort(), extraArgs);
    await server.start();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    if (this.child) return;
    const child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...this.extraArgs], { stdio: 'ignore' });
    this.child = child;
    child.once('exit', () => {
      if (this.child === child) this.child = undefined;
    });
    await waitFor(() => ping(this.port), 10_000, `redis-server on port ${this.port}`);
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  }
}
