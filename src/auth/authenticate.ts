import { GatewayError } from '../errors.js';
import type { RouteConfig } from '../config/schema.js';
import type { Step } from '../step.js';

/**
 * Authentication for a route. `auth: none` needs nothing. JWT, login sessions and webhook
 * signatures arrive with their own issues; until a method is enabled, a route that asks for
 * it refuses every request, so a config never opens a door the gateway cannot guard.
 */
export function createAuthenticate(route: RouteConfig): Step | undefined {
  if (route.auth === 'none') return undefined;
  return () => {
    throw new GatewayError('AUTH_UNAVAILABLE', `route ${route.name} needs auth ${route.auth}, which this build does not provide`);
  };
}
