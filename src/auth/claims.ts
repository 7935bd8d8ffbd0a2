import { isFactor, type Factor } from './sessions/types.js';

/** Claims of every token the gateway issues and accepts. */
export interface TokenClaims {
  sub: string;
  iss: string;
  aud: string;
  iat: number;
  exp: number;
  jti: string;
  roles: string[];
  /** `access` for bearer tokens of API clients and users, `session` for the browser cookie. */
  typ: 'access' | 'session';
  /** Refresh-token family of a session token: logout and reuse detection revoke it. */
  fam?: string;
  /** Session tokens: when the user logged in with the password (seconds, to the millisecond), kept across renewals. */
  auth_time?: number;
  /** Session tokens: the staff session (src/auth/sessions) this host's cookies belong to; ending it voids them on every host. */
  sid?: string;
  /** Session tokens: the factors proved at sign-in (RFC 8176 names where they exist: pwd → `password`, otp → `totp`, …). */
  amr?: Factor[];
}

const JTI = /^[A-Za-z0-9_-]{8,128}$/;
const SID = /^[A-Za-z0-9_-]{16,64}$/;

/** Shape check after the signature is verified: every required claim present and typed. */
export function missingClaim(p: Record<string, unknown>): string | undefined {
  if (typeof p.sub !== 'string' || p.sub === '') return 'sub';
  if (typeof p.iss !== 'string') return 'iss';
  if (typeof p.aud !== 'string' && !Array.isArray(p.aud)) return 'aud';
  if (typeof p.iat !== 'number' || !Number.isFinite(p.iat)) return 'iat';
  if (typeof p.exp !== 'number' || !Number.isFinite(p.exp)) return 'exp';
  if (typeof p.jti !== 'string' || !JTI.test(p.jti)) return 'jti';
  if (p.roles !== undefined && (!Array.isArray(p.roles) || !p.roles.every((r) => typeof r === 'string'))) return 'roles';
  if (p.typ !== undefined && p.typ !== 'access' && p.typ !== 'session') return 'typ';
  if (p.fam !== undefined && typeof p.fam !== 'string') return 'fam';
  if (p.auth_time !== undefined && (typeof p.auth_time !== 'number' || !Number.isFinite(p.auth_time))) return 'auth_time';
  if (p.sid !== undefined && (typeof p.sid !== 'string' || !SID.test(p.sid))) return 'sid';
  if (p.amr !== undefined && (!Array.isArray(p.amr) || p.amr.length > 8 || !p.amr.every(isFactor))) return 'amr';
  return undefined;
}
