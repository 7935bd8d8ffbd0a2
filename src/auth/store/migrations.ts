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
];
