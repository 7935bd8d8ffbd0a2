import type { RouteConfig } from '../config/schema.js';
import type { RequestContext } from '../context.js';
import { GatewayError, isGatewayError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { BodyBuffers } from '../proxy/body-buffers.js';
import { joinUpstreamPath } from '../proxy/url-join.js';
import { stripPrefix } from '../routing/router.js';
import type { Step } from '../step.js';
import type { OpenApiSpecs } from './registry.js';
import type { ApiRequest } from './spec.js';

function hasBody(ctx: RequestContext): boolean {
  const h = ctx.req.headers;
  return h['transfer-encoding'] !== undefined || (h['content-length'] !== undefined && h['content-length'] !== '0');
}

async function readBody(ctx: RequestContext, bodies: BodyBuffers, limit: number): Promise<Buffer> {
  try {
    return await bodies.read(ctx, limit);
  } catch (err) {
    if (isGatewayError(err)) throw err;
    // The client went away mid-body: nothing will read this answer, but the access line says why.
    throw new GatewayError('BAD_REQUEST', `the body stopped before its end: ${(err as Error).message}`);
  }
}

/**
 * The `openapi` step: the request against the route's OpenAPI spec (src/openapi/spec.ts). The
 * operation must exist (404, or 405 with Allow), its parameters match, its content type be
 * one the operation takes (415); a JSON body is read whole, up to the route's `maxBody`, within
 * the process-wide budget and deadline of `bodies` (503 / 408), parsed with its depth bounded, validated, and then forwarded as those same bytes. In
 * `report` mode a violation is logged (`openapi.violation`, the pointer and never the value)
 * and the request goes on; a body over the route's limit is refused in either mode.
 */
export function createOpenApiValidation(route: RouteConfig, specs: OpenApiSpecs | undefined, bodies: BodyBuffers, log: Logger): Step | undefined {
  const settings = route.openapi;
  if (!settings) return undefined;
  // Fail closed at build time: a route configured for validation never runs without it.
  if (!specs?.has(route.name)) throw new Error(`route ${route.name}: its OpenAPI spec (${settings.spec}) was not loaded`);
  const report = settings.mode === 'report';
  const basePath = new URL(route.upstream).pathname;
  const upstreamPath = (ctx: RequestContext): string => {
    const path = ctx.path ?? '/';
    return joinUpstreamPath(basePath, route.stripPrefix && route.path ? stripPrefix(path, route.path) : path);
  };

  const check = async (ctx: RequestContext): Promise<void> => {
    const spec = specs.current(route.name);
    if (!spec) throw new GatewayError('INTERNAL', `route ${route.name}: no OpenAPI spec`);
    const req: ApiRequest = { method: ctx.req.method ?? 'GET', path: upstreamPath(ctx), query: ctx.target?.query ?? '', headers: ctx.req.headers };
    const matched = spec.match(req.method, req.path);
    spec.checkParameters(matched, req);
    // A websocket handshake has no body; the path and its parameters are all there is to check.
    if (ctx.kind === 'upgrade') return;
    const plan = spec.bodyPlan(matched, req.headers['content-type'], hasBody(ctx));
    if (!plan.json) return;
    const body = await readBody(ctx, bodies, route.maxBody);
    // Kept before the check: in report mode an invalid body still goes on, as these bytes.
    ctx.body = body;
    spec.checkBody(plan, body);
  };

  return async (ctx) => {
    try {
      await check(ctx);
    } catch (err) {
      if (!report || !isGatewayError(err) || !err.code.startsWith('API_')) throw err;
      log.security('openapi.violation', { requestId: ctx.id, route: route.name, method: ctx.req.method, code: err.code, pointer: err.pointer, detail: err.detail, clientIp: ctx.address?.client.address });
    }
  };
}
