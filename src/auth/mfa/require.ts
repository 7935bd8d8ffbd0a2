import type { GatewayConfig, RouteConfig } from '../../config/schema.js';
import type { RequestContext } from '../../context.js';
import { GatewayError } from '../../errors.js';
import { wantsHtml } from '../../respond.js';
import { LOGIN_PATH } from '../challenge.js';
import { provedSecondFactor, rolesRequireMfa } from './policy.js';

/** A browser navigating: sent to sign in again rather than shown a refusal. */
function isNavigation(ctx: RequestContext): boolean {
  const m = ctx.req.method ?? 'GET';
  return ctx.kind === 'http' && (m === 'GET' || m === 'HEAD') && wantsHtml(ctx.req);
}

/**
 * The authorization step's second-factor check. Applies on a route with `mfa: required` to every
 * principal, and on any route to a session whose user has a role of `auth.mfa.requiredRoles`
 * (a role granted after the sign-in, or a session from before the factor was required). A
 * session without a second factor in its `amr` is sent, when a browser navigates, to sign in
 * again (step-up: the sign-in gate asks for the factor because the return route needs it);
 * otherwise MFA_REQUIRED (403).
 *
 * Bearer tokens (API clients, `client:` subjects) never pass `mfa: required`: client credentials
 * prove no second factor, and a token carries no `amr`. An API client that must reach such a
 * service gets a route of its own without `mfa: required` (its roles still apply); role-based
 * enforcement (requiredRoles) is for people's sessions only, so an API client with the admin
 * role is not refused everywhere.
 */
export function createMfaCheck(route: RouteConfig, auth: GatewayConfig['auth'] | undefined): ((ctx: RequestContext) => { answer: number } | undefined) | undefined {
  if (route.auth === 'none' || route.auth === 'whatsapp') return undefined;
  const routeRequires = route.mfa === 'required';
  const roleRequired = auth && auth.mfa.requiredRoles.length > 0;
  if (!routeRequires && !roleRequired) return undefined;
  return (ctx) => {
    const p = ctx.principal;
    if (!p) return undefined;
    const session = p.method === 'session';
    const needs = routeRequires || (session && auth !== undefined && rolesRequireMfa(p.roles, auth));
    if (!needs || (session && provedSecondFactor(p.factors))) return undefined;
    if (session && isNavigation(ctx)) {
      const back = `${ctx.path ?? '/'}${ctx.target?.query ? `?${ctx.target.query}` : ''}`;
      ctx.reply.headers.location = `${LOGIN_PATH}?rd=${encodeURIComponent(back)}`;
      return { answer: 302 };
    }
    const why = routeRequires ? `route ${route.name} has mfa: required` : `roles [${p.roles.join(',')}] require a second factor`;
    throw new GatewayError('MFA_REQUIRED', `${p.subject} (${p.method}, factors ${(p.factors ?? []).join('+') || 'none'}): ${why}`);
  };
}
