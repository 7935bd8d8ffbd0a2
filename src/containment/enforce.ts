import type { RequestContext } from '../context.js';
import { GatewayError } from '../errors.js';
import type { Step } from '../step.js';
import type { BlockSet } from './blocks.js';
import type { Block } from './model.js';

/** The security log's account of a block (the client is told the code alone). */
function detail(b: Block): string {
  return `${b.kind} ${b.target} blocked until ${new Date(b.until).toISOString()} by ${b.by}${b.rule ? ` (rule ${b.rule})` : ''}: ${b.reason}`;
}

/**
 * The `blocks` connection step, once the route is known: a blocked client address or network
 * is refused (403 CLIENT_BLOCKED) before any credential is read; a route under maintenance
 * answers 503 ROUTE_MAINTENANCE with Retry-After until the block ends (the error page renders
 * it as a maintenance page for browsers, JSON for API clients). The address is the one
 * resolver's (ctx.address), so a blocked client behind TRUSTED_PROXIES is matched by the
 * forwarded address, never by the proxy's.
 */
export function checkConnectionBlocks(blocks: BlockSet): (ctx: RequestContext) => void {
  return (ctx) => {
    if (blocks.size === 0) return;
    const address = ctx.address?.client;
    const byAddress = address ? blocks.address(address) : undefined;
    if (byAddress) throw new GatewayError('CLIENT_BLOCKED', detail(byAddress));
    const route = ctx.route?.name;
    const byRoute = route !== undefined ? blocks.route(route) : undefined;
    if (byRoute) {
      const seconds = Math.max(1, Math.ceil((byRoute.until - Date.now()) / 1000));
      throw new GatewayError('ROUTE_MAINTENANCE', detail(byRoute), { 'retry-after': String(seconds) });
    }
  };
}

/** The refusal for a blocked user or API client (`subject`, as a principal names it), if blocked. */
export function accountBlocked(blocks: BlockSet | undefined, subject: string): GatewayError | undefined {
  const b = blocks && blocks.size > 0 ? blocks.subject(subject) : undefined;
  return b ? new GatewayError('ACCOUNT_BLOCKED', detail(b)) : undefined;
}

/** The `account-blocks` route step, right after authentication: a blocked user or API client gets 403 ACCOUNT_BLOCKED. */
export function createAccountBlocks(blocks: BlockSet): Step {
  return (ctx) => {
    const subject = ctx.principal?.subject;
    if (subject === undefined) return;
    const refusal = accountBlocked(blocks, subject);
    if (refusal) throw refusal;
  };
}
