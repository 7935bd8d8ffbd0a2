import { GatewayError } from '../errors.js';
import { IpSet } from '../net/ip.js';
import type { RouteConfig } from '../config/schema.js';
import type { Step } from '../step.js';

/** Refuses clients outside the route's allowlist. An empty list allows every address. */
export function createIpAllowlist(route: RouteConfig): Step | undefined {
  if (route.ipAllowlist.length === 0) return undefined;
  const allowed = new IpSet(route.ipAllowlist);
  return (ctx) => {
    const client = ctx.address?.client;
    if (!client || !allowed.has(client)) throw new GatewayError('IP_DENIED', `client ${client?.address ?? 'unknown'} not in allowlist`);
  };
}
