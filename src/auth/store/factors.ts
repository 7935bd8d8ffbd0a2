/** A WebAuthn credential (passkey) registered to a user. */
export interface PasskeyRecord {
  /** The credential ID, base64url: unique across users. */
  id: string;
  user: string;
  /** COSE public key, base64url. */
  publicKey: string;
  /** The signature counter last seen; 0 for authenticators that keep none (most passkeys). */
  counter: number;
  transports: string[];
  createdAt: Date;
  lastUsedAt?: Date | undefined;
}

/** A user's second factors. No field here is a secret in clear: the TOTP secret is sealed (src/auth/mfa/sealed-secret.ts), recovery codes hashed. */
export interface UserFactors {
  totp?: { sealed: string; enrolledAt: Date; lastStep?: number | undefined } | undefined;
  /** SHA-256 of each unused recovery code (src/auth/mfa/recovery.ts). */
  recoveryHashes: string[];
  passkeys: PasskeyRecord[];
}

/**
 * Second factors of the login users: PostgreSQL with DATABASE_URL (tables of migration 102), else
 * `<dataDir>/factors.json` (mode 0600). Every "use once" operation is atomic in the store itself,
 * so two requests racing with the same code (on one instance or several) see one success.
 */
export interface FactorStore {
  get(user: string): Promise<UserFactors>;
  /** Sets the TOTP secret (sealed) and replaces the recovery codes: one confirmed enrolment. */
  enrolTotp(user: string, sealed: string, recoveryHashes: readonly string[]): Promise<void>;
  /** Rewrites the sealed secret (resealed under the current key). */
  resealTotp(user: string, sealed: string): Promise<void>;
  /** Records `step` as the last accepted TOTP step; false when it is not later than the last one (a replay). */
  acceptTotpStep(user: string, step: number): Promise<boolean>;
  /** Removes one recovery code; false when it is not (or no longer) there. */
  useRecoveryCode(user: string, hash: string): Promise<boolean>;
  setRecoveryCodes(user: string, hashes: readonly string[]): Promise<void>;
  addPasskey(passkey: PasskeyRecord): Promise<void>;
  passkey(id: string): Promise<PasskeyRecord | undefined>;
  /** Moves the counter from `from` to `to` and stamps last use; false when another use moved it first. */
  usePasskey(id: string, from: number, to: number): Promise<boolean>;
  /** Forgets every factor of the user; says what there was. */
  reset(user: string): Promise<{ totp: boolean; recoveryCodes: number; passkeys: number }>;
}

/** Whether the user has a second factor to sign in with (recovery codes alone do not count: they come with one). */
export function hasSecondFactor(f: UserFactors): boolean {
  return f.totp !== undefined || f.passkeys.length > 0;
}
