import { boundedCache } from '../stores/bounded-cache.js';
import type { Redis } from 'ioredis';
import type { Logger } from '../log/logger.js';
import { REDIS_PREFIX } from '../stores/redis.js';
import type { Liveness, RedisSubscription } from '../stores/subscriber.js';
import { CLIENT_SUBJECT_PREFIX, type IdentityStore } from './store/types.js';

export type SubjectStatus = 'ok' | 'disabled' | 'unknown';
export interface SubjectState {
  readonly status: SubjectStatus;
  readonly sessionsValidFrom: Date | undefined;
}

/** Changed accounts are announced here (the subject alone); each instance forgets what it held. */
export const ACCOUNTS_CHANNEL = `${REDIS_PREFIX}accounts`;
/**
 * How long an account's state is trusted when no announcement can reach this process: without
 * Redis (the CLI is another process, writing the users file or PostgreSQL), or while the
 * subscription is not live. docs/authentication.md's "refused within 5 s".
 */
export const ACCOUNT_STATE_TTL_MS = 5_000;
/**
 * How long a state read while the subscription is live is trusted. Every change made through
 * the gateway (CLI, login) is announced, so this only bounds changes made behind its back (an
 * UPDATE by hand in PostgreSQL).
 */
export const ACCOUNT_STATE_MAX_AGE_MS = 60_000;
/** Accounts whose state is held; past this the least recent is read again when next needed. */
const MAX_ACCOUNTS = 10_000;

interface Entry {
  readonly state: SubjectState;
  readonly at: number;
  /** Read entirely while the subscription was live, with no announcement meanwhile. */
  readonly announced: boolean;
}

/**
 * Enabled/disabled state and `sessionsValidFrom` of users and API clients, in memory. With
 * Redis, every change is announced on ACCOUNTS_CHANNEL (see `announcingStore`) and an
 * announcement drops the account's entry at once, so while the subscription is live a state is
 * at most as old as an announcement's trip (well under a millisecond; a silently dead
 * connection is noticed within 2 s) and a disabled account is refused at its next request.
 * Every (re)subscription drops everything held (announcements may have been missed meanwhile);
 * while not live, and without Redis, an entry is trusted for ACCOUNT_STATE_TTL_MS only.
 *
 * A read of the store that overlapped an announcement is used once but not kept: it may have
 * read the account before the change it announces.
 */
export class AccountStates {
  private readonly cache = boundedCache<string, Entry>(MAX_ACCOUNTS);
  private readonly reads = new Map<string, { generation: number; state: Promise<SubjectState> }>();
  private readonly listeners: ((subject: string) => void)[] = [];
  /** Bumped by every announcement and every catch-up: a read begun before is not kept. */
  private generation = 0;

  constructor(
    private readonly read: (subject: string) => Promise<SubjectState>,
    private readonly subscription?: Liveness,
    private readonly now: () => number = Date.now,
  ) {}

  /** The account's state: from memory when it may be trusted (see the class comment), else from the store. */
  get(subject: string): Promise<SubjectState> {
    const e = this.cache.get(subject);
    const live = this.subscription?.live === true;
    if (e && this.now() - e.at < (e.announced && live ? ACCOUNT_STATE_MAX_AGE_MS : ACCOUNT_STATE_TTL_MS)) return Promise.resolve(e.state);
    // Concurrent requests of one account share one read.
    const pending = this.reads.get(subject);
    if (pending && pending.generation === this.generation) return pending.state;
    const generation = this.generation;
    const at = this.now();
    const state = this.read(subject).then(
      (s) => {
        if (this.reads.get(subject)?.state === state) this.reads.delete(subject);
        if (generation === this.generation) this.cache.set(subject, { state: s, at, announced: live && this.subscription?.live === true });
        return s;
      },
      (err: unknown) => {
        if (this.reads.get(subject)?.state === state) this.reads.delete(subject);
        throw err;
      },
    );
    this.reads.set(subject, { generation, state });
    return state;
  }

  /** The account changed (announced, or written by this process): its state is read again when next needed. */
  changed(subject: string): void {
    this.generation++;
    this.cache.delete(subject);
    for (const l of this.listeners) l(subject);
  }

  /** Called with each changed account's subject, e.g. to check its open websockets now. */
  onChanged(listener: (subject: string) => void): void {
    this.listeners.push(listener);
  }

  /** Reads ACCOUNTS_CHANNEL on `subscription`; every (re)subscription forgets every state held. */
  subscribe(subscription: RedisSubscription): void {
    subscription.add(ACCOUNTS_CHANNEL, {
      message: (subject) => this.changed(subject),
      catchUp: async () => {
        this.generation++;
        this.cache.clear();
      },
    });
  }
}

/** The subject an account's tokens carry. */
export function userSubject(name: string): string {
  return name;
}
export function clientSubject(name: string): string {
  return `${CLIENT_SUBJECT_PREFIX}${name}`;
}

/**
 * `store`, telling `accounts` (and, with Redis, every instance) about each change to an account
 * once it is written. The announcement comes after the write, so whoever reads the account on
 * hearing it reads the change. A change that cannot be announced (Redis down) is logged: the
 * instances then see it when their copy runs out (ACCOUNT_STATE_TTL_MS while their own
 * subscription is down too, else ACCOUNT_STATE_MAX_AGE_MS).
 */
export function announcingStore(store: IdentityStore, accounts: AccountStates, redis: Redis | undefined, log: Logger): IdentityStore {
  const announce = async (subject: string): Promise<void> => {
    accounts.changed(subject);
    if (!redis) return;
    try {
      await redis.publish(ACCOUNTS_CHANNEL, subject);
    } catch (err) {
      log.security('auth.account_change_unannounced', {
        subject,
        error: (err as Error).message,
        effect: `running gateways apply it within ${ACCOUNT_STATE_MAX_AGE_MS / 1000} s instead of at once`,
      });
    }
  };
  return {
    kind: store.kind,
    getUser: (name) => store.getUser(name),
    listUsers: () => store.listUsers(),
    getClient: (name) => store.getClient(name),
    listClients: () => store.listClients(),
    async addUser(user) {
      await store.addUser(user);
      await announce(userSubject(user.name));
    },
    async updateUser(name, patch) {
      const found = await store.updateUser(name, patch);
      // A login's own timestamp changes nothing a request is checked against.
      const checked = Object.keys(patch).some((k) => k !== 'lastLoginAt');
      if (found && checked) await announce(userSubject(name));
      return found;
    },
    async addClient(client) {
      await store.addClient(client);
      await announce(clientSubject(client.name));
    },
    async updateClient(name, patch) {
      const found = await store.updateClient(name, patch);
      if (found) await announce(clientSubject(name));
      return found;
    },
  };
}
