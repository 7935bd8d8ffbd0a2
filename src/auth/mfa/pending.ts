import { randomBytes } from 'node:crypto';
import type { RequestContext } from '../../context.js';
import { GatewayError } from '../../errors.js';
import type { Kv } from '../../stores/kv.js';
import { MFA_COOKIE, clearCookie, parseCookies, setCookie, singleCookie } from '../cookies.js';
import type { SignedIn } from '../sessions/types.js';

/**
 * The browser's half of a sign-in between its first and second factor: MFA_COOKIE, `__Host-` (so
 * no sibling host can plant one), SameSite=Strict (no other site's page or link carries it; Lax
 * after an identity provider, see start), HttpOnly.
 */
export { MFA_COOKIE };
/** Long enough to open an authenticator app or enrol one; a password proved longer ago is asked again. */
export const PENDING_TTL_MS = 5 * 60_000;
const ID = /^[A-Za-z0-9_-]{43}$/;

export interface PendingSignIn {
  /** Who proved the first factor; absent for a passkey sign-in that has not named a user yet. */
  who?: SignedIn | undefined;
  /** The checked return URL. */
  rd: string;
  /** The host it began on: the cookie is host-only, and the state is refused anywhere else. */
  host: string;
  /** No second factor enrolled but one required: enrolment comes before the session. */
  enrol: boolean;
  /** Set once a factor has been proved during enrolment (the recovery codes page is then showing). */
  proved?: 'totp' | 'webauthn' | undefined;
}

/**
 * Pending sign-ins in the shared Kv (Redis with REDIS_URL: any instance continues the step). The
 * cookie holds 256 random bits; the state lives only server-side, for PENDING_TTL_MS.
 */
export class PendingSignIns {
  constructor(private readonly kv: Kv) {}

  async start(ctx: RequestContext, state: PendingSignIn): Promise<string> {
    const id = randomBytes(32).toString('base64url');
    await this.kv.set(key(id), JSON.stringify(state), PENDING_TTL_MS);
    // After an identity provider the cookie is set on the callback, an answer in a navigation that
    // came from the provider's site: Chromium withholds a Strict cookie on the redirect that
    // follows (to the enrolment or code page), and the sign-in dead-ends at the login page
    // (test/e2e/oidc-signin.test.ts). Lax is sent on that top-level GET and still never on another
    // site's POST or subresource; every step that acts is a POST with the CSRF token of its own
    // cookie and a same-host Origin, and the value is 256 random bits on a `__Host-` HttpOnly
    // cookie for 5 minutes. A password or passkey first factor is same-site: Strict stays there.
    ctx.reply.cookie(setCookie(MFA_COOKIE, id, PENDING_TTL_MS, state.who?.method === 'oidc' ? 'lax' : 'strict'));
    return id;
  }

  /** This browser's pending sign-in on this host, or undefined. */
  async read(ctx: RequestContext, host: string): Promise<{ id: string; state: PendingSignIn } | undefined> {
    const id = singleCookie(parseCookies(ctx.req.headers.cookie), MFA_COOKIE);
    if (typeof id !== 'string' || !ID.test(id)) return undefined;
    const raw = await this.kv.get(key(id));
    if (!raw) return undefined;
    const state = JSON.parse(raw) as PendingSignIn;
    if (state.host !== host) return undefined;
    return { id, state };
  }

  /** As `read`, or MFA_EXPIRED. */
  async need(ctx: RequestContext, host: string): Promise<{ id: string; state: PendingSignIn }> {
    const found = await this.read(ctx, host);
    if (!found) throw new GatewayError('MFA_EXPIRED', 'no pending sign-in for this browser on this host');
    return found;
  }

  async update(id: string, state: PendingSignIn): Promise<void> {
    await this.kv.set(key(id), JSON.stringify(state), PENDING_TTL_MS);
  }

  /**
   * Ends the pending sign-in: only the first of two racing requests gets `true` (getdel), so one
   * proof never completes two sessions.
   */
  async finish(ctx: RequestContext, id: string): Promise<boolean> {
    ctx.reply.cookie(clearCookie(MFA_COOKIE));
    return (await this.kv.getdel(key(id))) !== undefined;
  }
}

function key(id: string): string {
  return `mfa:pending:${id}`;
}
