const DONE: IteratorResult<Buffer> = { value: undefined, done: true };

/**
 * A request body a step had to read whole before the request could go on (OpenAPI
 * validation), forwarded as those same bytes. Shaped as BodyLimiter, whose place it takes in
 * an exchange: an async iterator, so undici frames it as the client did (Content-Length as
 * given, else chunked).
 */
export class BufferedBody implements AsyncIterableIterator<Buffer> {
  private sent = false;

  constructor(private readonly body: Buffer) {}

  get bytes(): number {
    return this.body.length;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<Buffer>> {
    if (this.sent || this.body.length === 0) return Promise.resolve(DONE);
    this.sent = true;
    return Promise.resolve({ value: this.body, done: false });
  }

  return(): Promise<IteratorResult<Buffer>> {
    this.sent = true;
    return Promise.resolve(DONE);
  }

  /** Nothing is left to read from the client: the body was read before the exchange began. */
  stop(): void {
    this.sent = true;
  }
}
