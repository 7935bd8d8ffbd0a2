import type { IncomingMessage } from 'node:http';
import { GatewayError } from '../errors.js';

/**
 * Body framing the gateway and an upstream could read differently (request smuggling):
 * Node's strict parser refuses most shapes; these are the ones it lets through.
 */
export function checkFraming(req: IncomingMessage): void {
  let contentLength = 0;
  let transferEncoding = 0;
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]?.toLowerCase();
    if (name === 'content-length') contentLength++;
    else if (name === 'transfer-encoding') transferEncoding++;
  }
  if (contentLength > 1) throw new GatewayError('HEADER_INVALID', 'repeated Content-Length');
  if (transferEncoding > 1) throw new GatewayError('HEADER_INVALID', 'repeated Transfer-Encoding');
  const te = req.headers['transfer-encoding'];
  if (te !== undefined) {
    if (contentLength > 0) throw new GatewayError('HEADER_INVALID', 'Content-Length with Transfer-Encoding');
    if (te.trim().toLowerCase() !== 'chunked') throw new GatewayError('HEADER_INVALID', `Transfer-Encoding ${JSON.stringify(te)}`);
  }
}
