import type { ServerResponse } from 'node:http';
import type { RouteConfig } from './config/schema.js';
import type { RequestContext } from './context.js';
import type { GatewayError } from './errors.js';
import type { Step } from './step.js';

/**
 * Answers a request that passed every step, in place of plain proxying (the WhatsApp webhook
 * reads, verifies and queues the body itself). `fail` sends a gateway error.
 */
export type TerminalHandler = (ctx: RequestContext, res: ServerResponse, fail: (err: GatewayError) => void) => void;

/** A route with its policy chain built once at startup. */
export interface CompiledRoute {
  readonly name: string;
  readonly config: RouteConfig;
  readonly target: URL;
  readonly steps: readonly Step[];
  /** The same chain for websocket upgrades, with the steps only they take (ws-credentials). */
  readonly upgradeSteps: readonly Step[];
  /** The steps that also guard the gateway's own /auth/* pages on this route (the IP allowlist). */
  readonly ownPageSteps: readonly Step[];
  /** The steps a forward-auth check runs for this route (src/auth/forward-auth/): all but those flagged `notForwardAuth`. */
  readonly forwardAuthSteps: readonly Step[];
  /** When set, answers instead of the proxy. */
  readonly handler?: TerminalHandler | undefined;
  /** The signed identity assertion for the upstream (src/auth/assertion/routes.ts), on routes that carry one. */
  readonly assertion?: ((ctx: RequestContext) => string | undefined) | undefined;
}
