import type { ServerResponse } from 'node:http';
import type { RouteConfig } from '../../config/schema.js';
import type { Principal, RequestContext } from '../../context.js';
import { GatewayError } from '../../errors.js';

/*
 * What the pipeline needs of the identity assertion before anything is loaded: the header's
 * name, the JWKS path and which routes carry one. Kept free of imports (the keys, the signer and
 * jsonwebtoken load only when the gateway signs: test/integration/startup-footprint.test.ts).
 */

/**
 * The request header carrying the signed assertion. Under `X-Gateway-`, so header hygiene
 * strips any copy a client sends, like every gateway identity header (src/proxy/request-headers.ts),
 * and upstreams find it beside `X-Gateway-User` (Pomerium's is `X-Pomerium-Jwt-Assertion`).
 */
export const ASSERTION_HEADER = 'x-gateway-assertion';

/**
 * Where the public keys are published, on every routed host and on the admin listener.
 * Under `/.well-known/` (RFC 8615: site-wide metadata, no upstream's own path) and namespaced
 * by product as Pomerium's `/.well-known/pomerium/jwks.json`, so it never collides with an
 * upstream's own `/.well-known/jwks.json` or an OpenID issuer's documents.
 */
export const JWKS_PATH = '/.well-known/crm-gateway/jwks.json';

/** The JWKS document's media type (RFC 7517 §8.5). */
export const JWKS_CONTENT_TYPE = 'application/jwk-set+json';

/**
 * How long upstreams may cache the JWKS: shorter than a rotation's activation delay (60 s), so a
 * copy fetched before a rotation is stale before the new key signs (PyJWKClient also refetches
 * when it meets an unknown `kid`).
 */
export const JWKS_MAX_AGE_S = 30;

/** The cache headers of a JWKS answer, on the public and the admin listener alike. */
export const JWKS_CACHE_CONTROL = `public, max-age=${JWKS_MAX_AGE_S}`;

/**
 * Answers the JWKS path on a routed host: always the gateway's own answer, never the upstream's.
 * Without keys (no API_SECRET_KEY, so nothing is ever asserted) it is a 404 like any unknown path.
 */
export function answerJwks(ctx: RequestContext, res: ServerResponse, keys: { jwks(): string } | undefined): void {
  if (!keys) throw new GatewayError('ROUTE_NOT_FOUND', `${JWKS_PATH}: identity assertions are off (no API_SECRET_KEY)`);
  const method = ctx.req.method ?? 'GET';
  if (method !== 'GET' && method !== 'HEAD') throw new GatewayError('METHOD_NOT_ALLOWED', `${method} ${JWKS_PATH}`, { allow: 'GET, HEAD' });
  ctx.reply.answer(res, 200, { body: { contentType: JWKS_CONTENT_TYPE, body: keys.jwks() }, headers: { 'cache-control': JWKS_CACHE_CONTROL } });
}

/** Modes whose requests carry a principal worth asserting (a webhook's is Meta's signature, checked by the app itself). */
const AUTHENTICATED = new Set<RouteConfig['auth']>(['jwt', 'session', 'jwt-or-session']);

/**
 * Whether a route's forwarded requests carry the assertion: its `identityAssertion`, else on for
 * every authenticated route. On by default because it only adds a header: an upstream that does
 * not check it is no worse off, and one that does needs no gateway change to start.
 */
export function wantsAssertion(route: RouteConfig): boolean {
  return route.identityAssertion ?? AUTHENTICATED.has(route.auth);
}

/** What signs: the process's IdentityAssertions (./service.ts). */
export interface AssertionSigning {
  sign(principal: Principal, route: string): string;
}

/**
 * The assertion of a route's forwarded requests, built once per route: undefined when the route
 * carries none. A route that asks for one explicitly (`identityAssertion: true`) when the gateway
 * has no keys refuses with ASSERTION_UNAVAILABLE rather than forward without it (fail closed);
 * one that only defaults to it forwards without: src/main.ts loads keys whenever it authenticates,
 * so only a gateway built without them (tests, embedding) has none.
 */
export function routeAssertion(route: RouteConfig, signing: AssertionSigning | undefined): ((ctx: RequestContext) => string | undefined) | undefined {
  if (!wantsAssertion(route)) return undefined;
  if (!signing) {
    if (route.identityAssertion !== true) return undefined;
    return () => {
      throw new GatewayError('ASSERTION_UNAVAILABLE', `route ${route.name}: no identity assertion keys loaded`);
    };
  }
  return (ctx) => (ctx.principal ? signing.sign(ctx.principal, route.name) : undefined);
}
