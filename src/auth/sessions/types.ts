/**
 * The staff sign-in's shared vocabulary (issue 14). Every way in (password, passkey, OIDC, and
 * a second factor after any of them) ends in one `SignedIn` handed to `CompleteSignIn`
 * (./complete.ts), which alone creates the server-side session and sets cookies.
 */

/** A factor the person proved, as the token's `amr` claim and the sessions page list it. */
export type Factor = 'password' | 'totp' | 'recovery' | 'webauthn' | 'oidc';

export const FACTORS: readonly Factor[] = ['password', 'totp', 'recovery', 'webauthn', 'oidc'];

export function isFactor(v: unknown): v is Factor {
  return typeof v === 'string' && (FACTORS as readonly string[]).includes(v);
}

/** Who signed in and how; what a sign-in flow hands to `CompleteSignIn`. */
export interface SignedIn {
  subject: string;
  roles: string[];
  /** Every factor proved in this sign-in, first factor first (e.g. ['password', 'totp']). */
  factors: Factor[];
  /** How the first factor was given. */
  method: 'password' | 'passkey' | 'oidc';
}

/** One staff session in the server-side registry (./registry.ts). Times in ms since epoch. */
export interface StaffSession extends SignedIn {
  /** Random, URL-safe; the tokens' `sid` claim. */
  id: string;
  createdAt: number;
  lastSeenAt: number;
  /** The client address at sign-in. */
  ip: string;
  /** The User-Agent at sign-in (trimmed); the pages show a browser name parsed from it. */
  userAgent: string;
  /** When the first factor was given (ms): the `auth_time` the hosts' tokens carry. */
  authTime: number;
}
