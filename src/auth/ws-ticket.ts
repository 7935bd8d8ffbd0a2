import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { RouteConfig } from '../config/schema.js';
import type { RequestContext } from '../context.js';
import { GatewayError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { decodeQueryName } from '../routing/query-name.js';
import type { Kv } from '../stores/kv.js';
import { OneTimeTickets } from './one-time-tickets.js';
import { readBearer } from './credentials.js';
import type { AuthService } from './service.js';
import { hasAuthorization, putBearer, takesGatewayAuth } from './ws-bearer.js';

/** POST here with a bearer token: a ticket for one websocket upgrade on this host. */
export const WS_TICKET_PATH = '/auth/ws-ticket';
/**
 * The query parameter that carries the ticket. Named `…token` so that the audit log's
 * redaction (query values of token-like names) hides it even on a refusal that comes before
 * the gateway takes it out of the query.
 */
export const WS_TICKET_PARAM = 'ws_token';
/** Long enough to open a websocket right after asking, short enough to be worthless in a log. */
export const WS_TICKET_TTL_MS = 30_000;

/** 256 random bits. */
const TICKET_BYTES = 32;
const SEAL_INFO = 'crm-gateway ws-ticket seal';

interface Sealed {
  host: string;
  iv: string;
  data: string;
  tag: string;
}

/** The store holds the token sealed with a key only the ticket gives: a store dump opens nothing. */
const sealKey = (ticket: string): Buffer => createHmac('sha256', ticket).update(SEAL_INFO).digest();

/**
 * Single-use websocket tickets: the browser's alternative to the `bearer.<jwt>` subprotocol for
 * clients that cannot offer subprotocols. A ticket is 256 random bits, valid WS_TICKET_TTL_MS,
 * for the host it was issued on, redeemed once (GETDEL, so two instances cannot both take it).
 * It stands for the bearer token it was issued for, which the upgrade then checks as usual:
 * expiry, revocation and a disabled account refuse it, and the socket is tracked by that
 * token's id and expiry.
 */
export class WsTickets {
  private readonly tickets: OneTimeTickets;

  constructor(kv: Kv) {
    this.tickets = new OneTimeTickets(kv, 'wst', TICKET_BYTES, WS_TICKET_TTL_MS);
  }

  issue(token: string, host: string): Promise<string> {
    return this.tickets.issue((ticket) => {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', sealKey(ticket), iv);
      cipher.setAAD(Buffer.from(host));
      const data = Buffer.concat([cipher.update(token, 'utf8'), cipher.final()]);
      const sealed: Sealed = { host, iv: iv.toString('base64url'), data: data.toString('base64url'), tag: cipher.getAuthTag().toString('base64url') };
      return JSON.stringify(sealed);
    });
  }

  /** The bearer token a ticket stands for; WS_TICKET_INVALID when unknown, used, expired or for another host. */
  async redeem(ticket: string, host: string): Promise<string> {
    if (!this.tickets.wellFormed(ticket)) throw new GatewayError('WS_TICKET_INVALID', 'malformed ticket');
    const raw = await this.tickets.take(ticket);
    if (raw === undefined) throw new GatewayError('WS_TICKET_INVALID', 'unknown, used or expired ticket');
    const sealed = JSON.parse(raw) as Sealed;
    // Burnt either way: a ticket tried on the wrong host was leaked or misused.
    if (sealed.host !== host) throw new GatewayError('WS_TICKET_INVALID', `ticket for ${sealed.host} redeemed on ${host}`);
    const decipher = createDecipheriv('aes-256-gcm', sealKey(ticket), Buffer.from(sealed.iv, 'base64url'));
    decipher.setAAD(Buffer.from(host));
    decipher.setAuthTag(Buffer.from(sealed.tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(sealed.data, 'base64url')), decipher.final()]).toString('utf8');
  }
}

/**
 * POST /auth/ws-ticket with `Authorization: Bearer <access token>` → `{ ticket, expires_in }`.
 * The token is checked now (signature, expiry, revocation, account) so a bad one is refused
 * here rather than at the upgrade; roles are the route's business, checked at the upgrade.
 */
export function createWsTicketEndpoint(auth: AuthService, log: Logger, tickets: WsTickets) {
  return async (ctx: RequestContext, res: ServerResponse): Promise<void> => {
    if (ctx.req.method !== 'POST') throw new GatewayError('METHOD_NOT_ALLOWED', `${ctx.req.method} ${WS_TICKET_PATH}`);
    const token = readBearer(ctx.req);
    if (!token) throw new GatewayError('AUTH_REQUIRED', 'no bearer token for a websocket ticket');
    const claims = await auth.tokens.verify(token);
    if (claims.typ !== 'access') throw new GatewayError('AUTH_INVALID', `${claims.typ} token used for a websocket ticket`);
    ctx.principal = await auth.principalFor(claims, 'jwt');
    const host = ctx.target?.host ?? '';
    const ticket = await tickets.issue(token, host);
    log.security('auth.ws_ticket_issued', { requestId: ctx.id, user: claims.sub, tokenId: claims.jti, host });
    const body = JSON.stringify({ ticket, expires_in: WS_TICKET_TTL_MS / 1000 });
    ctx.reply.answer(res, 200, { body: { contentType: 'application/json', body } });
  };
}

/** The `name=value` pieces of a query whose name is `param`, and the query without them (the rest byte for byte). */
function splitQuery(query: string, param: string): { values: string[]; rest: string } {
  const values: string[] = [];
  const kept: string[] = [];
  for (const piece of query.split('&')) {
    const eq = piece.indexOf('=');
    if (decodeQueryName(eq < 0 ? piece : piece.slice(0, eq)) === param) values.push(eq < 0 ? '' : piece.slice(eq + 1));
    else kept.push(piece);
  }
  return { values, rest: kept.join('&') };
}

/**
 * Redeems the `ws_token` ticket of an upgrade into the request's Authorization header, so the
 * usual authentication checks the token it stands for. The ticket leaves the query first:
 * neither the access line nor the upstream sees it, redeemed or refused.
 */
export async function takeTicket(ctx: RequestContext, route: RouteConfig, tickets: WsTickets): Promise<boolean> {
  const target = ctx.target;
  if (!takesGatewayAuth(route) || !target?.query) return false;
  const { values, rest } = splitQuery(target.query, WS_TICKET_PARAM);
  if (values.length === 0) return false;
  target.query = rest;
  if (values.length > 1) throw new GatewayError('AUTH_AMBIGUOUS', 'several websocket tickets');
  if (hasAuthorization(ctx.req)) throw new GatewayError('AUTH_AMBIGUOUS', 'a websocket ticket and another bearer token');
  putBearer(ctx.req, await tickets.redeem(values[0] as string, target.host));
  return true;
}
