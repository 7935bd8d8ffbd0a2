import type { ServerResponse } from 'node:http';
import type { RequestContext } from '../../context.js';
import { GatewayError, isGatewayError } from '../../errors.js';
import type { Logger } from '../../log/logger.js';
import type { ChallengeStore } from './challenges.js';

/** RFC 8555 §8.3: tokens are base64url; anything else is no token of ours. */
const TOKEN = /^[A-Za-z0-9_-]{16,128}$/;

/** The plain-HTTP listener's HTTP-01 answer, and the Hosts it answers for. */
export interface Http01Responder {
  (ctx: RequestContext, res: ServerResponse, token: string): Promise<void>;
  /**
   * A Host the certificate covers (the names ordered). Only for these is the challenge path
   * exempt from the redirect: the CA validates those names and no other, so for any other Host
   * the listener answers as it would without ACME (src/app.ts: a 308 for a host it serves, a 404
   * for one it does not) and no key authorization is given out.
   */
  covers(host: string): boolean;
}

/**
 * Answers `GET /.well-known/acme-challenge/<token>` on the plain-HTTP listener with the key
 * authorization of a pending HTTP-01 challenge (from Redis, so any instance answers the CA).
 * Anything else under the prefix, for a covered Host, is a 404 with its own code: nothing is
 * redirected or proxied.
 */
export function createHttp01Responder(store: ChallengeStore, log: Logger, hosts: readonly string[]): Http01Responder {
  const covered = new Set(hosts);
  const respond = async (ctx: RequestContext, res: ServerResponse, token: string): Promise<void> => {
    try {
      const method = ctx.req.method;
      let value: string | undefined;
      if (TOKEN.test(token) && (method === 'GET' || method === 'HEAD')) {
        try {
          value = await store.http(token);
        } catch (err) {
          throw new GatewayError('ACME_CHALLENGE_UNAVAILABLE', `challenge store: ${(err as Error).message}`);
        }
      }
      if (value === undefined) throw new GatewayError('ACME_CHALLENGE_UNKNOWN', `${method ?? '?'} token ${token.slice(0, 64)}`);
      // RFC 8555 §8.3's example answers application/octet-stream; the CA compares the bytes.
      ctx.reply.answer(res, 200, { body: { contentType: 'application/octet-stream', body: value } });
      log.security('acme.challenge_answered', { type: 'http-01', host: ctx.target?.host, clientIp: ctx.address?.client.address, requestId: ctx.id });
    } catch (err) {
      ctx.reply.refuse(res, isGatewayError(err) ? err : new GatewayError('INTERNAL', String(err)), false);
    }
  };
  return Object.assign(respond, { covers: (host: string) => covered.has(host) });
}
