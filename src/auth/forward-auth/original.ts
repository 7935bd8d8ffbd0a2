import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { GatewayError } from '../../errors.js';
import { normalizeHost } from '../../routing/host.js';

/** The request an edge proxy asks about, as its forwarded headers describe it. */
export interface OriginalRequest {
  method: string;
  /** The Host the client sent (with its port, if any): CSRF compares Origin with it. */
  hostHeader: string;
  /** The same, normalized (lower case, no port): routing uses it. */
  host: string;
  rawPath: string;
  /** Without the `?`; '' when absent. */
  query: string;
  /**
   * nginx `auth_request` understands only 2xx, 401 and 403 (anything else is a 500), so its
   * checks get those three, the rest said in headers (docs/deployment.md, "Forward-auth mode"). Told apart by
   * the header nginx's snippet sets, X-Original-URI; Traefik and Caddy send X-Forwarded-Uri and
   * pass the gateway's own answer (a 302, a JSON 401) through to the client.
   */
  statusOnly: boolean;
}

/**
 * The headers that describe the original request. Traefik and Caddy: X-Forwarded-Method, -Proto,
 * -Host, -Uri; nginx (no convention of its own): X-Original-URI and X-Original-Method as the
 * shipped snippet sets them, with X-Forwarded-Host. None of them is part of the original request.
 */
export const DESCRIBING = ['x-forwarded-method', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-uri', 'x-forwarded-port', 'x-original-uri', 'x-original-method', 'x-original-url'];

const METHOD = /^[A-Z]{1,20}$/;

/**
 * The one value of a header the edge sets. Counted on the raw headers: Node joins repeats of
 * unknown headers with ", ", which for a URI could pass for one value. A repeated or empty
 * header is refused: a client's copy next to the edge's would be two readings of one request.
 */
function single(req: IncomingMessage, name: string): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i]?.toLowerCase() !== name) continue;
    if (value !== undefined) throw new GatewayError('FORWARD_AUTH_BAD_REQUEST', `${name} repeated`);
    value = (req.rawHeaders[i + 1] ?? '').trim();
    if (value === '') throw new GatewayError('FORWARD_AUTH_BAD_REQUEST', `${name} empty`);
  }
  return value;
}

/**
 * Reads the original request from a check's headers; refuses (400 FORWARD_AUTH_BAD_REQUEST)
 * one that does not name its host and URI once and unambiguously. Called only for checks from
 * an edge (the caller has refused every other peer), since only an edge's headers are believed.
 */
export function readOriginal(req: IncomingMessage, maxUrlLength: number): OriginalRequest {
  const forwardedUri = single(req, 'x-forwarded-uri');
  const originalUri = single(req, 'x-original-uri');
  // Both: an edge that sets one passed the client's copy of the other (nginx passes every client
  // header to its subrequest); which one the edge will serve is unknowable, so neither is used.
  if (forwardedUri !== undefined && originalUri !== undefined) throw new GatewayError('FORWARD_AUTH_BAD_REQUEST', 'both X-Forwarded-Uri and X-Original-URI');
  const uri = forwardedUri ?? originalUri;
  if (uri === undefined) throw new GatewayError('FORWARD_AUTH_BAD_REQUEST', 'no X-Forwarded-Uri or X-Original-URI');
  if (uri.length > maxUrlLength) throw new GatewayError('FORWARD_AUTH_BAD_REQUEST', `URI of ${uri.length} bytes`);
  // The request-target step's rules: origin-form only, no controls, spaces, non-ASCII or fragment.
  // eslint-disable-next-line no-control-regex
  if (!uri.startsWith('/') || /[\u0000-\u0020\u007f-\uffff#]/.test(uri)) throw new GatewayError('FORWARD_AUTH_BAD_REQUEST', `URI ${JSON.stringify(uri.slice(0, 200))}`);

  const hostHeader = single(req, 'x-forwarded-host');
  const host = normalizeHost(hostHeader);
  if (hostHeader === undefined || host === undefined) throw new GatewayError('FORWARD_AUTH_BAD_REQUEST', `X-Forwarded-Host ${JSON.stringify(hostHeader)}`);

  const forwardedMethod = single(req, 'x-forwarded-method');
  const originalMethod = single(req, 'x-original-method');
  if (forwardedMethod !== undefined && originalMethod !== undefined && forwardedMethod !== originalMethod) {
    throw new GatewayError('FORWARD_AUTH_BAD_REQUEST', `X-Forwarded-Method ${forwardedMethod} but X-Original-Method ${originalMethod}`);
  }
  // nginx's subrequest keeps the original method, so the snippet need not set one.
  const method = (forwardedMethod ?? originalMethod ?? req.method ?? '').toUpperCase();
  if (!METHOD.test(method)) throw new GatewayError('FORWARD_AUTH_BAD_REQUEST', `method ${JSON.stringify(method)}`);

  const proto = single(req, 'x-forwarded-proto');
  if (proto !== undefined && proto !== 'https' && proto !== 'http') throw new GatewayError('FORWARD_AUTH_BAD_REQUEST', `X-Forwarded-Proto ${JSON.stringify(proto)}`);

  const q = uri.indexOf('?');
  return {
    method,
    hostHeader,
    host,
    rawPath: q < 0 ? uri : uri.slice(0, q),
    query: q < 0 ? '' : uri.slice(q + 1),
    statusOnly: originalUri !== undefined,
  };
}

/**
 * The original request as the route's steps read it: its method, and the check's headers (the
 * edge passes the client's: Cookie, Authorization, Accept, Origin) with the original Host and
 * without the describing ones. The check's own request underneath (socket, events) is unchanged.
 */
export function originalView(req: IncomingMessage, original: OriginalRequest): IncomingMessage {
  const headers: IncomingHttpHeaders = { ...req.headers, host: original.hostHeader };
  for (const name of DESCRIBING) delete headers[name];
  return Object.create(req, {
    method: { value: original.method, enumerable: true },
    headers: { value: headers, enumerable: true },
    url: { value: original.query ? `${original.rawPath}?${original.query}` : original.rawPath, enumerable: true },
  }) as IncomingMessage;
}
