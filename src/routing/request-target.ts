import type { IncomingMessage } from 'node:http';
import { GatewayError } from '../errors.js';
import { normalizeHost } from './host.js';

export interface RequestTarget {
  /** Normalized Host (lower case, no port or trailing dot). */
  host: string;
  /** The raw path, before normalization (for the log only). */
  rawPath: string;
  /** Query string without the `?`, passed on unchanged; '' when absent. */
  query: string;
}

const FORBIDDEN_METHODS = new Set(['CONNECT', 'TRACE', 'TRACK']);

/**
 * Reads the Host and the request target. Accepts origin-form, and absolute-form only when
 * its authority is the Host itself; refuses asterisk-form, CONNECT/TRACE, fragments, raw
 * control characters, and a missing, repeated or malformed Host.
 */
export function readRequestTarget(req: IncomingMessage, maxUrlLength: number): RequestTarget {
  const method = req.method ?? '';
  if (FORBIDDEN_METHODS.has(method)) throw new GatewayError('METHOD_NOT_ALLOWED', `method ${method}`);

  let hostCount = 0;
  for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i]?.toLowerCase() === 'host') hostCount++;
  if (hostCount !== 1) throw new GatewayError('HOST_INVALID', `${hostCount} Host headers`);
  const host = normalizeHost(req.headers.host);
  if (!host) throw new GatewayError('HOST_INVALID', `malformed Host ${JSON.stringify(req.headers.host)}`);

  const url = req.url ?? '';
  if (url.length > maxUrlLength) throw new GatewayError('URI_TOO_LONG', `${url.length} bytes`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0020\u007f-\uffff]/.test(url)) throw new GatewayError('BAD_REQUEST_TARGET', 'control, space or non-ASCII character');
  if (url.includes('#')) throw new GatewayError('BAD_REQUEST_TARGET', 'fragment in request target');

  let pathAndQuery: string;
  if (url.startsWith('/')) {
    pathAndQuery = url;
  } else if (/^https?:\/\//i.test(url)) {
    const afterScheme = url.slice(url.indexOf('//') + 2);
    const slash = afterScheme.search(/[/?]/);
    const authority = slash < 0 ? afterScheme : afterScheme.slice(0, slash);
    if (authority.includes('@')) throw new GatewayError('BAD_REQUEST_TARGET', 'userinfo in absolute-form target');
    if (normalizeHost(authority) !== host) throw new GatewayError('BAD_REQUEST_TARGET', `absolute-form host ${authority} is not the Host`);
    const rest = slash < 0 ? '/' : afterScheme.slice(slash);
    pathAndQuery = rest.startsWith('?') ? `/${rest}` : rest;
  } else {
    throw new GatewayError('BAD_REQUEST_TARGET', url === '*' ? 'asterisk-form target' : 'unsupported request-target form');
  }

  const q = pathAndQuery.indexOf('?');
  return {
    host,
    rawPath: q < 0 ? pathAndQuery : pathAndQuery.slice(0, q),
    query: q < 0 ? '' : pathAndQuery.slice(q + 1),
  };
}
