import type { IncomingMessage } from 'node:http';
import { GatewayError } from '../errors.js';

/** The most a sign-in or sign-out form may carry: a few fields, never a payload. */
const MAX_FORM_BYTES = 16 * 1024;

/**
 * Reads an `application/x-www-form-urlencoded` body of the gateway's own forms (the sign-in
 * pages on routed hosts and on the admin listener), refusing another type or more than
 * MAX_FORM_BYTES. `what` names the form in the refusal's detail.
 */
export function readForm(req: IncomingMessage, what: string): Promise<URLSearchParams> {
  return new Promise((resolve, reject) => {
    const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
    if (type !== 'application/x-www-form-urlencoded') {
      req.resume();
      reject(new GatewayError('BAD_REQUEST', `${what} content type ${String(req.headers['content-type'])}`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_FORM_BYTES) {
        req.destroy();
        reject(new GatewayError('BODY_TOO_LARGE', `${what} over ${MAX_FORM_BYTES} bytes`));
      } else chunks.push(c);
    });
    req.on('end', () => resolve(new URLSearchParams(Buffer.concat(chunks).toString('utf8'))));
    req.on('error', reject);
  });
}
