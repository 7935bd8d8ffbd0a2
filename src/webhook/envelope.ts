import type { OutgoingHttpHeaders } from 'node:http';

/** One verified payload on its way to the CRM API: what is queued and what is sent. */
export interface Delivery {
  /** Upstream path and query. */
  readonly path: string;
  /** Headers after the gateway's hygiene, including its verification header; no framing headers. */
  readonly headers: OutgoingHttpHeaders;
  /** The exact bytes Meta signed. */
  readonly body: Buffer;
  /** Request id of the webhook call that brought it, to join the logs. */
  readonly requestId: string;
  /** ms since the epoch when the gateway accepted it. */
  readonly receivedAt: number;
}

/**
 * length(4, BE) ‖ JSON of everything but the body ‖ body. The body stays raw bytes: no base64
 * growth, and no chance of a re-encoding changing what Meta signed.
 */
export function encodeDelivery(d: Delivery): Buffer {
  const meta = Buffer.from(JSON.stringify({ path: d.path, headers: d.headers, requestId: d.requestId, receivedAt: d.receivedAt }));
  const len = Buffer.alloc(4);
  len.writeUInt32BE(meta.length);
  return Buffer.concat([len, meta, d.body]);
}

export function decodeDelivery(buf: Buffer): Delivery {
  if (buf.length < 4) throw new Error('delivery envelope truncated');
  const n = buf.readUInt32BE(0);
  if (buf.length < 4 + n) throw new Error('delivery envelope truncated');
  const meta = JSON.parse(buf.subarray(4, 4 + n).toString('utf8')) as Omit<Delivery, 'body'>;
  if (typeof meta.path !== 'string' || typeof meta.headers !== 'object' || meta.headers === null) throw new Error('delivery envelope malformed');
  return { path: meta.path, headers: meta.headers, requestId: String(meta.requestId), receivedAt: Number(meta.receivedAt), body: buf.subarray(4 + n) };
}
