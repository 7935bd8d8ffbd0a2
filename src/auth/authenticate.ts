import { GatewayError } from '../errors.js';
import type { RouteConfig } from '../config/schema.js';
import type { GatewayDeps } from '../deps.js';
import type { Step } from '../step.js';
import { routeChallenge } from './challenge.js';
import { createTokenAuthenticate } from './request-auth.js';

/**
 * Authentication for a route. `auth: none` needs nothing. Until a method is enabled, a route
 * that asks for it refuses every request, so a config never opens a door the gateway cannot
 * guard.
 */
export function createAuthenticate(route: RouteConfig, deps: GatewayDeps): Step | undefined {
  switch (route.auth) {
    case 'none':
      return undefined;
    case 'whatsapp':
      // The signature is checked over the raw body by the route's handler (src/webhook/).
      return deps.whatsapp ? deps.whatsapp.authenticate(route) : unavailable(route);
    case 'jwt':
    case 'session':
    case 'jwt-or-session':
      return deps.auth ? createTokenAuthenticate(route, deps.auth, deps.log) : unavailable(route);
  }
}

function unavailable(route: RouteConfig): Step {
  // The challenge the route would take once enabled (a whatsapp route gets the registry's backstop).
  const headers: Record<string, string> = route.auth === 'whatsapp' ? {} : { 'www-authenticate': routeChallenge(route, undefined, false) };
  return () => {
    throw new GatewayError('AUTH_UNAVAILABLE', `route ${route.name} needs auth ${route.auth}, which this build does not provide`, headers);
  };
}
