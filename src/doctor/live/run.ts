import type { RouteConfig } from '../../config/schema.js';
import type { CheckResult } from '../types.js';
import { LIVE_CHECKS, type LiveContext } from './checks.js';

/** Longest wait of one live probe. */
export const DEFAULT_LIVE_TIMEOUT_MS = 5_000;

export interface LiveOptions {
  /** The deployment as clients reach it: `https://example.com` or `https://203.0.113.5:8443`. */
  url: string;
  routes: readonly RouteConfig[];
  production: boolean;
  ca?: string | undefined;
  /** Plain-HTTP address to test the redirect; default `http://<host>/` (port 80). */
  httpUrl?: string | undefined;
  timeoutMs?: number | undefined;
  ports?: readonly number[] | undefined;
}

/** Checks the deployment from outside: what a client, or an attacker, actually meets. */
export async function runLive(opts: LiveOptions): Promise<CheckResult[]> {
  const url = new URL(opts.url);
  if (url.protocol !== 'https:') throw new Error(`--live needs an https:// URL (got ${url.protocol}//)`);
  const lc: LiveContext = {
    url,
    address: url.hostname.replace(/^\[|\]$/g, ''),
    port: Number(url.port || 443),
    routes: opts.routes,
    production: opts.production,
    ca: opts.ca,
    httpUrl: new URL(opts.httpUrl ?? `http://${url.hostname}/`),
    timeoutMs: opts.timeoutMs ?? DEFAULT_LIVE_TIMEOUT_MS,
    ports: opts.ports,
    answers: [],
  };
  const out: CheckResult[] = [];
  for (const check of LIVE_CHECKS) {
    try {
      out.push(...(await check(lc)));
    } catch (err) {
      out.push({ id: check.name, status: 'FAIL', message: `the check could not run: ${(err as Error).message}` });
    }
  }
  return out;
}
