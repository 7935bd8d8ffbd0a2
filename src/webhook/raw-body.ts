import type { IncomingMessage } from 'node:http';
import { GatewayError } from '../errors.js';

export interface RawBodyOptions {
  /**
   * Called with the bytes read so far, the chunk included, before the chunk is kept; a
   * GatewayError it throws stops the read with that error (the process-wide budget's 503).
   */
  readonly admit?: (total: number) => void;
  /** The whole body must have arrived within this many milliseconds of the call (408 after). */
  readonly timeoutMs?: number;
}

/**
 * Reads the whole body as raw bytes, up to `limit`. The pipeline already refused a declared
 * Content-Length over the limit; this bounds a chunked body (or a lying length) as it arrives
 * and stops buffering at the first byte over. A client that goes away rejects with `aborted`.
 * A client that sends slower than `timeoutMs` allows is cut off with REQUEST_TIMEOUT and
 * `Connection: close`: the rest of its body is never read, so the connection cannot be reused.
 */
export function readRawBody(req: IncomingMessage, limit: number, opts: RawBodyOptions = {}): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let seen = 0;
    let settled = false;
    const timer =
      opts.timeoutMs === undefined
        ? undefined
        : setTimeout(() => finish(new GatewayError('REQUEST_TIMEOUT', `body not received within ${opts.timeoutMs} ms (${seen} bytes read)`, { connection: 'close' })), opts.timeoutMs);
    const finish = (err: Error | undefined, body?: Buffer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
      if (err) {
        chunks.length = 0;
        reject(err);
      } else resolve(body as Buffer);
    };
    const onData = (chunk: Buffer): void => {
      seen += chunk.length;
      if (seen > limit) {
        finish(new GatewayError('BODY_TOO_LARGE', `streamed body over ${limit} bytes`));
        return;
      }
      try {
        opts.admit?.(seen);
      } catch (err) {
        finish(err as Error);
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => finish(undefined, Buffer.concat(chunks, seen));
    const onError = (err: Error): void => finish(Object.assign(new Error(`body read failed: ${err.message}`), { aborted: true }));
    const onAborted = (): void => finish(Object.assign(new Error('client aborted the body'), { aborted: true }));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  });
}
