import type { RequestContext } from '../context.js';
import { GatewayError } from '../errors.js';
import { readRawBody } from '../webhook/raw-body.js';

/**
 * The bytes of request bodies the process holds while steps read them whole (an `openapi:`
 * route's JSON body, a WhatsApp payload), bounded by `server.maxBufferedBodies`, and the time
 * each may take to arrive (`server.bodyReadTimeout`). One per gateway (createGateway builds it),
 * never module state. Without it, 60 clients each sending 4 MB minus one byte held 348 MB for
 * the 120 s of requestTimeout, and a thousand would have exhausted the heap.
 */
export class BodyBuffers {
  private held = 0;

  constructor(
    private readonly maxBytes: number,
    private readonly timeoutMs: number,
  ) {}

  /** Bytes reserved now by bodies being read or not yet forwarded. */
  get bytes(): number {
    return this.held;
  }

  /**
   * The request's body, read whole up to `limit`. A declared Content-Length is reserved before
   * a byte is read, a chunked body as its bytes arrive; a body that would take the total past
   * the budget is refused with BODY_BUFFERS_FULL (503, Retry-After) and the rest never read.
   * The reservation lasts until the response closes: until then the bytes stay referenced (as
   * `ctx.body` and in the upstream request), so they still count.
   */
  read(ctx: RequestContext, limit: number): Promise<Buffer> {
    let mine = 0;
    let closed = false;
    const release = (): void => {
      closed = true;
      this.held -= mine;
      mine = 0;
    };
    (ctx.onResponseClosed ??= []).push(release);
    const reserve = (total: number): void => {
      if (closed || total <= mine) return;
      const more = total - mine;
      if (this.held + more > this.maxBytes) {
        throw new GatewayError('BODY_BUFFERS_FULL', `${more} more bytes would pass server.maxBufferedBodies (${this.held} of ${this.maxBytes} held)`, {
          'retry-after': String(Math.ceil(this.timeoutMs / 1000)),
        });
      }
      this.held += more;
      mine += more;
    };
    const declared = Number(ctx.req.headers['content-length']);
    try {
      // The body-limit step refused a declared length over `limit` already; the framing step, a malformed one.
      if (Number.isSafeInteger(declared) && declared > 0) reserve(Math.min(declared, limit));
    } catch (err) {
      release();
      return Promise.reject(err as Error);
    }
    return readRawBody(ctx.req, limit, { admit: reserve, timeoutMs: this.timeoutMs }).catch((err: unknown) => {
      release();
      throw err;
    });
  }
}
