import { GatewayError } from '../errors.js';
import type { RouteConfig } from '../config/schema.js';
import type { ParsedIp } from '../net/ip.js';
import type { Step } from '../step.js';

/** IPv6 clients are counted per /64: one host usually holds a whole /64. */
const IPV6_GROUP_HEXTETS = 4;
const SWEEP_EVERY_MS = 60_000;

export function rateLimitKeyForIp(ip: ParsedIp): string {
  if (ip.family === 'ipv4') return ip.address;
  const full = expandIpv6(ip.address);
  return `${full.slice(0, IPV6_GROUP_HEXTETS).join(':')}::/64`;
}

function expandIpv6(addr: string): string[] {
  const [head = '', tail = ''] = addr.split('::');
  const h = head ? head.split(':') : [];
  const t = addr.includes('::') && tail ? tail.split(':') : [];
  const fill = addr.includes('::') ? Array(8 - h.length - t.length).fill('0') : [];
  return [...h, ...fill, ...t].map((x) => x.padStart(4, '0'));
}

/**
 * A fixed-window limiter held in this process: the embedded store for a single instance.
 * The rate-limit issue replaces it with Redis-backed limits shared by every instance.
 */
export function createMemoryRateLimit(route: RouteConfig, _deps?: unknown, now: () => number = Date.now): Step | undefined {
  const limit = route.rateLimit;
  if (!limit) return undefined;
  const windows = new Map<string, { count: number; resetAt: number }>();
  let nextSweep = now() + SWEEP_EVERY_MS;
  const policy = `${limit.max};w=${Math.ceil(limit.window / 1000)}`;

  return (ctx) => {
    const t = now();
    if (t >= nextSweep) {
      for (const [k, w] of windows) if (w.resetAt <= t) windows.delete(k);
      nextSweep = t + SWEEP_EVERY_MS;
    }
    const who =
      limit.by === 'user' && ctx.principal ? `user:${ctx.principal.subject}` : `ip:${ctx.address ? rateLimitKeyForIp(ctx.address.client) : 'unknown'}`;
    const key = `${route.name}|${who}`;
    let w = windows.get(key);
    if (!w || w.resetAt <= t) {
      w = { count: 0, resetAt: t + limit.window };
      windows.set(key, w);
    }
    w.count++;
    const resetSeconds = Math.max(0, Math.ceil((w.resetAt - t) / 1000));
    ctx.responseHeaders['ratelimit-policy'] = policy;
    ctx.responseHeaders.ratelimit = `limit=${limit.max}, remaining=${Math.max(0, limit.max - w.count)}, reset=${resetSeconds}`;
    if (w.count > limit.max) {
      throw new GatewayError('RATE_LIMITED', `${who} over ${limit.max} per ${limit.window} ms`, { 'retry-after': String(resetSeconds) });
    }
  };
}
