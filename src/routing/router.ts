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

/** `/public/x` under `/public` → `/x`; the prefix itself → `/`. */
export function stripPrefix(path: string, prefix: string): string {
  if (prefix === '/' || !underPrefix(path, prefix)) return path;
  const rest = path.slice(prefix.length);
  return rest === '' ? '/' : rest;
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
  return (host, path) =>
    ordered.find((r) => (r.host === undefined || r.host === host) && (r.path === undefined || underPrefix(path, r.path)));
}
