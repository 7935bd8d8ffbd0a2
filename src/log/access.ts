import { performance } from 'node:perf_hooks';
import type { RequestContext } from '../context.js';
import type { EventFields } from './events.js';

/**
 * The access-log line of one request or upgrade. `code` is the reason code of a denial (the
 * stable error code the client saw) and `detail` says why; the audit logger redacts every
 * field (query values of secret-like names, tokens) and chains the line.
 */
export function accessEntry(ctx: RequestContext): Record<string, unknown> {
  return {
    requestId: ctx.id,
    kind: ctx.kind,
    clientIp: ctx.address?.client.address,
    peerIp: ctx.address?.peer.address,
    method: ctx.req.method,
    host: ctx.target?.host,
    path: ctx.path ?? ctx.target?.rawPath,
    query: ctx.target?.query || undefined,
    route: ctx.route?.name,
    upstream: ctx.reply.outcome === 'forwarded' ? ctx.route?.target.origin : undefined,
    status: ctx.reply.status,
    outcome: ctx.reply.outcome,
    code: ctx.reply.error?.code,
    detail: ctx.reply.error?.detail,
    user: ctx.principal?.subject,
    roles: ctx.principal?.roles,
    authMethod: ctx.principal?.method,
    // Which token: the access review's "last use" of each live token (issue 18, item 13).
    tokenId: ctx.principal?.tokenId,
    bytesIn: ctx.bytesIn,
    bytesOut: ctx.bytesOut,
    durationMs: Math.round((performance.now() - ctx.startedAt) * 100) / 100,
    // Forwarded plain requests: until the upstream's response head (the overview's latency percentiles).
    upstreamMs: ctx.upstreamMs === undefined ? undefined : Math.round(ctx.upstreamMs * 100) / 100,
    // A forward-auth check: host, path and route are the original request's; nothing was forwarded.
    forwardAuth: ctx.forwardAuth,
  };
}

/** The `request.denied` security event of a refused request: reason code, detail, who and what. */
export function deniedEvent(ctx: RequestContext): EventFields<'request.denied'> {
  return {
    requestId: ctx.id,
    code: ctx.reply.error?.code,
    detail: ctx.reply.error?.detail,
    status: ctx.reply.error?.status,
    clientIp: ctx.address?.client.address,
    route: ctx.route?.name,
    method: ctx.req.method,
    host: ctx.target?.host,
    path: ctx.path ?? ctx.target?.rawPath,
    query: ctx.target?.query || undefined,
    user: ctx.principal?.subject,
    kind: ctx.kind,
  };
}
