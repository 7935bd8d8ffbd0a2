import type { RouteConfig } from '../../config/schema.js';
import { DEFAULTS } from '../../config/defaults.js';
import type { CheckResult } from '../types.js';
import { BACKEND_PORTS, LIVE_CHECK_IDS, LIVE_CHECKS, type LiveContext } from './checks.js';
import { reachTarget, type TargetReach } from './target.js';

/** Longest wait of one live probe. */
export const DEFAULT_LIVE_TIMEOUT_MS = 5_000;
/** The gateway's ports when no config says otherwise. */
const DEFAULT_GATEWAY_PORTS = { https: DEFAULTS.httpsPort, http: DEFAULTS.httpPort };

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
  /** Backend ports by name, from the deployment's config; default BACKEND_PORTS. */
  backendPorts?: ReadonlyMap<number, string> | undefined;
  /** The gateway's configured listen ports, for the fix lines. */
  gatewayPorts?: { https: number; http: number } | undefined;
}

/** The first line of the report: where the probes go, from where, and whether anything answered. */
function targetLine(lc: { address: string; port: number }, reach: TargetReach): CheckResult {
  const at = `${lc.address}:${lc.port}`;
  const from = reach.local ? `; ${lc.address} is this machine, so this probes from the gateway's own host, not as an outside client would` : '';
  if (!reach.resolved) return { id: 'live-target', status: 'FAIL', message: `${reach.resolveError ?? 'ENOTFOUND'}: ${lc.address} does not resolve, so nothing could be probed`, fix: 'check the name (DNS record, typo) or give the address: --live https://203.0.113.5' };
  if (!reach.connected) return { id: 'live-target', status: 'FAIL', message: `${reach.connectError ?? 'no connection'}: nothing accepts connections at ${at} (${reach.addresses.join(', ')})${from}`, fix: 'check that the gateway runs, the port is published and the firewall lets it through' };
  return { id: 'live-target', status: reach.local ? 'WARN' : 'PASS', message: `${at} accepts connections (${reach.addresses.join(', ')})${from}`, ...(reach.local ? { fix: 'run doctor --live from another host for the outside view' } : {}) };
}

/** Checks the deployment from outside: what a client, or an attacker, actually meets. */
export async function runLive(opts: LiveOptions): Promise<CheckResult[]> {
  const url = new URL(opts.url);
  if (url.protocol !== 'https:') throw new Error(`--live needs an https:// URL (got ${url.protocol}//)`);
  const address = url.hostname.replace(/^\[|\]$/g, '');
  const port = Number(url.port || 443);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_LIVE_TIMEOUT_MS;
  const reach = await reachTarget(address, port, timeoutMs);
  const out: CheckResult[] = [targetLine({ address, port }, reach)];
  // A name that does not resolve: no probe can say anything, and none may pass.
  if (!reach.resolved) {
    for (const id of new Set(LIVE_CHECK_IDS.values())) out.push({ id, status: 'UNKNOWN', message: `not probed: ${address} does not resolve (${reach.resolveError ?? 'ENOTFOUND'})` });
    return out;
  }
  const lc: LiveContext = {
    url,
    address,
    port,
    routes: opts.routes,
    production: opts.production,
    ca: opts.ca,
    httpUrl: new URL(opts.httpUrl ?? `http://${url.hostname}/`),
    timeoutMs,
    ports: opts.ports,
    backendPorts: opts.backendPorts ?? BACKEND_PORTS,
    gatewayPorts: opts.gatewayPorts ?? DEFAULT_GATEWAY_PORTS,
    reach,
    answers: [],
  };
  for (const check of LIVE_CHECKS) {
    try {
      out.push(...(await check(lc)));
    } catch (err) {
      out.push({ id: LIVE_CHECK_IDS.get(check) ?? check.name, status: 'FAIL', message: `the check could not run: ${(err as Error).message}` });
    }
  }
  return out;
}
