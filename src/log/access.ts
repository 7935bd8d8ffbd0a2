import { performance } from 'node:perf_hooks';
import type { RequestContext } from '../context.js';

/** The access-log line of one request or upgrade; the audit issue adds redaction and chaining. */
export function accessEntry(ctx: RequestContext): Record<string, unknown> {
  return {
    requestId: ctx.id,
    kind: ctx.kind,
    clientIp: ctx.address?.client.address,
    peerIp: ctx.address?.peer.address,
    method: ctx.req.method,
    host: ctx.target?.host,
    path: ctx.path ?? ctx.target?.rawPath,
    route: ctx.route?.name,
    upstream: ctx.outcome === 'forwarded' ? ctx.route?.target.origin : undefined,
    status: ctx.status,
    outcome: ctx.outcome,
    code: ctx.error?.code,
    detail: ctx.error?.detail,
    user: ctx.principal?.subject,
    roles: ctx.principal?.roles,
    bytesIn: ctx.bytesIn,
    bytesOut: ctx.bytesOut,
    durationMs: Math.round((performance.now() - ctx.startedAt) * 100) / 100,
  };
}
