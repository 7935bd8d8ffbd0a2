import { createRequire } from 'node:module';

/**
 * http-proxy builds the upstream path with `common.urlJoin`, which rewrites the first `http:/`
 * or `https:/` inside a path to `http://`: `/go/http:/x` would reach the upstream as
 * `/go/http://x`, a different path from the one routed, checked and logged. The gateway
 * hands it paths already normalized, so the join only needs to glue the target's base path
 * and the request path. http-proxy reads `common.urlJoin` at call time, so replacing it once
 * fixes every request.
 */
export function installExactUrlJoin(): void {
  const require = createRequire(import.meta.url);
  const common = require('http-proxy/lib/http-proxy/common') as { urlJoin: (...parts: string[]) => string; exactJoin?: boolean };
  if (common.exactJoin) return;
  common.urlJoin = (...parts: string[]): string => {
    const last = parts.pop() ?? '';
    const q = last.indexOf('?');
    const lastPath = q < 0 ? last : last.slice(0, q);
    const query = q < 0 ? '' : last.slice(q);
    const path = [...parts, lastPath]
      .filter(Boolean)
      .join('/')
      .replace(/\/{2,}/g, '/');
    return `${path}${query}`;
  };
  common.exactJoin = true;
}
