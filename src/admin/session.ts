import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { stringifySetCookie } from 'cookie';
import { ADMIN_CSRF_COOKIE, ADMIN_SESSION_COOKIE, parseCookies, singleCookie } from '../auth/cookies.js';
import { sessionVoided, type AuthService } from '../auth/service.js';

/**
 * Browser sign-ins to the security overview. The admin listener is plain HTTP on loopback, where
 * a browser refuses `Secure` (and so `__Host-`) cookies, so these cookies are their own: scoped
 * to `/security`, HttpOnly, SameSite=Strict (no cross-site request carries them, not even a
 * top-level link), and holding only a random handle. The session itself lives in the auth
 * store's key-value store under the handle's hash: it cannot be replayed as an application
 * session or a bearer token, and signing out deletes it everywhere at once.
 */
export const ADMIN_COOKIE_PATH = '/security';
/** How long a sign-in form stays valid. */
const FORM_TTL_MS = 30 * 60_000;
const HANDLE = /^[A-Za-z0-9_-]{43}$/;

interface StoredSession {
  readonly user: string;
  /** When the password was checked (seconds, as a session token's auth_time). */
  readonly authTime: number;
  /** The synchronizer token of this session's forms (sign-out). */
  readonly csrf: string;
}

export interface AdminSession {
  readonly subject: string;
  /** The account's roles now, not at sign-in: a role removed takes effect at the next page. */
  readonly roles: readonly string[];
  readonly csrf: string;
  readonly key: string;
}

function cookie(name: string, value: string, maxAgeMs: number): string {
  return stringifySetCookie({ name, value, httpOnly: true, sameSite: 'strict', path: ADMIN_COOKIE_PATH, maxAge: Math.max(0, Math.floor(maxAgeMs / 1000)) });
}

function keyOf(handle: string): string {
  return `admin:session:${createHash('sha256').update(handle).digest('base64url')}`;
}

export class AdminSessions {
  constructor(
    private readonly auth: AuthService,
    private readonly ttlMs: number,
  ) {}

  /** A fresh token for the sign-in form, and the cookie that pairs with it (double submit). */
  formToken(): { token: string; cookie: string } {
    const token = randomBytes(24).toString('base64url');
    return { token, cookie: cookie(ADMIN_CSRF_COOKIE, token, FORM_TTL_MS) };
  }

  /** The sign-in form's token cookie, or undefined when missing or sent twice (cookie tossing). */
  formCookie(req: IncomingMessage): string | undefined {
    const v = singleCookie(parseCookies(req.headers.cookie), ADMIN_CSRF_COOKIE);
    return v === 'ambiguous' ? undefined : v;
  }

  async start(user: string): Promise<{ cookies: string[] }> {
    const handle = randomBytes(32).toString('base64url');
    const stored: StoredSession = { user, authTime: Date.now() / 1000, csrf: randomBytes(24).toString('base64url') };
    await this.auth.kv.set(keyOf(handle), JSON.stringify(stored), this.ttlMs);
    return { cookies: [cookie(ADMIN_SESSION_COOKIE, handle, this.ttlMs), cookie(ADMIN_CSRF_COOKIE, '', 0)] };
  }

  /**
   * The session the request's cookie names, if it is live and its account still usable: not
   * disabled, not removed, password unchanged since. Anything else is no session.
   */
  async find(req: IncomingMessage): Promise<AdminSession | undefined> {
    const handle = singleCookie(parseCookies(req.headers.cookie), ADMIN_SESSION_COOKIE);
    if (typeof handle !== 'string' || handle === 'ambiguous' || !HANDLE.test(handle)) return undefined;
    const key = keyOf(handle);
    const raw = await this.auth.kv.get(key);
    if (!raw) return undefined;
    const s = JSON.parse(raw) as StoredSession;
    const user = await this.auth.store.getUser(s.user);
    if (!user || user.disabled || sessionVoided(s.authTime, user.sessionsValidFrom)) {
      await this.auth.kv.del(key);
      return undefined;
    }
    return { subject: user.name, roles: user.roles, csrf: s.csrf, key };
  }

  async end(session: AdminSession): Promise<{ cookies: string[] }> {
    await this.auth.kv.del(session.key);
    return { cookies: [cookie(ADMIN_SESSION_COOKIE, '', 0)] };
  }
}
