import type { GatewayConfig } from '../config/schema.js';
import type { Principal } from '../context.js';
import { GatewayError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { Redis } from 'ioredis';
import type pg from 'pg';
import { createMemoryKv, createRedisKv, type Kv } from '../stores/kv.js';
import { RedisSubscription } from '../stores/subscriber.js';
import { migrate } from '../stores/migrations.js';
import type { TokenClaims } from './claims.js';
import { KeyRing, parsePreviousKeys } from './keyring.js';
import { Lockout } from './lockout.js';
import { RefreshTokens } from './refresh.js';
import { AccountStates, announcingStore, type SubjectState, type SubjectStatus } from './account-state.js';
import { createFileRevocationList, createRedisRevocationList, type RevocationList } from './revocation.js';
import { TokenService } from './tokens.js';
import { AUTH_MIGRATIONS } from './store/migrations.js';
import { createFileSessionRegistry, createRedisSessionRegistry } from './sessions/registry.js';
import { StaffSessions } from './sessions/staff-sessions.js';
import { ssoSetup, type SsoSetup } from './sso/setup.js';
import { createFileIdentityStore } from './store/file.js';
import { createPostgresIdentityStore } from './store/postgres.js';
import { guardedStore, storeUnavailable } from './store/guarded.js';
import { PostgresLiveness } from '../stores/postgres.js';
import { CLIENT_SUBJECT_PREFIX, type IdentityStore } from './store/types.js';
import { isOidcSubject } from './oidc/rules.js';
import type { FactorStore } from './store/factors.js';
import { createFileFactorStore } from './store/factors-file.js';
import { createPostgresFactorStore, guardedFactorStore } from './store/factors-postgres.js';
import { SecretSealer } from './mfa/sealed-secret.js';

/**
 * A session that began (password login at `authTime`, seconds to the millisecond, as the
 * `auth_time` claim carries it) before the user's `sessionsValidFrom` is void. A session from
 * before `auth_time` was recorded counts as void once any change has been made.
 */
export function sessionVoided(authTime: number | undefined, validFrom: Date | undefined): boolean {
  if (!validFrom) return false;
  return authTime === undefined || authTime * 1000 < validFrom.getTime();
}

/**
 * How long startup waits for the pub/sub subscription (revocations, account changes) to be
 * live. Redis down then: the gateway starts anyway, and refuses tokens until it has read the
 * revocations once (src/auth/revocation.ts).
 */
const SUBSCRIPTION_START_WAIT_MS = 3_000;

export interface AuthService {
  readonly tokens: TokenService;
  readonly revocations: RevocationList;
  readonly store: IdentityStore;
  readonly lockout: Lockout;
  readonly refresh: RefreshTokens;
  readonly config: GatewayConfig['auth'];
  /** The shared key-value store (Redis, else memory): single-use tickets of the auth endpoints. */
  readonly kv: Kv;
  /** Staff sessions (Redis, else a file): one per sign-in, shared by every host's cookies (issue 14). */
  readonly sessions: StaffSessions;
  /** One login across hosts (undefined when off or with a single session host). */
  readonly sso: SsoSetup | undefined;
  /** Users' second factors (src/auth/mfa/), beside the users: PostgreSQL or `<dataDir>/factors.json`. */
  readonly factors: FactorStore;
  /** Seals TOTP secrets at rest (AES-256-GCM, key by HKDF from API_SECRET_KEY). */
  readonly sealer: SecretSealer;
  /**
   * Verified claims → principal, or AUTH_REVOKED / AUTH_DISABLED; AUTH_STORE_UNAVAILABLE (503)
   * when the account store or the revocations cannot be read (the token may well be good).
   */
  principalFor(claims: TokenClaims, method: Principal['method']): Promise<Principal>;
  /** Whether an account may still be used (held in memory, see AccountStates), e.g. for open websockets. */
  accountStatus(subject: string): Promise<'ok' | 'disabled' | 'unknown'>;
  /** Called with the subject of each account changed, here or (with Redis) on any instance. */
  onAccountChanged(listener: (subject: string) => void): void;
  /** Forget cached account state (after the CLI changes an account in this process). */
  forget(subject: string): void;
  close(): Promise<void>;
}

export interface AuthStores {
  log: Logger;
  redis?: Redis | undefined;
  postgres?: pg.Pool | undefined;
}

/**
 * Everything authentication needs, built once at startup. Without API_SECRET_KEY there is no
 * service, and every route that needs auth refuses (fail closed).
 */
export async function createAuthService(cfg: GatewayConfig, stores: AuthStores): Promise<AuthService | undefined> {
  const secret = cfg.secrets.apiSecretKey;
  if (!secret) return undefined;
  const ring = new KeyRing(secret, parsePreviousKeys(cfg.secrets.apiSecretKeyPrevious));
  const tokens = new TokenService(ring, cfg.auth);
  let records: IdentityStore;
  let liveness: PostgresLiveness | undefined;
  if (stores.postgres) {
    await migrate(stores.postgres, AUTH_MIGRATIONS);
    liveness = new PostgresLiveness(stores.postgres, stores.log, cfg.stores.databaseUrl ?? '');
    records = guardedStore(createPostgresIdentityStore(stores.postgres), liveness);
  } else {
    records = createFileIdentityStore(cfg.stores.dataDir);
  }
  const kv: Kv = stores.redis ? createRedisKv(stores.redis) : createMemoryKv();

  // Revocations and account changes reach every instance through one subscription (with Redis),
  // so both are answered from memory; see revocation.ts and account-state.ts for how stale.
  const subscription = stores.redis ? new RedisSubscription(stores.redis, stores.log) : undefined;
  const revocations = stores.redis && subscription ? createRedisRevocationList(stores.redis, subscription, stores.log) : createFileRevocationList(cfg.stores.dataDir, stores.log);
  const readState = async (sub: string): Promise<SubjectState> => {
    // Someone an identity provider signed in has no local record (src/auth/oidc/rules.ts): what
    // ends them is their staff session (principalFor accepts them only with one) and blocks.
    if (isOidcSubject(sub)) return { status: 'ok', sessionsValidFrom: undefined };
    const rec = sub.startsWith(CLIENT_SUBJECT_PREFIX) ? await records.getClient(sub.slice(CLIENT_SUBJECT_PREFIX.length)) : await records.getUser(sub);
    return {
      status: rec === undefined ? 'unknown' : rec.disabled ? 'disabled' : 'ok',
      sessionsValidFrom: rec && 'sessionsValidFrom' in rec ? rec.sessionsValidFrom : undefined,
    };
  };
  const accounts = new AccountStates(readState, subscription);
  if (subscription) {
    accounts.subscribe(subscription);
    if (!(await subscription.start(SUBSCRIPTION_START_WAIT_MS))) {
      stores.log.app('warn', 'Redis not reachable at startup: tokens are refused until the revocations have been read once', { waitedMs: SUBSCRIPTION_START_WAIT_MS });
    }
  }
  // Every change written through the service is announced (every instance forgets its copy).
  const store = announcingStore(records, accounts, stores.redis, stores.log);
  const subjectStatus = async (sub: string): Promise<SubjectStatus> => (await accounts.get(sub)).status;
  const registry = stores.redis ? createRedisSessionRegistry(stores.redis, cfg.auth.refreshTtl) : createFileSessionRegistry(cfg.stores.dataDir, cfg.auth.refreshTtl);
  // A session's tokens can outlive its record by one access lifetime (and the clock skew).
  const sessions = new StaffSessions(registry, revocations, () => refresh, cfg.auth.refreshTtl + cfg.auth.maxTokenTtl + cfg.auth.clockSkew, stores.log);
  const refresh = new RefreshTokens(kv, cfg.auth.refreshTtl, async (family, access, earlier) => {
    // Every token the family was issued, not just the current one: a renewal inside the reuse
    // grace may have handed one to whoever raced the browser with a stolen refresh token.
    const live = (a: { exp: number }): boolean => a.exp * 1000 > Date.now();
    const others = earlier.filter(live);
    await Promise.all([...(access && live(access) ? [access] : []), ...others].map((a) => revocations.revoke(a.jti, a.exp)));
    stores.log.security('auth.session_family_revoked', { family, accessTokenId: access?.jti, ...(others.length > 0 ? { alsoRevoked: others.map((a) => a.jti) } : {}) });
  }, cfg.auth.refreshReuseGrace);

  return {
    tokens,
    revocations,
    store,
    lockout: new Lockout(kv, stores.log),
    refresh,
    config: cfg.auth,
    kv,
    sessions,
    sso: ssoSetup(cfg),
    factors: stores.postgres ? guardedFactorStore(createPostgresFactorStore(stores.postgres), liveness) : createFileFactorStore(cfg.stores.dataDir),
    sealer: new SecretSealer(secret, parsePreviousKeys(cfg.secrets.apiSecretKeyPrevious).map((k) => k.secret)),
    async principalFor(claims, method) {
      if (await revocations.isRevoked(claims.jti)) throw new GatewayError('AUTH_REVOKED', `jti ${claims.jti} revoked`);
      if (isOidcSubject(claims.sub) && (claims.typ !== 'session' || claims.sid === undefined)) throw new GatewayError('AUTH_INVALID', `${claims.sub}: an identity provider's person is accepted only in a staff session`);
      // A browser session from before staff sessions (issue 14) carries no sid: unseen by "your
      // sessions", `sessions list` and revoke, it is refused (its family too, at renewal): one sign-in after upgrading.
      if (claims.typ === 'session' && claims.sid === undefined) throw new GatewayError('AUTH_REVOKED', `session of ${claims.sub} from before staff sessions (no sid): sign in again`);
      let state: SubjectState;
      try {
        state = await accounts.get(claims.sub);
      } catch (err) {
        // The account store is down: refuse rather than let a disabled account through, and say
        // so (503), not "bad credentials": the token may well be good (issue 18, item 5).
        if (err instanceof GatewayError) throw err;
        throw storeUnavailable(`account store unavailable: ${(err as Error).message}`);
      }
      if (state.status === 'disabled') throw new GatewayError('AUTH_DISABLED', `${claims.sub} is disabled`);
      if (state.status === 'unknown') throw new GatewayError('AUTH_INVALID', `unknown subject ${claims.sub}`);
      if (claims.typ === 'session' && sessionVoided(claims.auth_time, state.sessionsValidFrom)) {
        throw new GatewayError('AUTH_REVOKED', `session of ${claims.sub} began before its password changed`);
      }
      // Ended on any host or instance (logout, "sign out", the CLI, the overview): from memory.
      if (claims.sid !== undefined && (await sessions.ended(claims.sid))) throw new GatewayError('AUTH_REVOKED', `session ${claims.sid} of ${claims.sub} has ended`);
      if (claims.sid !== undefined) sessions.seen(claims.sid);
      return { subject: claims.sub, roles: claims.roles, method, tokenId: claims.jti, expiresAt: claims.exp * 1000, ...(claims.sid ? { sessionId: claims.sid } : {}), ...(claims.amr ? { factors: claims.amr } : {}) };
    },
    accountStatus: subjectStatus,
    onAccountChanged: (listener) => accounts.onChanged(listener),
    forget: (sub) => accounts.changed(sub),
    async close() {
      liveness?.close();
      await revocations.close();
      await subscription?.close();
    },
  };
}
