import type { RouteConfig } from '../config/schema.js';
import { isGatewayError } from '../errors.js';
import type { RequestContext } from '../context.js';
import type { ParsedIp } from '../net/ip.js';
import type { Step, StepResult } from '../step.js';
import { enforce, Limiter, type LimitDeps } from './limiter.js';
import { ipBucket, userBucket } from './keys.js';

/** Stands in if a context has no resolved address: such requests share one strict bucket. */
const NO_ADDRESS: ParsedIp = { address: '0.0.0.0', family: 'ipv4' };

/** The client's bucket, from the one client-IP resolver (never a header read here). */
export function clientBucket(ctx: RequestContext, ipv6Prefix: number): string {
  return ipBucket(ctx.address?.client ?? NO_ADDRESS, ipv6Prefix);
}

/**
 * Principals named before their credential is checked. The WhatsApp webhook names its caller
 * in the authentication step, but the signature is verified later, by the route's handler, once
 * the body is read: at this point any forger has that principal. Charging it as a user would
 * let forged requests go unlimited while they spend the one bucket all of Meta's deliveries
 * share, so these are charged to their address, never as a user.
 */
const UNVERIFIED_METHODS: ReadonlySet<string> = new Set(['whatsapp']);

/**
 * The rate limit of one route, built once per route by whatever builds its steps (one limiter,
 * its store and its memory of full buckets belong to this object, so two gateways built from one
 * config share nothing). It yields the pipeline's `rate-limit` step (before authentication) and,
 * for `by: user`, the `user-rate-limit` step (after authorization), and marks the steps between
 * them (authenticate, authorize) so that a request they stop is still counted.
 *
 * Every request costs one round trip to the store, whatever the route's `by`:
 *
 * - `by: ip`: the `rate-limit` step counts the request in its address bucket.
 * - `by: user`: nothing is counted before authentication; the request is counted once its fate
 *   is known. Authenticated (a verified principal): one script charges the user's bucket and, in
 *   the same atomic step, reads the address bucket, refusing (and charging nothing) when that
 *   is full. Stopped by authentication or authorization (a 401, a 403, a redirect to the login
 *   page), with no principal (`auth: none`) or an unverified one (the webhook): its address
 *   bucket is charged. So the address budget is spent only by requests that do not
 *   authenticate, and many users behind one NAT address each keep their own budget (an
 *   authenticated request never touches the address bucket, not even provisionally).
 * - A client over its address budget is refused before authentication runs: each limiter
 *   remembers the buckets it saw full for a few seconds (Limiter, FULL_BUCKET_MEMORY_MS), which
 *   the `rate-limit` step reads. A fixed window only fills up, so that memory can only be late,
 *   never wrong: an instance that has not seen the bucket full yet (another instance filled it)
 *   lets the request through to authentication, and the one script after it refuses it there
 *   (the address read) with the same 429; from then on this instance refuses before
 *   authentication too. The answer is the same on every instance; what differs is only whether
 *   authentication ran for that one request.
 * - Fail modes: a store that does not answer fails open (counted as unchecked) or closed (503).
 *   A fail-closed route whose store is known to be down refuses before authentication, as the
 *   old up-front charge did.
 */
export interface RouteLimit {
  /** The `rate-limit` step: `by: ip` charges here; `by: user` refuses only a bucket known full. */
  readonly beforeAuth: Step;
  /** The `user-rate-limit` step of `by: user` routes: the one charge of a request that got this far. */
  readonly afterAuth: Step | undefined;
  /** `step` (authenticate, authorize) made to charge the address of a request it stops; `by: user` only. */
  chargeStopped(step: Step | undefined): Step | undefined;
}

/** The route's limit, or undefined for a route without `rateLimit`. */
export function createRouteLimit(route: RouteConfig, deps: LimitDeps): RouteLimit | undefined {
  const cfg = route.rateLimit;
  if (!cfg) return undefined;
  const policy = { name: route.name, keyPrefix: `r:${route.name}`, windowMs: cfg.window, max: cfg.max, failMode: cfg.failMode };
  const limiter = new Limiter(policy, deps);
  const address = (ctx: RequestContext): string => clientBucket(ctx, cfg.ipv6Prefix);
  const chargeAddress = async (ctx: RequestContext): Promise<void> => enforce(ctx, [await limiter.take(address(ctx))]);

  if (cfg.by !== 'user') return { beforeAuth: chargeAddress, afterAuth: undefined, chargeStopped: (step) => step };

  /** The step's refusal or own answer goes out only after its address was charged (a 429 or 503 then wins). */
  const chargeStopped = (step: Step | undefined): Step | undefined => {
    if (!step) return undefined;
    const answered = async (ctx: RequestContext, result: StepResult): Promise<StepResult> => {
      await chargeAddress(ctx);
      return result;
    };
    const refused = async (ctx: RequestContext, err: unknown): Promise<never> => {
      // A credential that could not be checked (its store down) was not refused: charging the
      // address would spend the budget of everyone behind it on an outage (issue 18, item 5).
      if (!(isGatewayError(err) && err.code === 'AUTH_STORE_UNAVAILABLE')) await chargeAddress(ctx);
      throw err;
    };
    return (ctx) => {
      let result;
      try {
        result = step(ctx);
      } catch (err) {
        return refused(ctx, err);
      }
      // Most steps go on synchronously: those stay synchronous here too.
      if (result instanceof Promise) return result.then((r) => (r ? answered(ctx, r) : r), (err: unknown) => refused(ctx, err));
      return result ? answered(ctx, result) : result;
    };
  };

  return {
    beforeAuth: (ctx) => {
      limiter.refuseWhileUnavailable();
      enforce(ctx, [limiter.knownFull(address(ctx))]);
    },
    afterAuth: async (ctx) => {
      const principal = ctx.principal;
      if (!principal || UNVERIFIED_METHODS.has(principal.method)) return chargeAddress(ctx);
      enforce(ctx, [await limiter.takeUnlessFull(userBucket(principal.subject), address(ctx))]);
    },
    chargeStopped,
  };
}

/** `step`, charging the address of a request it stops when `limit` asks for that (`by: user`). */
export function chargeStopped(limit: RouteLimit | undefined, step: Step | undefined): Step | undefined {
  return limit ? limit.chargeStopped(step) : step;
}
