import { createHash, randomBytes } from 'node:crypto';
import { GatewayError } from '../errors.js';
import type { Kv } from '../stores/kv.js';
import type { Factor } from './sessions/types.js';

interface RefreshRecord {
  family: string;
  sub: string;
  roles: string[];
  /** When the user logged in with the password (seconds, to the millisecond); absent in records made before it was kept. */
  authTime?: number;
  /** The staff session this family is one host's part of (src/auth/sessions); its tokens carry it. */
  sid?: string;
  /** The factors proved at sign-in, carried into every renewed token. */
  amr?: Factor[];
}

export interface RefreshResult {
  /** The successor refresh token; undefined for a request inside the grace window (see rotate). */
  token: string | undefined;
  record: RefreshRecord;
  /** The successor replaces one whose answer never reached the client (see markUndelivered). */
  reissued?: boolean;
}

/**
 * A browser fires several requests at once when its session expires, each carrying the same
 * refresh token. Presentations within this window after the first use are the same browser
 * racing itself: they get a new access token but no new refresh token (the first answer set
 * it). Later presentations are reuse: the family is revoked.
 */
export const DEFAULT_REFRESH_REUSE_GRACE_MS = 10_000;

/**
 * Longest a renewal's answer counts as pending (not sent yet), so that its older token is
 * still the browser's: NocoDB's long-poll holds its answer ~30 s, route timeouts are about a
 * minute. Bounds the case where the answer's fate is never recorded (the instance died).
 */
const PENDING_MAX_MS = 5 * 60_000;

/** Lost renewals rolled back for one refresh token; the next presentation after that is reuse. */
export const MAX_REISSUES_PER_TOKEN = 3;

const newToken = (): string => randomBytes(32).toString('base64url');
const hash = (token: string): string => createHash('sha256').update(token).digest('hex');

/** The used-token mark: `<usedAt ms> <record JSON>` (or the older `{ record, usedAt }` JSON). */
function parseUsed(used: string): { record: RefreshRecord; usedAt: number } {
  if (used.startsWith('{')) return JSON.parse(used) as { record: RefreshRecord; usedAt: number };
  const space = used.indexOf(' ');
  return { usedAt: Number(used.slice(0, space)), record: JSON.parse(used.slice(space + 1)) as RefreshRecord };
}

/** An access token issued for a refresh family: its id and expiry (seconds). */
export interface AccessRef {
  jti: string;
  exp: number;
}

/**
 * Bound on the access tokens read back when a family is revoked. A family lives refreshTtl
 * (12 h) from its login, renewed about every sessionTtl (15 min): ~50, plus grace races.
 */
const MAX_TRACKED_ACCESS = 1_000;

function parseAccess(v: string | undefined): AccessRef | undefined {
  if (!v) return undefined;
  const [jti = '', exp = '0'] = v.split(' ');
  return { jti, exp: Number(exp) };
}

/**
 * Rotating refresh tokens for browser sessions. Stored only as hashes; each is single use.
 * Presenting one that was already used means it was stolen (or replayed): the whole family
 * is revoked, and the caller revokes the family's current access token too. Except when the
 * answer carrying its successor never reached the browser (a long-poll cut by a navigation,
 * issue #12): that browser still holds the old token and is not a thief.
 *
 * Keys (hashes of tokens): `rt:<h>` a live token's record; `rtused:<h>` the used mark;
 * `rtnext:<h>` the successor hash that use produced; `rtpend:<successor h>` its answer is not
 * sent yet; `rtlost:<successor h>` its answer was lost.
 */
export class RefreshTokens {
  constructor(
    private readonly kv: Kv,
    private readonly ttlMs: number,
    /**
     * Called after a family is revoked (reuse or logout) with its current access token and every
     * other one it was issued (renewals inside the reuse grace leave several alive at once).
     */
    private readonly onFamilyRevoked: (family: string, access: AccessRef | undefined, earlier: readonly AccessRef[]) => Promise<void> = async () => undefined,
    private readonly reuseGraceMs: number = DEFAULT_REFRESH_REUSE_GRACE_MS,
  ) {}

  /**
   * Starts a new family (a login, or a host joining a session through the SSO hand-off, which
   * keeps the session's `authTime`, seconds, and passes its id and factors).
   */
  async start(sub: string, roles: readonly string[], session: { authTime?: number; sid?: string; amr?: readonly Factor[] } = {}): Promise<RefreshResult & { token: string }> {
    const family = randomBytes(12).toString('base64url');
    await this.kv.set(`rtfam:${family}`, 'active', this.ttlMs);
    return this.mint({
      family,
      sub,
      roles: [...roles],
      authTime: session.authTime ?? Date.now() / 1000,
      ...(session.sid ? { sid: session.sid } : {}),
      ...(session.amr ? { amr: [...session.amr] } : {}),
    });
  }

  /** Uses a refresh token: returns its successor, or throws AUTH_REVOKED / AUTH_INVALID. */
  async rotate(token: string, now: number = Date.now()): Promise<RefreshResult> {
    if (!/^[A-Za-z0-9_-]{20,200}$/.test(token)) throw new GatewayError('AUTH_INVALID', 'malformed refresh token');
    const h = hash(token);
    const successor = newToken();
    // Taken and marked used in one step: a second presentation racing the first (two tabs, two
    // instances) finds the mark and gets the grace answer, never "unknown token" (a logout).
    // The same step records which successor this use produced (see markUndelivered).
    const raw = await this.kv.consume(`rt:${h}`, `rtused:${h}`, `${now} `, this.ttlMs, { also: [`rtnext:${h}`, hash(successor)] });
    if (raw !== undefined) return this.successor(raw, successor);
    const reissued = await this.reissue(h, now);
    if (reissued) return reissued;
    // Read after the reissue attempt: a racing presentation that reissued first has moved the mark.
    const used = await this.kv.get(`rtused:${h}`);
    if (!used) throw new GatewayError('AUTH_INVALID', 'unknown or expired refresh token');
    const { record, usedAt } = parseUsed(used);
    // Within the grace, or while the answer carrying the successor is still on its way (a
    // long-poll the browser has not given up yet): the browser still holds this token.
    if ((now - usedAt <= this.reuseGraceMs || (await this.successorPending(h))) && (await this.kv.get(`rtfam:${record.family}`)) === 'active') {
      return { token: undefined, record };
    }
    await this.revokeFamily(record.family);
    throw new GatewayError('AUTH_REVOKED', `refresh token reused ${now - usedAt} ms after its first use: family ${record.family} revoked`);
  }

  /**
   * The answer carrying `token` (a successor from rotate) is on its way: until it is settled
   * (or PENDING_MAX_MS pass), the older token is still the browser's and gets the grace answer.
   * Only a caller that will settle it marks it (request-auth, on the response's close).
   */
  async markPending(token: string): Promise<void> {
    await this.kv.set(`rtpend:${hash(token)}`, '1', Math.min(PENDING_MAX_MS, this.ttlMs));
  }

  /**
   * Records the fate of the answer that carried `token` (a successor from rotate). Delivered:
   * the older token is now only the browser's past. Not delivered (the client went away before
   * the response headers were sent): its browser still holds the token it presented, and that
   * rotation is rolled back at the next presentation of the older token (see reissue) instead
   * of being taken for reuse.
   */
  async settle(token: string, delivered: boolean): Promise<void> {
    const h = hash(token);
    if (!delivered) await this.kv.set(`rtlost:${h}`, '1', this.ttlMs);
    await this.kv.del(`rtpend:${h}`);
  }

  /** settle(token, false). */
  async markUndelivered(token: string): Promise<void> {
    await this.settle(token, false);
  }

  /** The successor of used token `h` is unused and its answer not sent yet. */
  private async successorPending(h: string): Promise<boolean> {
    const next = await this.kv.get(`rtnext:${h}`);
    if (!next) return false;
    const [pending, live] = await Promise.all([this.kv.get(`rtpend:${next}`), this.kv.get(`rt:${next}`)]);
    return pending !== undefined && live !== undefined;
  }

  /**
   * A used token presented again whose successor was never delivered and never used is still
   * the browser's current one: its successor is withdrawn and a fresh one issued, in one
   * atomic step that also moves the used mark (so racing presentations get the grace answer).
   * A successor that was used (consumed, so `rt:` is gone) is a thief's: no reissue, and the
   * caller revokes the family as for any reuse.
   */
  private async reissue(h: string, now: number): Promise<RefreshResult | undefined> {
    const next = await this.kv.get(`rtnext:${h}`);
    if (!next || (await this.kv.get(`rtlost:${next}`)) === undefined) return undefined;
    // Bounded: someone holding a copy of the token could otherwise hold a request, abort it
    // before its headers, present the token again, and so never be caught as reuse (review of
    // issue #12). A browser loses a renewal now and then, not this many in a row on one token.
    if ((await this.kv.incr(`rtreis:${h}`, this.ttlMs)) > MAX_REISSUES_PER_TOKEN) return undefined;
    const fresh = newToken();
    const raw = await this.kv.consume(`rt:${next}`, `rtused:${h}`, `${now} `, this.ttlMs, { requires: `rtlost:${next}`, also: [`rtnext:${h}`, hash(fresh)] });
    if (raw === undefined) return undefined;
    return { ...(await this.successor(raw, fresh)), reissued: true };
  }

  private async successor(raw: string, token: string): Promise<RefreshResult & { token: string }> {
    const record = JSON.parse(raw) as RefreshRecord;
    if ((await this.kv.get(`rtfam:${record.family}`)) !== 'active') throw new GatewayError('AUTH_REVOKED', `refresh family ${record.family} revoked`);
    await this.kv.set(`rt:${hash(token)}`, raw, this.ttlMs);
    return { token, record };
  }

  /**
   * Records an access token issued for a family, so revoking the family can revoke it. Besides
   * the current one, each is kept under its own number: a renewal inside the reuse grace (a
   * racing tab, or a thief who raced the browser) issues a token that is not the current one
   * for long, and must die with the family too. The counter is atomic, so racing renewals
   * never overwrite each other's record.
   */
  async setAccess(family: string, jti: string, exp: number): Promise<void> {
    const n = await this.kv.incr(`rtaccn:${family}`, this.ttlMs);
    await Promise.all([this.kv.set(`rtacc:${family}`, `${jti} ${exp}`, this.ttlMs), this.kv.set(`rtacc:${family}:${n}`, `${jti} ${exp}`, this.ttlMs)]);
  }

  async currentAccess(family: string): Promise<AccessRef | undefined> {
    return parseAccess(await this.kv.get(`rtacc:${family}`));
  }

  /** Every access token recorded for a family except `exceptJti`. */
  async issuedAccess(family: string, exceptJti?: string): Promise<AccessRef[]> {
    const n = Math.min(Number((await this.kv.get(`rtaccn:${family}`)) ?? 0) || 0, MAX_TRACKED_ACCESS);
    const all = await Promise.all(Array.from({ length: n }, (_, i) => this.kv.get(`rtacc:${family}:${i + 1}`)));
    return all.map(parseAccess).filter((a): a is AccessRef => a !== undefined && a.jti !== exceptJti);
  }

  async revokeFamily(family: string): Promise<void> {
    await this.kv.set(`rtfam:${family}`, 'revoked', this.ttlMs);
    const current = await this.currentAccess(family);
    await this.onFamilyRevoked(family, current, await this.issuedAccess(family, current?.jti));
  }

  /** The family of a token without using it (logout). */
  async familyOf(token: string): Promise<string | undefined> {
    return (await this.recordOf(token))?.family;
  }

  /** Whose a token is (family and user), without using it; used tokens too. */
  async recordOf(token: string): Promise<{ family: string; sub: string; sid?: string } | undefined> {
    const raw = await this.kv.get(`rt:${hash(token)}`);
    if (raw) return JSON.parse(raw) as RefreshRecord;
    const used = await this.kv.get(`rtused:${hash(token)}`);
    return used ? parseUsed(used).record : undefined;
  }

  private async mint(record: RefreshRecord): Promise<RefreshResult & { token: string }> {
    const token = newToken();
    await this.kv.set(`rt:${hash(token)}`, JSON.stringify(record), this.ttlMs);
    return { token, record };
  }
}
