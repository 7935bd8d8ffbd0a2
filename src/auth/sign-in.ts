import { isGatewayError, type GatewayError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { LoginAttempt } from './lockout.js';
import { dummyHash, verifyPassword } from './password.js';
import type { AuthService } from './service.js';
import type { UserRecord } from './store/types.js';

export type PasswordCheck =
  | { readonly user: UserRecord }
  /** Locked (AUTH_LOCKED, with Retry-After), or the lockout store could not answer. */
  | { readonly refused: GatewayError }
  | { readonly failed: 'unknown user' | 'wrong password' | 'disabled' };

/**
 * The password check of every sign-in form (/auth/login on routed hosts, /security/login on the
 * admin listener), so each counts against the same budgets: a locked name or address is refused
 * before the password is read (only a lock is logged as `auth.login_locked`; a store that could
 * not answer keeps its own code); an unknown user costs the same scrypt run as a known one;
 * every failure is counted, a success clears the name's count. `name` is looked up as typed.
 */
export async function checkPassword(auth: AuthService, log: Logger, attempt: LoginAttempt, name: string, password: string): Promise<PasswordCheck> {
  try {
    await auth.lockout.check(attempt);
  } catch (err) {
    if (!isGatewayError(err)) throw err;
    if (err.code === 'AUTH_LOCKED') log.security('auth.login_locked', { requestId: attempt.requestId, user: attempt.name, clientIp: attempt.clientIp, addressGroup: attempt.ipKey, detail: err.detail, surface: attempt.surface });
    return { refused: err };
  }
  const user = name ? await auth.store.getUser(name) : undefined;
  const ok = user ? await verifyPassword(password, user.passwordHash) : (await verifyPassword(password, await dummyHash()), false);
  if (!user || !ok || user.disabled) {
    const failed = !user ? 'unknown user' : !ok ? 'wrong password' : 'disabled';
    await auth.lockout.failed(attempt, failed);
    return { failed };
  }
  await auth.lockout.succeeded(attempt);
  return { user };
}
