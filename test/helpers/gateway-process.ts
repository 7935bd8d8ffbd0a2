import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import https from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { BIN } from './cli.js';
import { testEnv, type TestCertificate } from './harness.js';
import { waitFor } from './wait.js';

/**
 * A gateway as operators run it: `node bin/crm-gateway.js start` (the built dist/, as `npx
 * crm-gateway start`) in a child process with only the given environment. Resolves once it
 * listens; `stop()` sends SIGTERM and waits for the exit.
 */
export interface GatewayProcess {
  readonly port: number;
  /** The admin listener's port (health, metrics, the security overview). */
  readonly adminPort: number;
  readonly child: ChildProcess;
  stderr(): string;
  stop(): Promise<void>;
}

export async function startGatewayProcess(cert: TestCertificate, env: Record<string, string>): Promise<GatewayProcess> {
  const child = spawn(process.execPath, [BIN, 'start'], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', GATEWAY_ENV: 'development', LOG_HASH_KEY: 'gateway-process-hash-key-0123456789', ...testEnv(cert), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  child.stdout?.resume();
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  let port = 0;
  await waitFor(
    () => {
      const m = /"message":"gateway listening".*?"https":(\d+)/.exec(stderr);
      if (m) port = Number(m[1]);
      return port > 0 || child.exitCode !== null;
    },
    'the gateway to listen',
    30_000,
  );
  if (port === 0) throw new Error(`the gateway did not start:\n${stderr.slice(-3000)}`);
  const adminPort = Number(/"message":"gateway listening".*?"admin":"[^"]*:(\d+)"/.exec(stderr)?.[1] ?? 0);
  return {
    port,
    adminPort,
    child,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

export interface PlainResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  json<T = Record<string, unknown>>(): T;
}

/** One HTTPS request to a gateway on loopback, optionally from another loopback address (a "proxy"). */
export function request(
  port: number,
  ca: string,
  opts: { host: string; path?: string; method?: string; headers?: Record<string, string>; body?: string; localAddress?: string },
): Promise<PlainResponse> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path: opts.path ?? '/',
        method: opts.method ?? 'GET',
        servername: opts.host,
        headers: { host: opts.host, ...opts.headers },
        ca,
        agent: false,
        ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: <T>() => JSON.parse(body) as T });
        });
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Every JSON line of a gateway's `stream` files (access, security, app) in LOG_DIR, CLI files apart. */
export function logLines(dir: string, stream: 'access' | 'security' | 'app'): Record<string, unknown>[] {
  if (!existsSync(dir)) return [];
  const out: Record<string, unknown>[] = [];
  for (const f of readdirSync(dir).sort()) {
    // `access-2026-12-06.log`, or `access.<instance>-…` when processes share the folder; not the CLI's `access.cli-…`.
    if (!new RegExp(`^${stream}(\\.[A-Za-z0-9_-]+)?-\\d{4}-\\d{2}-\\d{2}\\.log$`).test(f) || f.startsWith(`${stream}.cli-`)) continue;
    for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        out.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // a line being written
      }
    }
  }
  return out;
}
