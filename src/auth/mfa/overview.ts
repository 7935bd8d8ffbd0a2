import type { RequestContext } from '../../context.js';
import { GatewayError, isGatewayError } from '../../errors.js';
import type { Logger } from '../../log/logger.js';
import { loginAttempt } from '../lockout.js';
import type { AuthService } from '../service.js';
import { hasSecondFactor } from '../store/factors.js';
import type { UserRecord } from '../store/types.js';
import { rolesRequireMfa } from './policy.js';
import { checkAnyCode } from './verify.js';

/**
 * The second factor of the security overview's sign-in (`/security/login` on the admin listener),
 * where the password form has one more field, `code`: a TOTP code or a recovery code. Passkeys
 * are not offered there: the listener is plain HTTP on loopback, outside the passkeys' rpID (the
 * session hosts), so an admin with passkeys only uses a recovery code, or adds TOTP. An admin
 * (any role of `auth.mfa.requiredRoles`) with no second factor is refused (MFA_REQUIRED) until
 * they enrol on a session host. Wrong codes count as /auth/mfa's do (`mfa:<user>`).
 */
export async function overviewSecondFactor(auth: AuthService, log: Logger, ctx: RequestContext, user: UserRecord, code: string): Promise<{ factor?: 'totp' | 'recovery' } | { refused: GatewayError }> {
  const base = { requestId: ctx.id, user: user.name, clientIp: ctx.address?.client.address, surface: 'admin' };
  if (!hasSecondFactor(await auth.factors.get(user.name))) {
    if (!rolesRequireMfa(user.roles, auth.config)) return {};
    log.security('auth.mfa_failed', { ...base, reason: 'no second factor enrolled', code: 'MFA_REQUIRED' });
    return { refused: new GatewayError('MFA_REQUIRED', `${user.name} has a role that needs a second factor and none enrolled: enrol at /auth/mfa/totp/enrol on a session host`) };
  }
  const attempt = loginAttempt(`mfa:${user.name}`, ctx.address?.client, ctx.id, 'admin');
  try {
    await auth.lockout.check(attempt);
  } catch (err) {
    if (!isGatewayError(err)) throw err;
    log.security('auth.mfa_failed', { ...base, reason: 'locked', code: err.code });
    return { refused: err };
  }
  const checked = code.trim() === '' ? { reason: 'no code given', err: new GatewayError('MFA_INVALID', 'second factor enrolled, no code in the form') } : await checkAnyCode(auth, user.name, code);
  if ('err' in checked) {
    await auth.lockout.failed(attempt, checked.reason);
    log.security('auth.mfa_failed', { ...base, reason: checked.reason, code: checked.err.code, detail: checked.err.detail });
    return { refused: checked.err };
  }
  await auth.lockout.succeeded(attempt);
  if (checked.factor === 'recovery') log.security('auth.recovery_code_used', { ...base, remaining: (await auth.factors.get(user.name)).recoveryHashes.length });
  log.security('auth.mfa_succeeded', { ...base, factor: checked.factor });
  return { factor: checked.factor };
}
