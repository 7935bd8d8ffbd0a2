import { Transform, type TransformCallback } from 'node:stream';
import { GatewayError } from '../errors.js';
import type { RouteConfig } from '../config/schema.js';
import type { Step } from '../step.js';

/** Refuses a declared Content-Length over the route's limit before anything is sent upstream. */
export function createBodyLimit(route: RouteConfig): Step {
  return (ctx) => {
    const declared = ctx.req.headers['content-length'];
    if (declared !== undefined && Number(declared) > route.maxBody) {
      throw new GatewayError('BODY_TOO_LARGE', `Content-Length ${declared} over ${route.maxBody} on route ${route.name}`);
    }
  };
}

/**
 * Counts a streamed body (chunked, or a Content-Length that lies) and fails with
 * BODY_TOO_LARGE at the first byte over the limit; the caller then tears the upstream
 * request down, so the upstream never sees a complete oversized body.
 */
export class BodyLimiter extends Transform {
  private seen = 0;
  constructor(private readonly limit: number) {
    super();
  }
  get bytes(): number {
    return this.seen;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.limit) done(new GatewayError('BODY_TOO_LARGE', `streamed body over ${this.limit} bytes`));
    else done(null, chunk);
  }
}
