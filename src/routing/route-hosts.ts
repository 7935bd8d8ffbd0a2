import type { RouteConfig } from '../config/schema.js';

/**
 * The hosts the routes name, each once, in config order. A route without a host answers on any
 * name and adds none here: each caller decides what stands for it (the domain, or nothing).
 */
export function routeHosts(routes: readonly Pick<RouteConfig, 'host'>[]): ReadonlySet<string> {
  return new Set(routes.flatMap((r) => (r.host ? [r.host] : [])));
}
