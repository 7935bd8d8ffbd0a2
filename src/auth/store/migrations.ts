import type { Migration } from '../../stores/migrations.js';

/** Schema of users and API clients. Never edit an applied migration: add a new one. */
export const AUTH_MIGRATIONS: readonly Migration[] = [
  {
    version: 100,
    name: 'auth users and clients',
    sql: `
      CREATE TABLE gateway_users (
        name text PRIMARY KEY,
        password_hash text NOT NULL,
        roles text[] NOT NULL DEFAULT '{}',
        disabled boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now(),
        last_login_at timestamptz
      );
      CREATE TABLE gateway_clients (
        name text PRIMARY KEY,
        secret_hash text NOT NULL,
        roles text[] NOT NULL DEFAULT '{}',
        disabled boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now()
      );`,
  },
  {
    version: 101,
    name: 'auth users: sessions valid from',
    sql: `ALTER TABLE gateway_users ADD COLUMN sessions_valid_from timestamptz;`,
  },
  {
    version: 102,
    name: 'auth users: second factors (TOTP sealed, recovery code hashes, passkeys)',
    sql: `
      CREATE TABLE gateway_user_factors (
        user_name text PRIMARY KEY REFERENCES gateway_users (name) ON DELETE CASCADE,
        totp_sealed text,
        totp_enrolled_at timestamptz,
        totp_last_step bigint,
        recovery_hashes text[] NOT NULL DEFAULT '{}'
      );
      CREATE TABLE gateway_passkeys (
        id text PRIMARY KEY,
        user_name text NOT NULL REFERENCES gateway_users (name) ON DELETE CASCADE,
        public_key text NOT NULL,
        counter bigint NOT NULL DEFAULT 0,
        transports text[] NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now(),
        last_used_at timestamptz
      );
      CREATE INDEX gateway_passkeys_user ON gateway_passkeys (user_name);`,
  },
];
