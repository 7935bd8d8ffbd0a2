import type { GatewayConfig, RouteConfig } from '../../config/schema.js';
import { createRouter } from '../../routing/router.js';
import type { Factor } from '../sessions/types.js';

/**
 * Factors that are a second factor. A passkey (`webauthn`) counts alone too: the gateway asks
 * for user verification, so it is the device plus its PIN or biometric, two factors in one.
 */
const SECOND_FACTORS: ReadonlySet<Factor> = new Set(['totp', 'recovery', 'webauthn']);

export function provedSecondFactor(factors: readonly Factor[] | undefined): boolean {
  return (factors ?? []).some((f) => SECOND_FACTORS.has(f));
}

/** Whether a user with `roles` needs a second factor for any session at all (`auth.mfa.requiredRoles`). */
export function rolesRequireMfa(roles: readonly string[], auth: GatewayConfig['auth']): boolean {
  const required = auth.mfa.requiredRoles;
  return roles.some((r) => required.includes(r));
}

/**
 * Whether the route a return URL leads to has `mfa: required`: asked at sign-in, so a browser sent
 * to sign in again by that route's step-up comes back with the second factor. `thisHost` resolves
 * a relative return path.
 */
export function returnRouteRequiresMfa(cfg: GatewayConfig): (returnTo: string, thisHost: string) => boolean {
  const match = createRouter(cfg.routes);
  const any = cfg.routes.some((r: RouteConfig) => r.mfa === 'required');
  return (returnTo, thisHost) => {
    if (!any) return false;
    try {
      const url = new URL(returnTo, `https://${thisHost}`);
      return match(url.hostname, url.pathname)?.mfa === 'required';
    } catch {
      return false;
    }
  };
}
