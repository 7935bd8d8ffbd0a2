import { GatewayError } from '../../errors.js';
import type { AuthService } from '../service.js';
import { hashRecoveryCode } from './recovery.js';

/** What a typed code proved, or why not (`reason` for the events, `err` for the client). */
export type CodeCheck = { readonly factor: 'totp' | 'recovery' } | { readonly reason: string; readonly err: GatewayError };

/**
 * A TOTP code against the user's sealed secret: within ±1 step and later than the last accepted
 * step (stored atomically, so a code works once). A secret opened with a previous API_SECRET_KEY
 * is resealed with the current one.
 */
export async function checkTotp(auth: AuthService, user: string, code: string): Promise<CodeCheck> {
  const factors = await auth.factors.get(user);
  if (!factors.totp) return { reason: 'no totp enrolled', err: new GatewayError('MFA_INVALID', 'no TOTP enrolled') };
  const opened = auth.sealer.open(factors.totp.sealed, user);
  if (!opened) return { reason: 'totp secret cannot be opened', err: new GatewayError('MFA_INVALID', 'sealed TOTP secret does not open (key rotated past it, or tampered)') };
  const { matchTotp } = await import('./totp.js');
  const step = matchTotp(opened.plain, code.trim());
  if (step === undefined) return { reason: 'wrong totp code', err: new GatewayError('MFA_INVALID', 'TOTP code matches no step in the window') };
  if (!(await auth.factors.acceptTotpStep(user, step))) return { reason: 'replayed totp code', err: new GatewayError('MFA_REPLAYED', `TOTP step ${step} not after the last accepted`) };
  if (!opened.fresh) await auth.factors.resealTotp(user, auth.sealer.seal(opened.plain, user));
  return { factor: 'totp' };
}

/** A recovery code: removed from the store as it is accepted (once, even under concurrency). */
export async function checkRecovery(auth: AuthService, user: string, code: string): Promise<CodeCheck> {
  const hash = hashRecoveryCode(user, code);
  if (!hash) return { reason: 'malformed recovery code', err: new GatewayError('MFA_INVALID', 'recovery code not accepted') };
  if (!(await auth.factors.useRecoveryCode(user, hash))) return { reason: 'unknown or used recovery code', err: new GatewayError('MFA_INVALID', 'recovery code not accepted') };
  return { factor: 'recovery' };
}

/** One field that takes either: six digits are a TOTP code, anything else a recovery code. */
export async function checkAnyCode(auth: AuthService, user: string, code: string): Promise<CodeCheck> {
  return /^\s*\d{6}\s*$/.test(code) ? checkTotp(auth, user, code) : checkRecovery(auth, user, code);
}
