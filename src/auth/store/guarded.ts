import { GatewayError } from '../../errors.js';
import { POSTGRES_LOOKUP_TIMEOUT_MS, type PostgresLiveness } from '../../stores/postgres.js';
import { withTimeout } from '../../stores/redis.js';
import type { IdentityStore } from './types.js';

/** What a client is told to wait before trying again while the account store is down. */
export const STORE_RETRY_AFTER_S = 5;

/**
 * SQLSTATE classes that say the server is unreachable or unable to serve (08 connection
 * exception, 53 insufficient resources, 57 operator intervention such as a shutdown, 58 system
 * error). Any other SQLSTATE is the server answering about the query itself (a name already
 * taken, a missing table): not an outage, and passed on as it is.
 */
const OUTAGE_SQLSTATE = /^(08|53|57|58)/;

/** True when `err` means the store did not answer (a refused or dropped connection, a timeout, a server going down). */
export function isStoreOutage(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return OUTAGE_SQLSTATE.test(code);
  return true;
}

/** The refusal of a request whose credentials could not be checked: 503, never a failed authentication. */
export function storeUnavailable(detail: string): GatewayError {
  return new GatewayError('AUTH_STORE_UNAVAILABLE', detail, { 'retry-after': String(STORE_RETRY_AFTER_S) });
}

/**
 * `store` with its outages told as such: a lookup that fails or takes longer than
 * POSTGRES_LOOKUP_TIMEOUT_MS throws AUTH_STORE_UNAVAILABLE (503), which no caller counts as a
 * wrong password or a bad token (no lockout, no `auth.login_failed`, no brute-force alert), and
 * `liveness` hears of each failure and success. Writes are not timed out: one that is slow may
 * still commit, and saying it failed would be wrong.
 */
export function guardedStore(store: IdentityStore, liveness: PostgresLiveness | undefined): IdentityStore {
  const guard = async <T>(what: string, work: () => Promise<T>, timed: boolean): Promise<T> => {
    let result: T;
    try {
      result = await (timed ? withTimeout(work(), POSTGRES_LOOKUP_TIMEOUT_MS) : work());
    } catch (err) {
      if (!isStoreOutage(err)) {
        liveness?.succeeded();
        throw err;
      }
      liveness?.failed(err);
      throw storeUnavailable(`account store (${store.kind}) unavailable during ${what}: ${(err as Error).message}`);
    }
    liveness?.succeeded();
    return result;
  };
  return {
    kind: store.kind,
    getUser: (name) => guard('getUser', () => store.getUser(name), true),
    listUsers: () => guard('listUsers', () => store.listUsers(), true),
    addUser: (user) => guard('addUser', () => store.addUser(user), false),
    updateUser: (name, patch) => guard('updateUser', () => store.updateUser(name, patch), false),
    getClient: (name) => guard('getClient', () => store.getClient(name), true),
    listClients: () => guard('listClients', () => store.listClients(), true),
    addClient: (client) => guard('addClient', () => store.addClient(client), false),
    updateClient: (name, patch) => guard('updateClient', () => store.updateClient(name, patch), false),
  };
}
