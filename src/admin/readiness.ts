import { probePort } from '../net/probe-port.js';
import type { Redis } from 'ioredis';
import type pg from 'pg';
import type { GatewayConfig } from '../config/schema.js';
import type { Logger } from '../log/logger.js';

export interface CheckResult {
  ok: boolean;
  ms: number;
  error?: string;
}

/** One route's upstream, as seen from the gateway right now. */
export interface UpstreamHealth extends CheckResult {
  readonly route: string;
  readonly upstream: string;
}

/** What the gateway needs to serve at all: its listener, its stores, its audit log. */
export interface ServingState {
  readonly draining: () => boolean;
  /** The public HTTPS listener is accepting connections. */
  readonly listening: () => boolean;
  readonly redis?: Redis | undefined;
  readonly postgres?: pg.Pool | undefined;
  readonly log?: Pick<Logger, 'accepting'> | undefined;
}

export interface ReadinessReport {
  readonly ready: boolean;
  readonly status: 'ready' | 'not ready' | 'draining';
  /** The gateway's own needs; any one failing makes it not ready. */
  readonly checks: Record<string, CheckResult>;
  /** Reported beside readiness, never part of it: one upstream down is that route's problem. */
  readonly upstreams: Record<string, UpstreamHealth>;
}

const CHECK_TIMEOUT_MS = 1_500;

async function tcpCheck(host: string, port: number): Promise<CheckResult> {
  const start = Date.now();
  const r = await probePort(host, port, CHECK_TIMEOUT_MS);
  const error = r.state === 'open' ? undefined : r.state === 'refused' ? 'ECONNREFUSED' : r.state === 'timeout' ? 'timeout' : r.code;
  return { ok: error === undefined, ms: Date.now() - start, ...(error ? { error } : {}) };
}

/** A store's own round trip (PING, SELECT 1), bounded like the TCP checks. */
async function clientCheck(run: () => Promise<unknown>): Promise<CheckResult> {
  const start = Date.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      run(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('timeout')), CHECK_TIMEOUT_MS);
      }),
    ]);
    return { ok: true, ms: Date.now() - start };
  } catch (err) {
    return { ok: false, ms: Date.now() - start, error: (err as Error).message };
  } finally {
    clearTimeout(timer);
  }
}

function hostPort(url: URL, defaultPort: number): [string, number] {
  return [url.hostname.replace(/^\[|\]$/g, ''), url.port ? Number(url.port) : defaultPort];
}

/** Every route's upstream accepts a TCP connection (one probe per distinct origin). */
export async function upstreamHealth(cfg: GatewayConfig): Promise<UpstreamHealth[]> {
  const probes = new Map<string, Promise<CheckResult>>();
  const rows = cfg.routes.map((r) => {
    const u = new URL(r.upstream);
    let probe = probes.get(u.origin);
    if (!probe) {
      probe = tcpCheck(...hostPort(u, u.protocol === 'https:' ? 443 : 80));
      probes.set(u.origin, probe);
    }
    return probe.then((c): UpstreamHealth => ({ route: r.name, upstream: u.origin, ...c }));
  });
  return Promise.all(rows);
}

/** The stores the gateway was configured with: through its clients when it has them. */
async function storeChecks(cfg: GatewayConfig, s: ServingState): Promise<Record<string, CheckResult>> {
  const checks: [string, Promise<CheckResult>][] = [];
  if (s.redis) {
    const redis = s.redis;
    checks.push(['redis', clientCheck(() => redis.ping())]);
  } else if (cfg.stores.redisUrl) checks.push(['redis', tcpCheck(...hostPort(new URL(cfg.stores.redisUrl), 6379))]);
  if (s.postgres) {
    const postgres = s.postgres;
    checks.push(['postgres', clientCheck(() => postgres.query('SELECT 1'))]);
  } else if (cfg.stores.databaseUrl) checks.push(['postgres', tcpCheck(...hostPort(new URL(cfg.stores.databaseUrl), 5432))]);
  return Object.fromEntries(await Promise.all(checks.map(async ([name, p]) => [name, await p] as const)));
}

/**
 * Readiness says whether this gateway can serve: not draining, its public listener open, its
 * stores answering, its audit log taking lines (when AUDIT_FAIL_CLOSED would refuse without it).
 * An upstream that is down is reported per route beside it and does not make the gateway
 * unready: a load balancer would otherwise pull every route out because one application is
 * restarting, and the routes still up would go down with it (issue 18, item 10).
 */
export async function readiness(cfg: GatewayConfig, s: ServingState): Promise<ReadinessReport> {
  const [stores, upstreams] = await Promise.all([storeChecks(cfg, s), upstreamHealth(cfg)]);
  const listening = s.listening();
  const checks: Record<string, CheckResult> = { listener: { ok: listening, ms: 0, ...(listening ? {} : { error: 'not listening' }) }, ...stores };
  if (s.log?.accepting) {
    const ok = s.log.accepting();
    checks['audit-log'] = { ok, ms: 0, ...(ok ? {} : { error: 'log lines cannot be written (AUDIT_FAIL_CLOSED)' }) };
  }
  const draining = s.draining();
  const ready = !draining && Object.values(checks).every((c) => c.ok);
  return { ready, status: draining ? 'draining' : ready ? 'ready' : 'not ready', checks, upstreams: Object.fromEntries(upstreams.map((u) => [u.route, u])) };
}
