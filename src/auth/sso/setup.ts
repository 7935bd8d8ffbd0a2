import type { GatewayConfig } from '../../config/schema.js';
import { sessionHosts } from '../site-clear.js';

/** The one-login setup: the sign-in host and every session host (lowercase, config order). */
export interface SsoSetup {
  signInHost: string;
  hosts: readonly string[];
}

/**
 * One login across hosts applies when it is on (auth.sso.enabled, the default) and more than
 * one host holds browser sessions; the sign-in host is auth.sso.host, else the first of them.
 */
export function ssoSetup(cfg: GatewayConfig): SsoSetup | undefined {
  const hosts = sessionHosts(cfg);
  if (!cfg.auth.sso.enabled || hosts.length < 2) return undefined;
  return { signInHost: cfg.auth.sso.host ?? (hosts[0] as string), hosts };
}
