import { GatewayError } from '../errors.js';
import type { Kv } from '../stores/kv.js';
import type { Logger } from '../log/logger.js';
import type { ParsedIp } from '../net/ip.js';
import { ipGroup } from '../ratelimit/keys.js';

/** Failures counted within this window. */
const FAILURE_WINDOW_MS = 15 * 60_000;
/** Failures before a lockout: per account, and per client address (which may try many accounts). */
const USER_THRESHOLD = 5;
const IP_THRESHOLD = 20;
/** The first lockout; each further failure doubles it, up to the maximum. */
const BASE_LOCK_MS = 30_000;
const MAX_LOCK_MS = 60 * 60_000;
/** Failures from one IPv6 /64 count together (one host usually holds the whole /64). */
const LOCKOUT_IPV6_PREFIX = 64;

export interface LoginAttempt {
  /** User or client name as typed. */
  name: string;
  /**
   * The client's address from the one client-IP resolver, as every other event records it
   * (`clientIp`), so `audit search --ip` and PostgreSQL's `client_ip` find sign-in events too.
   */
  clientIp?: string | undefined;
  /**
   * The address group failures are counted under (IPv6 grouped by /64): `ipGroup()`. Logged as
   * `addressGroup` (a field named like `*Key` is redacted as a credential).
   */
  ipKey: string;
  requestId: string;
  /** Where the attempt was made when not a routed host's /auth/login: `admin` (the overview's sign-in). */
  surface?: 'admin' | undefined;
}

/**
 * The attempt of `name` from `client` (the one client-IP resolver's answer). Every sign-in
 * surface builds its attempt here, so failures on any of them count against the same budget.
 */
export function loginAttempt(name: string, client: ParsedIp | undefined, requestId: string, surface?: 'admin'): LoginAttempt {
  return { name, clientIp: client?.address, ipKey: client ? ipGroup(client, LOCKOUT_IPV6_PREFIX) : 'unknown', requestId, ...(surface ? { surface } : {}) };
}

/**
 * Brute-force protection for the login and token endpoints: failures counted per name and per
 * address; past a threshold, a lockout that doubles with each further failure. Each failure
 * and lockout is a security event.
 */
export class Lockout {
  constructor(
    private readonly kv: Kv,
    private readonly log: Logger,
  ) {}

  /** Throws AUTH_LOCKED (with Retry-After) while either the name or the address is locked. */
  async check(a: LoginAttempt): Promise<void> {
    for (const key of [`lock:user:${a.name.toLowerCase()}`, `lock:ip:${a.ipKey}`]) {
      const ttl = await this.kv.pttl(key);
      if (ttl > 0) throw new GatewayError('AUTH_LOCKED', `${key} locked for ${ttl} ms more`, { 'retry-after': String(Math.ceil(ttl / 1000)) });
    }
  }

  async failed(a: LoginAttempt, reason: string): Promise<void> {
    const name = a.name.toLowerCase();
    const [userFails, ipFails] = await Promise.all([this.kv.incr(`fail:user:${name}`, FAILURE_WINDOW_MS), this.kv.incr(`fail:ip:${a.ipKey}`, FAILURE_WINDOW_MS)]);
    this.log.security('auth.login_failed', { requestId: a.requestId, user: a.name, clientIp: a.clientIp, addressGroup: a.ipKey, reason, userFailures: userFails, ipFailures: ipFails, surface: a.surface });
    await this.lockIfOver(`user:${name}`, userFails, USER_THRESHOLD, a, { user: a.name });
    await this.lockIfOver(`ip:${a.ipKey}`, ipFails, IP_THRESHOLD, a, {});
  }

  async succeeded(a: LoginAttempt): Promise<void> {
    await this.kv.del(`fail:user:${a.name.toLowerCase()}`);
  }

  /**
   * `subject` is what is locked (`user:<name>` or `ip:<address group>`); `clientIp` is the
   * address whose failure tipped it, and `user` is named only when the account is what is locked.
   */
  private async lockIfOver(subject: string, failures: number, threshold: number, a: LoginAttempt, who: { user?: string }): Promise<void> {
    if (failures < threshold) return;
    const ms = Math.min(MAX_LOCK_MS, BASE_LOCK_MS * 2 ** (failures - threshold));
    await this.kv.set(`lock:${subject}`, '1', ms);
    this.log.security('auth.lockout', { requestId: a.requestId, subject, ...who, clientIp: a.clientIp, failures, lockedForMs: ms, surface: a.surface });
  }
}
