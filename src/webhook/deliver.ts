import http from 'node:http';
import https from 'node:https';
import type { Delivery } from './envelope.js';

/** Statuses that say "later", not "never": retried like a refused connection. */
const RETRYABLE_4XX = new Set([408, 425, 429]);

export type DeliveryResult =
  | { readonly ok: true; readonly status: number }
  | { readonly ok: false; readonly status?: number; readonly reason: string; readonly permanent: boolean };

/**
 * One POST of a verified payload to the CRM API: the exact bytes, the stored headers, a
 * Content-Length of the gateway's own. `timeoutMs` is upstream inactivity, as for proxied
 * requests. 2xx is delivered; 5xx, 408/425/429 and network failures are worth retrying;
 * other 4xx mean the CRM API refuses this payload.
 */
export function deliver(target: URL, d: Delivery, agent: http.Agent, timeoutMs: number): Promise<DeliveryResult> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (r: DeliveryResult): void => {
      if (settled) return;
      settled = true;
      resolve(r);
    };
    let req: http.ClientRequest;
    try {
      req = openRequest(target, d, agent, done);
    } catch (err) {
      // Node refuses to build the request (a header value or path it will not send): this entry
      // can never be delivered, so it counts as a refusal and ends in the dead letters. Thrown
      // from here it would have ended the delivery loop and left the queue stuck behind it.
      done({ ok: false, reason: `cannot be sent: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, permanent: true });
      return;
    }
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err: NodeJS.ErrnoException) => done({ ok: false, reason: err.code ?? err.message, permanent: false }));
    req.end(d.body);
  });
}

/** The POST itself, with the answer mapped to a result; throws when Node refuses the path or a header. */
function openRequest(target: URL, d: Delivery, agent: http.Agent, done: (r: DeliveryResult) => void): http.ClientRequest {
  const headers = { ...d.headers, 'content-length': String(d.body.length) };
  const request = target.protocol === 'https:' ? https.request : http.request;
  return request(
    { protocol: target.protocol, hostname: target.hostname.replace(/^\[|\]$/g, ''), port: target.port || undefined, method: 'POST', path: d.path, headers, agent },
    (res) => {
      const status = res.statusCode ?? 0;
      // Drain the answer so the keep-alive socket can be reused; its content is not ours to keep.
      res.resume();
      res.on('end', () => {
        if (status >= 200 && status < 300) done({ ok: true, status });
        else done({ ok: false, status, reason: `status ${status}`, permanent: status >= 400 && status < 500 && !RETRYABLE_4XX.has(status) });
      });
      res.on('error', (err) => done({ ok: false, status, reason: `answer broken: ${err.message}`, permanent: false }));
      res.on('close', () => done({ ok: false, status, reason: 'answer cut off', permanent: false }));
    },
  );
}
