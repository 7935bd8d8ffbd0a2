import type { RequestContext } from './context.js';

/**
 * One policy of the pipeline. It throws a GatewayError to refuse, returns `{ answer }` to
 * answer the request itself (a CORS preflight), or returns nothing to let it go on. Steps
 * see only the context, so the same step runs for plain requests and websocket upgrades.
 */
export type StepResult = void | { answer: number };
export type Step = (ctx: RequestContext) => StepResult | Promise<StepResult>;
