import type { RouteConfig } from '../config/schema.js';
import type { RequestContext } from '../context.js';
import type { GatewayDeps } from '../deps.js';
import type { ParsedIp } from '../net/ip.js';
import type { Step } from '../step.js';
import { enforce, Limiter } from './limiter.js';
import { ipBucket, userBucket } from './keys.js';

/** Stands in if a context has no resolved address: such requests share one strict bucket. */
const NO_ADDRESS: ParsedIp = { address: '0.0.0.0', family: 'ipv4' };

interface RouteLimit {
  readonly limiter: Limiter;
  readonly ipv6Prefix: number;
  /** `by: user` routes: the IP bucket charged before authentication, per request, to take back after. */
  readonly provisional: WeakMap<RequestContext, string>;
}

/** One limiter per route, shared by the route's two steps (built in the same routeSteps call). */
const built = new WeakMap<RouteConfig, RouteLimit>();

function routeLimit(route: RouteConfig, deps: GatewayDeps): RouteLimit | undefined {
  const cfg = route.rateLimit;
  if (!cfg) return undefined;
  let rl = built.get(route);
  if (!rl) {
    const policy = { name: route.name, keyPrefix: `r:${route.name}`, windowMs: cfg.window, max: cfg.max, failMode: cfg.failMode };
    rl = { limiter: new Limiter(policy, deps.redis, deps.log), ipv6Prefix: cfg.ipv6Prefix, provisional: new WeakMap() };
    built.set(route, rl);
  }
  return rl;
}

/** The client's bucket, from the one client-IP resolver (never a header read here). */
export function clientBucket(ctx: RequestContext, ipv6Prefix: number): string {
  return ipBucket(ctx.address?.client ?? NO_ADDRESS, ipv6Prefix);
}

/**
 * The route's limit, before authentication, so password and token guessing spend budget too.
 * `by: ip` routes are limited here. `by: user` routes charge the client's IP bucket here
 * provisionally: a request that ends up with a principal gets it back in the step after
 * authorization (and spends its user's budget instead), so the IP budget of a `by: user` route
 * is spent only by requests that never authenticate — and a client over it is refused before
 * authentication runs at all.
 */
export function createRateLimit(route: RouteConfig, deps: GatewayDeps): Step | undefined {
  const rl = routeLimit(route, deps);
  if (!rl) return undefined;
  const byUser = route.rateLimit?.by === 'user';
  return async (ctx) => {
    const bucket = clientBucket(ctx, rl.ipv6Prefix);
    const usage = await rl.limiter.take(bucket);
    enforce(ctx, [usage]);
    if (byUser && usage) rl.provisional.set(ctx, bucket);
  };
}

/**
 * Principals named before their credential is checked. The WhatsApp webhook names its caller
 * in the authentication step, but the signature is verified later, by the route's handler, once
 * the body is read: at this point any forger has that principal. Refunding its address charge
 * would let forged requests go unlimited while they spend the one bucket all of Meta's
 * deliveries share, so these keep their address charge and are never charged as a user.
 */
const UNVERIFIED_METHODS: ReadonlySet<string> = new Set(['whatsapp']);

/**
 * The per-user limit of a `by: user` route, right after authorization: the first point where
 * the principal is known. A request without a principal (or with one not yet verified, see
 * UNVERIFIED_METHODS) keeps its IP charge.
 */
export function createUserRateLimit(route: RouteConfig, deps: GatewayDeps): Step | undefined {
  if (route.rateLimit?.by !== 'user') return undefined;
  const rl = routeLimit(route, deps);
  if (!rl) return undefined;
  return async (ctx) => {
    const principal = ctx.principal;
    if (!principal || UNVERIFIED_METHODS.has(principal.method)) return;
    const charged = rl.provisional.get(ctx);
    if (charged !== undefined) {
      rl.provisional.delete(ctx);
      rl.limiter.refund(charged);
    }
    enforce(ctx, [await rl.limiter.take(userBucket(principal.subject))]);
  };
}
