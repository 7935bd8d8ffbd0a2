import { isIP } from 'node:net';
import type { GatewayConfig } from '../../config/schema.js';
import { routeHosts } from '../../routing/route-hosts.js';

export interface AcmeHosts {
  /** The names the one certificate covers: every routed host a public CA can validate, sorted. */
  readonly names: readonly string[];
  /** Route hosts left out, with why (a CA never issues for them). */
  readonly skipped: readonly { host: string; why: string }[];
}

/**
 * The route hosts, less what no public CA validates: IP literals (Let's Encrypt issues for IPs
 * only under a short-lived profile, which acme-client does not ask for) and loopback names
 * (`localhost`, `*.localhost`; RFC 6761 keeps them off the public DNS).
 */
export function acmeHosts(cfg: GatewayConfig): AcmeHosts {
  const names = new Set<string>();
  const skipped: { host: string; why: string }[] = [];
  for (const host of routeHosts(cfg.routes)) {
    const bare = host.replace(/^\[|\]$/g, '');
    if (isIP(bare) !== 0) skipped.push({ host, why: 'an IP address' });
    else if (host === 'localhost' || host.endsWith('.localhost')) skipped.push({ host, why: 'a loopback name' });
    else names.add(host);
  }
  // Routes without a host answer on any name: the domain itself stands for them.
  if (cfg.routes.some((r) => !r.host) && !names.has(cfg.domain) && isIP(cfg.domain) === 0 && cfg.domain !== 'localhost' && !cfg.domain.endsWith('.localhost')) names.add(cfg.domain);
  return { names: [...names].sort(), skipped };
}
