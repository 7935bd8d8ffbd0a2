import { GatewayError } from '../errors.js';
import type { RouteConfig } from '../config/schema.js';

/**
 * True when `path` is `prefix` or lies below it (`/public` covers `/public/x`, not `/publics`).
 * Path parameters (`;x` after a segment) are ignored here, because Jetty and Tomcat ignore
 * them: `/admin;x/y` must meet the `/admin` route's policy, not a looser one.
 */
export function underPrefix(path: string, prefix: string): boolean {
  if (prefix === '/') return true;
  const p = path.includes(';') ? path.replace(/;[^/]*/g, '') : path;
  return p === prefix || p.startsWith(`${prefix}/`);
}

/** `underPrefix` for an upstream that keeps `;params` as part of the segment. */
function underPrefixLiterally(path: string, prefix: string): boolean {
  return prefix === '/' || path === prefix || path.startsWith(`${prefix}/`);
}

/**
 * `/public/x` under `/public` → `/x`; the prefix itself → `/`. The prefix's segments are cut
 * whole, with any `;params` they carry: cutting by the prefix's length would, for
 * `/svc;xxadmin/v1/users` under `/svc/v1`, leave the parameter's tail as the first upstream
 * segment (`/admin/v1/users`), a path outside what the route maps.
 */
export function stripPrefix(path: string, prefix: string): string {
  if (prefix === '/' || !underPrefix(path, prefix)) return path;
  // Parameters never contain '/', so the path has a segment for each of the prefix's.
  const depth = prefix.split('/').length;
  return `/${path.split('/').slice(depth).join('/')}`;
}

/**
 * Routes in match order: a route naming the host beats one that does not, then the longest
 * path prefix wins. Order is fixed at startup, so matching is a first-hit scan.
 */
export function createRouter<R extends RouteConfig>(routes: readonly R[]): (host: string, path: string) => R | undefined {
  const ordered = [...routes].sort((a, b) => {
    const hostRank = Number(b.host !== undefined) - Number(a.host !== undefined);
    if (hostRank !== 0) return hostRank;
    return (b.path ?? '').length - (a.path ?? '').length;
  });
  const find = (host: string, path: string, within = underPrefix): R | undefined =>
    ordered.find((r) => (r.host === undefined || r.host === host) && (r.path === undefined || within(path, r.path)));
  return (host, path) => {
    const route = find(host, path);
    // `;params` are ignored above, as Jetty and Tomcat do; uvicorn and most others keep them in
    // the segment (`/public;/v1/x` is not under `/public` for FastAPI). When the two readings
    // pick different routes, the gateway cannot know which one the upstream will serve: refuse.
    if (path.includes(';') && find(host, path, underPrefixLiterally) !== route) {
      throw new GatewayError('PATH_REJECTED', `path parameter in ${path} would reach another route where ;params are kept`);
    }
    // A kept `%2F` is one segment here, but an upstream that decodes it (Starlette, most
    // frameworks) serves `/admin%2Fusers` as `/admin/users`: a route that allows encoded
    // slashes must not become a way around a stricter route below it.
    if (path.includes('%2F') && find(host, asDecodedSlashes(path)) !== route) {
      throw new GatewayError('PATH_REJECTED', `encoded slash in ${path} would reach another route once decoded`);
    }
    return route;
  };
}

/** The path as an upstream that decodes `%2F` and merges slashes reads it. */
function asDecodedSlashes(path: string): string {
  return path.replace(/%2F/g, '/').replace(/\/{2,}/g, '/');
}
