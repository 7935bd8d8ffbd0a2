import type pg from 'pg';
import type { ClientPatch, ClientRecord, IdentityStore, UserPatch, UserRecord } from './types.js';

interface UserRow {
  name: string;
  password_hash: string;
  roles: string[];
  disabled: boolean;
  created_at: Date;
  last_login_at: Date | null;
  sessions_valid_from: Date | null;
}
interface ClientRow {
  name: string;
  secret_hash: string;
  roles: string[];
  disabled: boolean;
  created_at: Date;
}

const toUser = (r: UserRow): UserRecord => ({
  name: r.name,
  passwordHash: r.password_hash,
  roles: r.roles,
  disabled: r.disabled,
  createdAt: r.created_at,
  lastLoginAt: r.last_login_at ?? undefined,
  sessionsValidFrom: r.sessions_valid_from ?? undefined,
});
const toClient = (r: ClientRow): ClientRecord => ({ name: r.name, secretHash: r.secret_hash, roles: r.roles, disabled: r.disabled, createdAt: r.created_at });

/** Column of each patchable field: a fixed map, so no caller text ever becomes SQL. */
const USER_COLUMNS: Record<keyof UserPatch, string> = { passwordHash: 'password_hash', roles: 'roles', disabled: 'disabled', lastLoginAt: 'last_login_at', sessionsValidFrom: 'sessions_valid_from' };
const CLIENT_COLUMNS: Record<keyof ClientPatch, string> = { secretHash: 'secret_hash', roles: 'roles', disabled: 'disabled' };

function updateSql(table: string, columns: Record<string, string>, patch: Record<string, unknown>): { sql: string; values: unknown[] } | undefined {
  const sets: string[] = [];
  const values: unknown[] = [];
  for (const [field, value] of Object.entries(patch)) {
    const column = columns[field];
    if (!column || value === undefined) continue;
    values.push(value);
    sets.push(`${column} = $${values.length}`);
  }
  if (sets.length === 0) return undefined;
  return { sql: `UPDATE ${table} SET ${sets.join(', ')} WHERE name = $${values.length + 1}`, values };
}

/** Users and clients in PostgreSQL; every query parameterized. */
export function createPostgresIdentityStore(pool: pg.Pool): IdentityStore {
  return {
    kind: 'postgres',
    async getUser(name) {
      const { rows } = await pool.query<UserRow>('SELECT * FROM gateway_users WHERE name = $1', [name]);
      return rows[0] ? toUser(rows[0]) : undefined;
    },
    async listUsers() {
      const { rows } = await pool.query<UserRow>('SELECT * FROM gateway_users ORDER BY name');
      return rows.map(toUser);
    },
    async addUser(u) {
      await pool.query('INSERT INTO gateway_users (name, password_hash, roles, disabled, created_at) VALUES ($1, $2, $3, $4, $5)', [
        u.name,
        u.passwordHash,
        u.roles,
        u.disabled,
        u.createdAt,
      ]);
    },
    async updateUser(name, patch) {
      const q = updateSql('gateway_users', USER_COLUMNS, patch);
      if (!q) return (await this.getUser(name)) !== undefined;
      const res = await pool.query(q.sql, [...q.values, name]);
      return (res.rowCount ?? 0) > 0;
    },
    async getClient(name) {
      const { rows } = await pool.query<ClientRow>('SELECT * FROM gateway_clients WHERE name = $1', [name]);
      return rows[0] ? toClient(rows[0]) : undefined;
    },
    async listClients() {
      const { rows } = await pool.query<ClientRow>('SELECT * FROM gateway_clients ORDER BY name');
      return rows.map(toClient);
    },
    async addClient(c) {
      await pool.query('INSERT INTO gateway_clients (name, secret_hash, roles, disabled, created_at) VALUES ($1, $2, $3, $4, $5)', [
        c.name,
        c.secretHash,
        c.roles,
        c.disabled,
        c.createdAt,
      ]);
    },
    async updateClient(name, patch) {
      const q = updateSql('gateway_clients', CLIENT_COLUMNS, patch);
      if (!q) return (await this.getClient(name)) !== undefined;
      const res = await pool.query(q.sql, [...q.values, name]);
      return (res.rowCount ?? 0) > 0;
    },
  };
}
