import type { Redis } from 'ioredis';
import { REDIS_PREFIX } from '../../stores/redis.js';

/** How long a pending challenge is kept: an order that takes longer has failed anyway. */
export const CHALLENGE_TTL_MS = 10 * 60_000;

/** The TLS-ALPN-01 certificate for one host (RFC 8737), PEM. */
export interface AlpnCertificate {
  cert: string;
  key: string;
}

/**
 * The challenges of the order under way. With Redis every instance answers them, whichever
 * placed the order (the CA may reach any instance behind the load balancer); without, the one
 * process that orders keeps them in memory.
 */
export interface ChallengeStore {
  putHttp(token: string, keyAuthorization: string): Promise<void>;
  /** The key authorization for `token`, or undefined when no order under way has it. */
  http(token: string): Promise<string | undefined>;
  putAlpn(host: string, cert: AlpnCertificate): Promise<void>;
  alpn(host: string): Promise<AlpnCertificate | undefined>;
  removeHttp(token: string): Promise<void>;
  removeAlpn(host: string): Promise<void>;
}

const HTTP_KEY = `${REDIS_PREFIX}acme:http-01:`;
const ALPN_KEY = `${REDIS_PREFIX}acme:tls-alpn-01:`;

export function redisChallenges(redis: Redis): ChallengeStore {
  return {
    putHttp: async (token, value) => {
      await redis.set(HTTP_KEY + token, value, 'PX', CHALLENGE_TTL_MS);
    },
    http: async (token) => (await redis.get(HTTP_KEY + token)) ?? undefined,
    putAlpn: async (host, cert) => {
      await redis.set(ALPN_KEY + host, JSON.stringify(cert), 'PX', CHALLENGE_TTL_MS);
    },
    alpn: async (host) => {
      const raw = await redis.get(ALPN_KEY + host);
      return raw ? (JSON.parse(raw) as AlpnCertificate) : undefined;
    },
    removeHttp: async (token) => {
      await redis.del(HTTP_KEY + token);
    },
    removeAlpn: async (host) => {
      await redis.del(ALPN_KEY + host);
    },
  };
}

export function memoryChallenges(now: () => number = Date.now): ChallengeStore {
  const http = new Map<string, { value: string; until: number }>();
  const alpn = new Map<string, { value: AlpnCertificate; until: number }>();
  const live = <T>(map: Map<string, { value: T; until: number }>, key: string): T | undefined => {
    const e = map.get(key);
    if (e && e.until > now()) return e.value;
    map.delete(key);
    return undefined;
  };
  return {
    putHttp: async (token, value) => void http.set(token, { value, until: now() + CHALLENGE_TTL_MS }),
    http: async (token) => live(http, token),
    putAlpn: async (host, value) => void alpn.set(host, { value, until: now() + CHALLENGE_TTL_MS }),
    alpn: async (host) => live(alpn, host),
    removeHttp: async (token) => void http.delete(token),
    removeAlpn: async (host) => void alpn.delete(host),
  };
}
