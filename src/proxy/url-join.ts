import { createRequire } from 'node:module';

/**
 * The upstream request target: the upstream URL's base path, then the request's path and
 * query. Paths are only glued (repeated slashes folded into one); the query is kept raw. The
 * gateway hands over paths already normalized, so nothing else needs doing, and doing more
 * would forward a path other than the one routed, checked and logged.
 */
export function joinUpstreamPath(basePath: string, pathAndQuery: string): string {
  const q = pathAndQuery.indexOf('?');
  const path = q < 0 ? pathAndQuery : pathAndQuery.slice(0, q);
  const query = q < 0 ? '' : pathAndQuery.slice(q);
  const joined = (basePath === '' || basePath === '/') && path.startsWith('/') ? path : [basePath, path].filter(Boolean).join('/');
  return `${joined.includes('//') ? joined.replace(/\/{2,}/g, '/') : joined}${query}`;
}

/**
 * http-proxy (still used for websocket handshakes) builds the upstream path with
 * `common.urlJoin`, which rewrites the first `http:/` or `https:/` inside a path to `http://`:
 * `/go/http:/x` would reach the upstream as `/go/http://x`. It reads `common.urlJoin` at call
 * time, so replacing it once with the exact join above fixes every upgrade.
 */
export function installExactUrlJoin(): void {
  const require = createRequire(import.meta.url);
  const common = require('http-proxy/lib/http-proxy/common') as { urlJoin: (...parts: string[]) => string; exactJoin?: boolean };
  if (common.exactJoin) return;
  common.urlJoin = (...parts: string[]): string => {
    const last = parts.pop() ?? '';
    return joinUpstreamPath(parts.filter(Boolean).join('/'), last);
  };
  common.exactJoin = true;
}
