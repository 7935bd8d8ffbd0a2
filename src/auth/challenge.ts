import type { RouteConfig } from '../config/schema.js';
import { ERRORS, GatewayError, type ErrorCode } from '../errors.js';
import { ACCESS_COOKIE } from './cookies.js';

/** The protection space of every challenge (RFC 9110 §11.5): one realm, the gateway's. */
export const REALM = 'crm-gateway';
export const LOGIN_PATH = '/auth/login';

/**
 * RFC 6750 §3.1 error codes of refused bearer tokens. A request with no token gets a challenge
 * without an error (§3.1: "SHOULD NOT include an error code"). AUTH_AMBIGUOUS (token in two
 * places) is `invalid_request`; the registry keeps its 401 rather than §3.1's 400.
 */
const BEARER_ERRORS: Partial<Record<ErrorCode, string>> = {
  AUTH_INVALID: 'invalid_token',
  AUTH_EXPIRED: 'invalid_token',
  AUTH_REVOKED: 'invalid_token',
  AUTH_DISABLED: 'invalid_token',
  AUTH_AMBIGUOUS: 'invalid_request',
  ROLE_FORBIDDEN: 'insufficient_scope',
};

/**
 * `Bearer realm="crm-gateway"`, plus `error` and `error_description` for a refused token. The
 * description is the code's public message, the one the body carries too: never the detail.
 */
export function bearerChallenge(code?: ErrorCode): string {
  const error = code === undefined ? undefined : BEARER_ERRORS[code];
  return `Bearer realm="${REALM}"${error ? `, error="${error}", error_description="${ERRORS[code as ErrorCode].message}"` : ''}`;
}

/**
 * Session routes authenticate with the login form and a cookie, for which HTTP has no
 * registered scheme; RFC 9110 §15.5.2 still requires a challenge on every 401. This is the
 * `Cookie` scheme of draft-broyer-http-cookie-auth: where the form posts, and which cookie
 * it sets. Browsers ignore an unknown scheme (no password dialog), which is what we want.
 */
export function cookieChallenge(): string {
  return `Cookie realm="${REALM}", form-action="${LOGIN_PATH}", cookie-name="${ACCESS_COOKIE}"`;
}

/**
 * The challenge of a route's 401. `viaBearer`: the refused credential came in the
 * Authorization header, so the Bearer challenge carries the error; a refused session cookie
 * gets the Cookie challenge (that draft defines no error parameter).
 */
export function routeChallenge(route: RouteConfig, code: ErrorCode | undefined, viaBearer: boolean): string {
  const bearer = route.auth === 'jwt' || route.auth === 'jwt-or-session';
  const session = route.auth === 'session' || route.auth === 'jwt-or-session';
  const challenges = [...(bearer ? [bearerChallenge(viaBearer ? code : undefined)] : []), ...(session ? [cookieChallenge()] : [])];
  return challenges.length > 0 ? challenges.join(', ') : bearerChallenge();
}

/**
 * The same error with the route's challenge when it is a 401. It replaces the registry's
 * backstop (src/errors.ts): errors raised below the route step (token checks) do not know it.
 */
export function withChallenge(err: GatewayError, route: RouteConfig, viaBearer: boolean): GatewayError {
  if (err.status !== 401) return err;
  return new GatewayError(err.code, err.detail, { ...err.headers, 'www-authenticate': routeChallenge(route, err.code, viaBearer) });
}
