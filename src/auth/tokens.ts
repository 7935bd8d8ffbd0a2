import { randomBytes } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { Strategy as JwtStrategy } from 'passport-jwt';
import { boundedCache } from '../stores/bounded-cache.js';
import { GatewayError } from '../errors.js';
import { JWT_ALGORITHM, type KeyRing } from './keyring.js';
import { missingClaim, type TokenClaims } from './claims.js';
import type { Factor } from './sessions/types.js';

export interface TokenPolicy {
  issuer: string;
  audience: string;
  /** Longest allowed exp - iat, ms. */
  maxTokenTtl: number;
  /** Allowed clock skew, ms (at most 30 s). */
  clockSkew: number;
}

/** Verified tokens kept until their expiry, so a hot token costs one map lookup. */
const VERIFIED_CACHE_MAX = 10_000;
const MAX_CLOCK_SKEW_MS = 30_000;
/** Refuse absurdly large tokens before any parsing. */
const MAX_TOKEN_LENGTH = 8_192;

/** The request shape handed to the passport strategy: the token already extracted. */
interface TokenCarrier {
  token: string;
}

/**
 * Issues and verifies the gateway's JWTs. Verification runs through passport-jwt with a
 * prebuilt KeyObject chosen by `kid` (jsonwebtoken 9 re-parses string secrets on every
 * verify: auth0/node-jsonwebtoken#966). The algorithm is pinned per key: a token's `alg`
 * must equal it, so `none`, `None` and public-key confusion never reach a verifier; `jku`,
 * `x5u` and `jwk` headers are never read.
 */
export class TokenService {
  private readonly strategy: JwtStrategy;
  private readonly cache = boundedCache<string, TokenClaims>(VERIFIED_CACHE_MAX, { ttlAutopurge: false });
  private readonly skewSeconds: number;

  constructor(
    private readonly ring: KeyRing,
    private readonly policy: TokenPolicy,
    private readonly now: () => number = Date.now,
  ) {
    this.skewSeconds = Math.floor(Math.min(policy.clockSkew, MAX_CLOCK_SKEW_MS) / 1000);
    this.strategy = new JwtStrategy(
      {
        jwtFromRequest: (req: unknown) => (req as TokenCarrier).token,
        secretOrKeyProvider: (_req: unknown, raw: string, done: (err: unknown, key?: unknown) => void) => {
          const decoded = jwt.decode(raw, { complete: true });
          if (!decoded || typeof decoded === 'string') return done(new GatewayError('AUTH_INVALID', 'not a JWT'));
          const { alg, kid, typ } = decoded.header;
          if (alg !== JWT_ALGORITHM) return done(new GatewayError('AUTH_INVALID', `alg ${JSON.stringify(alg)} is not ${JWT_ALGORITHM}`));
          if (typ !== undefined && typ !== 'JWT') return done(new GatewayError('AUTH_INVALID', `typ ${JSON.stringify(typ)}`));
          // RFC 7515 §4.1.11: a recipient must refuse a `crit` it does not implement, and the
          // gateway implements none (jsonwebtoken ignores the header, e.g. `b64: false`).
          if ('crit' in decoded.header) return done(new GatewayError('AUTH_INVALID', `crit header ${JSON.stringify(decoded.header.crit)}`));
          const key = this.ring.lookup(kid, new Date(this.now()));
          if (!key) return done(new GatewayError('AUTH_INVALID', `unknown or retired kid ${JSON.stringify(kid)}`));
          done(null, key.key);
        },
        algorithms: [JWT_ALGORITHM],
        issuer: policy.issuer,
        audience: policy.audience,
        jsonWebTokenOptions: { clockTolerance: this.skewSeconds },
      } as unknown as ConstructorParameters<typeof JwtStrategy>[0],
      (payload: unknown, done: (err: unknown, user?: unknown) => void) => done(null, payload),
    );
  }

  /** Signs a token with the current key. */
  issue(input: { sub: string; roles: readonly string[]; ttlMs: number; typ: TokenClaims['typ']; family?: string; authTime?: number; sid?: string | undefined; amr?: readonly Factor[] | undefined }): { token: string; claims: TokenClaims } {
    if (input.ttlMs > this.policy.maxTokenTtl) throw new Error(`token lifetime ${input.ttlMs} ms is over the maximum ${this.policy.maxTokenTtl} ms`);
    const iat = Math.floor(this.now() / 1000);
    const claims: TokenClaims = {
      sub: input.sub,
      iss: this.policy.issuer,
      aud: this.policy.audience,
      iat,
      exp: iat + Math.max(1, Math.floor(input.ttlMs / 1000)),
      jti: randomBytes(16).toString('base64url'),
      roles: [...input.roles],
      typ: input.typ,
      ...(input.family ? { fam: input.family } : {}),
      ...(input.authTime !== undefined ? { auth_time: input.authTime } : {}),
      ...(input.sid ? { sid: input.sid } : {}),
      ...(input.amr ? { amr: [...input.amr] } : {}),
    };
    const token = jwt.sign(claims, this.ring.current.key, { algorithm: JWT_ALGORITHM, keyid: this.ring.current.kid, header: { alg: JWT_ALGORITHM, typ: 'JWT', kid: this.ring.current.kid } });
    return { token, claims };
  }

  /**
   * Verifies signature, key, algorithm and every required claim, or throws AUTH_INVALID /
   * AUTH_EXPIRED. Revocation and account state are the caller's next checks.
   */
  async verify(token: string): Promise<TokenClaims> {
    if (token.length > MAX_TOKEN_LENGTH) throw new GatewayError('AUTH_INVALID', 'token too long');
    const nowMs = this.now();
    const cached = this.cache.get(token);
    if (cached) {
      if ((cached.exp + this.skewSeconds) * 1000 > nowMs) return cached;
      this.cache.delete(token);
      throw new GatewayError('AUTH_EXPIRED', `expired at ${new Date(cached.exp * 1000).toISOString()}`);
    }
    const payload = await this.runStrategy(token);
    const missing = missingClaim(payload);
    if (missing) throw new GatewayError('AUTH_INVALID', `claim ${missing} missing or malformed`);
    const claims = payload as unknown as TokenClaims;
    if ((claims.exp - claims.iat) * 1000 > this.policy.maxTokenTtl) throw new GatewayError('AUTH_INVALID', `lifetime ${claims.exp - claims.iat} s over the maximum`);
    if (claims.iat * 1000 > nowMs + this.skewSeconds * 1000) throw new GatewayError('AUTH_INVALID', 'issued in the future');
    const normalized: TokenClaims = { ...claims, roles: claims.roles ?? [], typ: claims.typ ?? 'access' };
    this.cache.set(token, normalized, { ttl: Math.max(1, (claims.exp + this.skewSeconds) * 1000 - nowMs) });
    return normalized;
  }

  private runStrategy(token: string): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      // passport's own pattern: a per-call delegate with success/fail/error bound.
      const delegate = Object.create(this.strategy) as JwtStrategy & {
        success(user: unknown): void;
        fail(info: unknown): void;
        error(err: unknown): void;
      };
      delegate.success = (user) => resolve(user as Record<string, unknown>);
      delegate.fail = (info) => reject(toGatewayError(info));
      delegate.error = (err) => reject(toGatewayError(err));
      delegate.authenticate({ token } as never, {});
    });
  }
}

function toGatewayError(info: unknown): GatewayError {
  if (info instanceof GatewayError) return info;
  if (info instanceof jwt.TokenExpiredError) return new GatewayError('AUTH_EXPIRED', `expired at ${info.expiredAt.toISOString()}`);
  if (info instanceof Error) return new GatewayError('AUTH_INVALID', info.message);
  return new GatewayError('AUTH_INVALID', String(info));
}
