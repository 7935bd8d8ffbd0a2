import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { RouteConfig } from '../config/schema.js';
import { GatewayError } from '../errors.js';

/**
 * Browser code cannot set Authorization on a websocket, only the subprotocols it offers. So, as
 * Kubernetes does (`base64url.bearer.authorization.k8s.io.<token>`), a client on a bearer route
 * may offer its token as one subprotocol: `bearer.<jwt>` (a JWT's characters are all legal in a
 * subprotocol token, so it needs no second encoding). Headers are never logged, unlike a URL.
 */
export const BEARER_PROTOCOL_PREFIX = 'bearer.';
/**
 * The protocol the gateway answers when the application selects none. A browser that offered
 * subprotocols fails a handshake whose answer names none it offered (RFC 6455 §4.1), and the
 * token entry must never be echoed back; so a client without a subprotocol of its own offers
 * `bearer` beside the token: `new WebSocket(url, ['bearer', 'bearer.' + jwt])`.
 */
export const BEARER_PROTOCOL = 'bearer';

const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** What the handshake answer needs once the token entry is gone. */
export interface ProtocolBearer {
  /** The client offered `bearer`: answer it when the upstream selects nothing. */
  readonly marker: boolean;
}

/** Routes whose credentials the gateway checks; on `none` routes headers and query are the application's. */
export function takesGatewayAuth(route: RouteConfig): boolean {
  return route.auth === 'jwt' || route.auth === 'jwt-or-session' || route.auth === 'session';
}

/** Whether the request came with an Authorization header (counted raw, as readBearer does). */
export function hasAuthorization(req: IncomingMessage): boolean {
  return req.rawHeaders.some((h, i) => i % 2 === 0 && h.toLowerCase() === 'authorization');
}

/**
 * Gives an upgrade the bearer token that came another way (subprotocol, ticket) as its
 * Authorization header, so the one bearer path (readBearer, verification, revocation, ambiguity
 * checks, stripping before the upstream) handles it.
 */
export function putBearer(req: IncomingMessage, jwt: string): void {
  req.headers.authorization = `Bearer ${jwt}`;
  req.rawHeaders.push('Authorization', `Bearer ${jwt}`);
}

function offered(req: IncomingMessage): string[] {
  const raw = req.headers['sec-websocket-protocol'];
  if (raw === undefined) return [];
  return String(raw)
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
}

/**
 * Moves a `bearer.<jwt>` subprotocol of an upgrade into the request's Authorization header
 * (putBearer) and removes it and `bearer` from the offer the upstream sees. Only on routes the
 * gateway authenticates. Undefined when the client offered no token.
 */
export function takeProtocolBearer(req: IncomingMessage, route: RouteConfig): ProtocolBearer | undefined {
  if (!takesGatewayAuth(route)) return undefined;
  const protocols = offered(req);
  const tokens = protocols.filter((p) => p.startsWith(BEARER_PROTOCOL_PREFIX));
  if (tokens.length === 0) return undefined;
  if (tokens.length > 1) throw new GatewayError('AUTH_AMBIGUOUS', 'several bearer subprotocols');
  if (hasAuthorization(req)) {
    throw new GatewayError('AUTH_AMBIGUOUS', 'token in both the Authorization header and a subprotocol');
  }
  const jwt = (tokens[0] as string).slice(BEARER_PROTOCOL_PREFIX.length);
  if (!JWT.test(jwt)) throw new GatewayError('AUTH_INVALID', 'the bearer subprotocol is not a JWT');
  const marker = protocols.includes(BEARER_PROTOCOL);
  const rest = protocols.filter((p) => p !== BEARER_PROTOCOL && !p.startsWith(BEARER_PROTOCOL_PREFIX));
  if (!marker && rest.length === 0) {
    throw new GatewayError('UPGRADE_NOT_ALLOWED', 'a bearer subprotocol without `bearer` or an application subprotocol beside it');
  }
  // No copy of the token may stay in the headers the upstream or a log could see.
  for (let i = req.rawHeaders.length - 2; i >= 0; i -= 2) {
    if (req.rawHeaders[i]?.toLowerCase() === 'sec-websocket-protocol') req.rawHeaders.splice(i, 2);
  }
  if (rest.length > 0) {
    req.headers['sec-websocket-protocol'] = rest.join(', ');
    req.rawHeaders.push('Sec-WebSocket-Protocol', rest.join(', '));
  } else {
    delete req.headers['sec-websocket-protocol'];
  }
  putBearer(req, jwt);
  return { marker };
}

/** Edits the upstream's 101 answer: `bearer` when it selected no subprotocol and the client offered it. */
export function answerProtocol(headers: IncomingHttpHeaders, bearer: ProtocolBearer): void {
  if (headers['sec-websocket-protocol'] === undefined && bearer.marker) headers['sec-websocket-protocol'] = BEARER_PROTOCOL;
}
