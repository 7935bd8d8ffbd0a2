import { GatewayError } from '../../errors.js';
import type { Logger } from '../../log/logger.js';
import { storeUnavailable } from '../store/guarded.js';
import { boundedCache } from '../../stores/bounded-cache.js';
import type { RefreshTokens } from '../refresh.js';
import type { RevocationList } from '../revocation.js';
import type { NewSession, SessionRegistry } from './registry.js';
import type { StaffSession } from './types.js';

/** Last seen is written at most this often per session and instance (the pages show minutes). */
export const SEEN_EVERY_MS = 60_000;
/** Sessions whose last write is remembered per instance; beyond that a few extra writes. */
const SEEN_CACHE = 10_000;

/** The revocation-list entry that ends a session on every host and instance. */
export const sessionRevocationKey = (id: string): string => `sid:${id}`;

/** Who ended a session, for the event: the person themself, an operator (CLI), an admin (overview). */
export interface EndedBy {
  actor: string;
  /** 'logout' | 'signed_out_here' | 'signed_out_elsewhere' | 'cli' | 'overview' | … */
  reason: string;
  requestId?: string | undefined;
  clientIp?: string | undefined;
}

/**
 * Staff sessions: the registry plus what ending one takes. Ending is one revocation-list entry
 * (`sid:<id>`, announced on the revocations channel, so every instance refuses the session's
 * tokens from memory at once; see ./../revocation.ts for how stale that can be), then each host's
 * refresh family is revoked (no renewal anywhere) and the record removed.
 */
export class StaffSessions {
  private readonly lastWrite = boundedCache<string, number>(SEEN_CACHE);

  constructor(
    readonly registry: SessionRegistry,
    private readonly revocations: RevocationList,
    private readonly refresh: () => RefreshTokens,
    /** How long a session lives (auth.refreshTtl) plus the longest a token of it may outlive that. */
    private readonly lifetimeMs: number,
    private readonly log: Logger,
  ) {}

  create(input: NewSession): Promise<StaffSession> {
    return this.registry.create(input);
  }

  /**
   * A session's live record, or undefined once it has ended or expired. A registry that does not
   * answer is AUTH_STORE_UNAVAILABLE (503): the session may well be good.
   */
  async live(id: string): Promise<StaffSession | undefined> {
    if (await this.ended(id)) return undefined;
    try {
      return await this.registry.get(id);
    } catch (err) {
      if (err instanceof GatewayError) throw err;
      throw storeUnavailable(`session registry unavailable: ${(err as Error).message}`);
    }
  }

  /** Whether the session was ended (memory, as every revocation check on the request path). */
  ended(id: string): boolean | Promise<boolean> {
    return this.revocations.isRevoked(sessionRevocationKey(id));
  }

  /** A request of the session was let through: last seen, written at most every SEEN_EVERY_MS. */
  seen(id: string, at: number = Date.now()): void {
    const last = this.lastWrite.get(id);
    if (last !== undefined && at - last < SEEN_EVERY_MS) return;
    this.lastWrite.set(id, at);
    this.registry.touch(id, at).catch((err: unknown) => this.log.app('warn', 'could not record a session as seen', { sessionId: id, error: String(err) }));
  }

  /** Ends a session everywhere; returns it (undefined when it was unknown, but it is ended anyway). */
  async end(id: string, by: EndedBy): Promise<StaffSession | undefined> {
    const record = await this.registry.get(id);
    const until = Math.ceil(((record?.createdAt ?? Date.now()) + this.lifetimeMs) / 1000);
    await this.revocations.revoke(sessionRevocationKey(id), until);
    const families = await this.registry.families(id);
    for (const f of families) await this.refresh().revokeFamily(f);
    await this.registry.remove(id);
    this.log.security('auth.session_revoked', { sessionId: id, user: record?.subject, actor: by.actor, reason: by.reason, hosts: families.length, requestId: by.requestId, clientIp: by.clientIp });
    return record;
  }

  /** Ends every session of `subject` (but `except`); returns how many. */
  async endAll(subject: string, by: EndedBy, except?: string): Promise<number> {
    const sessions = (await this.registry.list({ subject })).filter((s) => s.id !== except);
    for (const s of sessions) await this.end(s.id, by);
    return sessions.length;
  }
}
