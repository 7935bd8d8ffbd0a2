/** A person who logs in through the gateway's login page. */
export interface UserRecord {
  name: string;
  passwordHash: string;
  roles: string[];
  disabled: boolean;
  createdAt: Date;
  lastLoginAt?: Date | undefined;
  /**
   * Sessions that began (by a password login) before this instant are void: set when the
   * password changes or the account is disabled, so a stolen session dies with the old password.
   */
  sessionsValidFrom?: Date | undefined;
}

/** A program that gets bearer tokens (by `tokens issue`, or at /auth/token with its secret). */
export interface ClientRecord {
  name: string;
  /** sha256 of the 32-byte random secret, hex: the secret is high-entropy, so no slow hash. */
  secretHash: string;
  roles: string[];
  disabled: boolean;
  createdAt: Date;
}

export type UserPatch = Partial<Pick<UserRecord, 'passwordHash' | 'roles' | 'disabled' | 'lastLoginAt' | 'sessionsValidFrom'>>;
export type ClientPatch = Partial<Pick<ClientRecord, 'secretHash' | 'roles' | 'disabled'>>;

/** Users and API clients: PostgreSQL with DATABASE_URL, else a local file of mode 0600. */
export interface IdentityStore {
  readonly kind: 'postgres' | 'file';
  getUser(name: string): Promise<UserRecord | undefined>;
  listUsers(): Promise<UserRecord[]>;
  /** Throws when the name is taken. */
  addUser(user: UserRecord): Promise<void>;
  /** False when there is no such user. */
  updateUser(name: string, patch: UserPatch): Promise<boolean>;
  getClient(name: string): Promise<ClientRecord | undefined>;
  listClients(): Promise<ClientRecord[]>;
  addClient(client: ClientRecord): Promise<void>;
  updateClient(name: string, patch: ClientPatch): Promise<boolean>;
}

export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
export const ROLE_PATTERN = /^[a-z][a-z0-9_-]{0,31}$/;
/** Token subjects of API clients carry this prefix, so a user can never pose as a client. */
export const CLIENT_SUBJECT_PREFIX = 'client:';
