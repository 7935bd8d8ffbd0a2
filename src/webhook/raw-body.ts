import type { IncomingMessage } from 'node:http';
import { GatewayError } from '../errors.js';

/**
 * Reads the whole body as raw bytes, up to `limit`. The pipeline already refused a declared
 * Content-Length over the limit; this bounds a chunked body (or a lying length) as it arrives
 * and stops buffering at the first byte over. A client that goes away rejects with `aborted`.
 */
export function readRawBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let seen = 0;
    let settled = false;
    const finish = (err: Error | undefined, body?: Buffer): void => {
      if (settled) return;
      settled = true;
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
      if (err) reject(err);
      else resolve(body as Buffer);
    };
    const onData = (chunk: Buffer): void => {
      seen += chunk.length;
      if (seen > limit) {
        chunks.length = 0;
        finish(new GatewayError('BODY_TOO_LARGE', `streamed body over ${limit} bytes`));
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
