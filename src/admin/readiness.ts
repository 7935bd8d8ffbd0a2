import { connect } from 'node:net';
import type { GatewayConfig } from '../config/schema.js';

export interface CheckResult {
  ok: boolean;
  ms: number;
  error?: string;
}

const CHECK_TIMEOUT_MS = 1_500;

function tcpCheck(host: string, port: number): Promise<CheckResult> {
  const start = Date.now();
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (error?: string): void => {
      socket.destroy();
      resolve({ ok: error === undefined, ms: Date.now() - start, ...(error ? { error } : {}) });
    };
    socket.setTimeout(CHECK_TIMEOUT_MS, () => done('timeout'));
    socket.once('connect', () => done());
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code ?? err.message));
  });
}

function hostPort(url: URL, defaultPort: number): [string, number] {
  return [url.hostname.replace(/^\[|\]$/g, ''), url.port ? Number(url.port) : defaultPort];
}

/**
 * Readiness: every upstream accepts a TCP connection, and Redis and PostgreSQL do too when
 * configured (the stores issue replaces these with PING and SELECT 1 through their clients).
 */
export async function readiness(cfg: GatewayConfig): Promise<{ ready: boolean; checks: Record<string, CheckResult> }> {
  const targets = new Map<string, [string, number]>();
  for (const r of cfg.routes) {
    const u = new URL(r.upstream);
    targets.set(`upstream:${u.origin}`, hostPort(u, u.protocol === 'https:' ? 443 : 80));
  }
  if (cfg.stores.redisUrl) targets.set('redis', hostPort(new URL(cfg.stores.redisUrl), 6379));
  if (cfg.stores.databaseUrl) targets.set('postgres', hostPort(new URL(cfg.stores.databaseUrl), 5432));
  const entries = await Promise.all([...targets].map(async ([name, [h, p]]) => [name, await tcpCheck(h, p)] as const));
  const checks = Object.fromEntries(entries);
  return { ready: entries.every(([, r]) => r.ok), checks };
}
