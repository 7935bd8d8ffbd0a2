import { randomBytes } from 'node:crypto';
import jwt from 'jsonwebtoken';
import type { Principal } from '../../context.js';
import { GatewayError } from '../../errors.js';
import { boundedCache } from '../../stores/bounded-cache.js';
import { ASSERTION_TTL_MS, type AssertionKey } from './keys.js';

/** The one algorithm: ECDSA P-256 (small signatures, fast to verify, in every JWT library). */
export const ASSERTION_ALGORITHM = 'ES256';
/** A cached assertion is handed out until this long before it expires, so an upstream never gets one about to lapse. */
export const ASSERTION_REFRESH_BEFORE_MS = 10_000;
/** Signed assertions kept (one per live token and route). */
const CACHE_MAX = 10_000;

/** The claims of one assertion. */
export interface AssertionClaims {
  iss: string;
  /** The route's name: an assertion shown to another route's upstream fails its audience check. */
  aud: string;
  sub: string;
  roles: string[];
  /** The factors proved at sign-in (`password`, `totp`, `webauthn`, …), when the principal has them. */
  amr?: string[];
  /** The staff session, when the principal has one. */
  sid?: string;
  /** How the gateway authenticated the request: `jwt` or `session`. */
  auth: string;
  iat: number;
  exp: number;
  jti: string;
}

interface Cached {
  readonly token: string;
  readonly exp: number;
}

/**
 * Signs the identity assertion for a principal and a route. Signing is the costly part of the
 * header (an ECDSA signature), so a signed assertion is kept per token id, route and identity
 * until ASSERTION_REFRESH_BEFORE_MS before it expires: a busy session costs one signature per
 * route every ~50 s. Its `jti` then names the assertion, not the request.
 */
export class AssertionSigner {
  private readonly cache = boundedCache<string, Cached>(CACHE_MAX, { ttlAutopurge: false });

  constructor(
    private readonly issuer: string,
    /** The key that signs now (src/auth/assertion/keys.ts `signingKey`). */
    private readonly key: (now: number) => AssertionKey | undefined,
    private readonly now: () => number = Date.now,
  ) {}

  /** The assertion for `principal` on route `aud`; throws ASSERTION_UNAVAILABLE (fail closed) when it cannot sign. */
  sign(principal: Principal, aud: string): string {
    const nowMs = this.now();
    // Everything the claims are made of: a principal whose roles or factors changed under the
    // same token id gets a new assertion, not the cached one.
    const cacheKey = principal.tokenId === undefined ? undefined : `${aud}\n${principal.tokenId}\n${principal.subject}\n${principal.roles.join(',')}\n${principal.factors?.join(',') ?? ''}\n${principal.sessionId ?? ''}\n${principal.method}`;
    const hit = cacheKey === undefined ? undefined : this.cache.get(cacheKey);
    if (hit && hit.exp * 1000 - ASSERTION_REFRESH_BEFORE_MS > nowMs) return hit.token;
    const key = this.key(nowMs);
    if (!key) throw new GatewayError('ASSERTION_UNAVAILABLE', 'no identity assertion key');
    const iat = Math.floor(nowMs / 1000);
    // Never outlives the credential it speaks for.
    const credentialEnd = principal.expiresAt === undefined ? Infinity : Math.floor(principal.expiresAt / 1000);
    const exp = Math.max(iat + 1, Math.min(iat + ASSERTION_TTL_MS / 1000, credentialEnd));
    const claims: AssertionClaims = {
      iss: this.issuer,
      aud,
      sub: principal.subject,
      roles: [...principal.roles],
      ...(principal.factors && principal.factors.length > 0 ? { amr: [...principal.factors] } : {}),
      ...(principal.sessionId ? { sid: principal.sessionId } : {}),
      auth: principal.method,
      iat,
      exp,
      jti: randomBytes(12).toString('base64url'),
    };
    let token: string;
    try {
      token = jwt.sign(claims, key.privateKey, { algorithm: ASSERTION_ALGORITHM, header: { alg: ASSERTION_ALGORITHM, typ: 'JWT', kid: key.kid } });
    } catch (err) {
      throw new GatewayError('ASSERTION_UNAVAILABLE', `signing failed: ${(err as Error).message}`);
    }
    if (cacheKey !== undefined && exp * 1000 - ASSERTION_REFRESH_BEFORE_MS > nowMs) {
      this.cache.set(cacheKey, { token, exp }, { ttl: exp * 1000 - ASSERTION_REFRESH_BEFORE_MS - nowMs });
    }
    return token;
  }

  /** Forgets every cached assertion (a key rotation that retires keys at once). */
  clear(): void {
    this.cache.clear();
  }
}
