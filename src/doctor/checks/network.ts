import { findingResults } from './policy.js';
import { pass, type Check, type CheckResult } from '../types.js';

/** The host an origin entry names, read as the CORS step reads it (src/policy/cors.ts): case and a root dot do not matter. */
function entryHost(entry: string): string | undefined {
  if (!/^https?:\/\//i.test(entry)) return entry.toLowerCase().replace(/\.$/, '');
  try {
    return new URL(entry).hostname.replace(/\.$/, '');
  } catch {
    return undefined;
  }
}

/** The architecture's development defaults and their like: in production they let local pages call the API. */
function isDevHost(host: string): boolean {
  return host === 'localhost' || host.endsWith('.localhost') || host === '[::1]' || /^127(\.\d{1,3}){3}$/.test(host);
}

function devOrigins(origins: readonly string[]): string[] {
  return origins.filter((o) => {
    const host = entryHost(o);
    return host !== undefined && isDevHost(host);
  });
}

export const corsCheck: Check = (ctx) => {
  if (!ctx.config) return [];
  const out: CheckResult[] = findingResults(ctx, ['cors-wildcard'], 'cors');
  if (ctx.production) {
    const dev = devOrigins(ctx.config.corsOrigins);
    if (dev.length > 0) out.push({ id: 'cors', status: 'WARN', message: `CORS_ORIGINS still allows development origins: ${dev.join(', ')}`, fix: 'set CORS_ORIGINS to the exact origins of your front ends (https://app.example.com)' });
    // Browsers are allowed what each route lists; what a route took from ${CORS_ORIGINS} is named once, above.
    for (const r of ctx.config.routes) {
      const own = devOrigins(r.cors?.origins ?? []).filter((o) => !dev.includes(o));
      if (own.length > 0) out.push({ id: 'cors', status: 'WARN', message: `route ${r.name} still allows development origins: ${own.join(', ')}`, fix: `list the exact origins of your front ends in route ${r.name}'s cors.origins (https://app.example.com)` });
    }
  }
  return out.length > 0 ? out : [pass('cors', `origins: ${ctx.config.corsOrigins.join(', ') || '(none)'}`)];
};

export const trustedProxiesCheck: Check = (ctx) => {
  if (!ctx.config) return [];
  const out = findingResults(ctx, ['trusted-proxies-everything'], 'trusted-proxies');
  return out.length > 0 ? out : [pass('trusted-proxies', ctx.config.trustedProxies.length > 0 ? `X-Forwarded-For believed only from ${ctx.config.trustedProxies.join(', ')}` : 'no proxy is trusted: client addresses come from the socket')];
};
