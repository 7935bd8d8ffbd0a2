import type { IncomingMessage } from 'node:http';
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

/** The client's body stopped before its end: the client went away, or its framing broke. */
export class ClientBodyError extends Error {
  override readonly name = 'ClientBodyError';
}

const DONE: IteratorResult<Buffer> = { value: undefined, done: true };

/**
 * A request body read on demand, for the upstream request, that fails with BODY_TOO_LARGE at
 * the first byte over the limit (chunked, or a Content-Length that lies); the upstream
 * request is then cut off, so the upstream never sees a complete oversized body.
 *
 * An async iterator over the request rather than a stream, on purpose: undici sends a stream
 * it finds already ended with a Content-Length of what it buffered, so a chunked client body
 * would go upstream chunked or not depending on timing; an iterator always goes as it came
 * (chunked when the client's was, Content-Length as given). And the Readable's own iterator
 * destroys the request, and so the client's connection, when its reader stops early: the
 * client would never read the 413 or the upstream's early answer.
 */
export class BodyLimiter implements AsyncIterableIterator<Buffer> {
  private seen = 0;
  private listening = false;
  private ended = false;
  private failure: Error | undefined;
  private pending: { resolve: (r: IteratorResult<Buffer>) => void; reject: (err: Error) => void } | undefined;

  /** `onChunk` runs for every chunk passed on (the forwarder's inactivity timer). */
  constructor(
    private readonly req: IncomingMessage,
    private readonly limit: number,
    private readonly onChunk: () => void,
  ) {}

  /** Bytes passed on so far. */
  get bytes(): number {
    return this.seen;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<Buffer>> {
    if (this.failure) return Promise.reject(this.failure);
    if (!this.listening) this.listen();
    if (this.failure) return Promise.reject(this.failure);
    const chunk = this.req.read() as Buffer | null;
    if (chunk !== null) {
      try {
        return Promise.resolve(this.take(chunk));
      } catch (err) {
        return Promise.reject(err as Error);
      }
    }
    if (this.ended) return Promise.resolve(DONE);
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
    });
  }

  /** The reader stopped early (the upstream answered, or the request failed): let go, never destroy. */
  return(): Promise<IteratorResult<Buffer>> {
    this.stop();
    return Promise.resolve(DONE);
  }

  /**
   * Stops reading, if the body is not read whole already: a read in progress fails (never ends
   * early, which would send a truncated body as if whole), and what the client still sends is
   * drained so its connection can read the answer.
   */
  stop(err?: Error): void {
    if (this.ended || this.failure) return;
    const failure = err ?? new ClientBodyError('the upstream exchange ended before the body');
    this.failure = failure;
    this.detach();
    const pending = this.pending;
    this.pending = undefined;
    pending?.reject(failure);
    if (!this.req.destroyed) this.req.resume();
  }

  private take(chunk: Buffer): IteratorResult<Buffer> {
    const seen = this.seen + chunk.length;
    if (seen > this.limit) {
      const err = new GatewayError('BODY_TOO_LARGE', `streamed body over ${this.limit} bytes`);
      this.stop(err);
      throw err;
    }
    this.seen = seen;
    this.onChunk();
    return { value: chunk, done: false };
  }

  private listen(): void {
    this.listening = true;
    const req = this.req;
    if (req.readableEnded) {
      this.ended = true;
      return;
    }
    if (req.destroyed) {
      this.failure = new ClientBodyError('the request was gone before its body was read');
      return;
    }
    req.on('readable', this.onReadable);
    req.on('end', this.onEnd);
    req.on('error', this.onError);
    req.on('close', this.onClose);
  }

  private detach(): void {
    if (!this.listening) return;
    const req = this.req;
    req.off('readable', this.onReadable);
    req.off('end', this.onEnd);
    req.off('error', this.onError);
    req.off('close', this.onClose);
  }

  private readonly onReadable = (): void => {
    const pending = this.pending;
    if (!pending) return;
    const chunk = this.req.read() as Buffer | null;
    if (chunk === null) return;
    this.pending = undefined;
    try {
      pending.resolve(this.take(chunk));
    } catch (err) {
      pending.reject(err as Error);
    }
  };

  private readonly onEnd = (): void => {
    this.ended = true;
    this.detach();
    const pending = this.pending;
    this.pending = undefined;
    pending?.resolve(DONE);
  };

  private readonly onError = (err: Error): void => {
    this.stop(new ClientBodyError(`the client's body failed: ${err.message}`, { cause: err }));
  };

  private readonly onClose = (): void => {
    this.stop(new ClientBodyError('the client closed before the end of its body'));
  };
}
