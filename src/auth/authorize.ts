import { GatewayError } from '../errors.js';
import type { GatewayConfig, RouteConfig } from '../config/schema.js';
import type { Step } from '../step.js';
import { bearerChallenge, routeChallenge } from './challenge.js';
import { createMfaCheck } from './mfa/require.js';

/**
 * Requires one of the route's roles (a route without roles needs only an authenticated
 * principal), then a second factor where the route or the user's roles need one (`auth` given).
 */
export function createAuthorize(route: RouteConfig, auth?: GatewayConfig['auth']): Step | undefined {
  if (route.auth === 'none') return undefined;
  const roles = new Set(route.roles);
  const secondFactor = createMfaCheck(route, auth);
  return (ctx) => {
    const p = ctx.principal;
    if (!p) throw new GatewayError('AUTH_REQUIRED', `no principal on route ${route.name}`, { 'www-authenticate': routeChallenge(route, undefined, false) });
    if (roles.size > 0 && !p.roles.some((r) => roles.has(r))) {
      // RFC 6750 §3.1: a bearer token without the needed scope (here: role) is insufficient_scope.
      // No `scope` attribute: it would tell any caller which roles the route takes.
      const headers: Record<string, string> = p.method === 'jwt' ? { 'www-authenticate': bearerChallenge('ROLE_FORBIDDEN') } : {};
      throw new GatewayError('ROLE_FORBIDDEN', `${p.subject} has [${p.roles.join(',')}], route ${route.name} needs one of [${route.roles.join(',')}]`, headers);
    }
    return secondFactor?.(ctx);
  };
}
