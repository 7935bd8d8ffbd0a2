import type pg from 'pg';
import type { PostgresLiveness } from '../../stores/postgres.js';
import type { FactorStore, PasskeyRecord, UserFactors } from './factors.js';
import { isStoreOutage, storeUnavailable } from './guarded.js';

interface FactorRow {
  totp_sealed: string | null;
  totp_enrolled_at: Date | null;
  totp_last_step: string | null;
  recovery_hashes: string[];
}
interface PasskeyRow {
  id: string;
  user_name: string;
  public_key: string;
  counter: string;
  transports: string[];
  created_at: Date;
  last_used_at: Date | null;
}

const toPasskey = (r: PasskeyRow): PasskeyRecord => ({
  id: r.id,
  user: r.user_name,
  publicKey: r.public_key,
  counter: Number(r.counter),
  transports: r.transports,
  createdAt: r.created_at,
  lastUsedAt: r.last_used_at ?? undefined,
});

/**
 * Second factors in PostgreSQL (migration 102), every query parameterized. The single-use checks
 * are one conditional UPDATE each: PostgreSQL's row lock makes the second of two racing requests
 * see the first one's write, on any number of instances.
 */
export function createPostgresFactorStore(pool: pg.Pool): FactorStore {
  return {
    async get(user) {
      const [{ rows }, passkeys] = await Promise.all([
        pool.query<FactorRow>('SELECT totp_sealed, totp_enrolled_at, totp_last_step, recovery_hashes FROM gateway_user_factors WHERE user_name = $1', [user]),
        pool.query<PasskeyRow>('SELECT * FROM gateway_passkeys WHERE user_name = $1 ORDER BY created_at', [user]),
      ]);
      const r = rows[0];
      const out: UserFactors = { recoveryHashes: r?.recovery_hashes ?? [], passkeys: passkeys.rows.map(toPasskey) };
      if (r?.totp_sealed) out.totp = { sealed: r.totp_sealed, enrolledAt: r.totp_enrolled_at ?? new Date(0), lastStep: r.totp_last_step === null ? undefined : Number(r.totp_last_step) };
      return out;
    },
    async enrolTotp(user, sealed, hashes) {
      await pool.query(
        `INSERT INTO gateway_user_factors (user_name, totp_sealed, totp_enrolled_at, totp_last_step, recovery_hashes) VALUES ($1, $2, now(), NULL, $3)
         ON CONFLICT (user_name) DO UPDATE SET totp_sealed = $2, totp_enrolled_at = now(), totp_last_step = NULL, recovery_hashes = $3`,
        [user, sealed, hashes],
      );
    },
    async resealTotp(user, sealed) {
      await pool.query('UPDATE gateway_user_factors SET totp_sealed = $2 WHERE user_name = $1 AND totp_sealed IS NOT NULL', [user, sealed]);
    },
    async acceptTotpStep(user, step) {
      const res = await pool.query('UPDATE gateway_user_factors SET totp_last_step = $2 WHERE user_name = $1 AND totp_sealed IS NOT NULL AND (totp_last_step IS NULL OR totp_last_step < $2)', [user, step]);
      return (res.rowCount ?? 0) > 0;
    },
    async useRecoveryCode(user, hash) {
      const res = await pool.query('UPDATE gateway_user_factors SET recovery_hashes = array_remove(recovery_hashes, $2) WHERE user_name = $1 AND $2 = ANY(recovery_hashes)', [user, hash]);
      return (res.rowCount ?? 0) > 0;
    },
    async setRecoveryCodes(user, hashes) {
      await pool.query(
        `INSERT INTO gateway_user_factors (user_name, recovery_hashes) VALUES ($1, $2)
         ON CONFLICT (user_name) DO UPDATE SET recovery_hashes = $2`,
        [user, hashes],
      );
    },
    async addPasskey(p) {
      await pool.query('INSERT INTO gateway_passkeys (id, user_name, public_key, counter, transports, created_at) VALUES ($1, $2, $3, $4, $5, $6)', [
        p.id,
        p.user,
        p.publicKey,
        p.counter,
        p.transports,
        p.createdAt,
      ]);
    },
    async passkey(id) {
      const { rows } = await pool.query<PasskeyRow>('SELECT * FROM gateway_passkeys WHERE id = $1', [id]);
      return rows[0] ? toPasskey(rows[0]) : undefined;
    },
    async usePasskey(id, from, to) {
      const res = await pool.query('UPDATE gateway_passkeys SET counter = $3, last_used_at = now() WHERE id = $1 AND counter = $2', [id, from, to]);
      return (res.rowCount ?? 0) > 0;
    },
    async reset(user) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const f = await client.query<FactorRow>('DELETE FROM gateway_user_factors WHERE user_name = $1 RETURNING totp_sealed, recovery_hashes', [user]);
        const p = await client.query('DELETE FROM gateway_passkeys WHERE user_name = $1', [user]);
        await client.query('COMMIT');
        return { totp: Boolean(f.rows[0]?.totp_sealed), recoveryCodes: f.rows[0]?.recovery_hashes.length ?? 0, passkeys: p.rowCount ?? 0 };
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    },
  };
}

/**
 * `store` with PostgreSQL outages told as AUTH_STORE_UNAVAILABLE (503, Retry-After), never as a
 * wrong code: a second factor that cannot be checked is not a failed one (no lockout counted).
 */
export function guardedFactorStore(store: FactorStore, liveness: PostgresLiveness | undefined): FactorStore {
  const guard = <A extends unknown[], R>(what: string, work: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      try {
        const result = await work(...args);
        liveness?.succeeded();
        return result;
      } catch (err) {
        if (!isStoreOutage(err)) throw err;
        liveness?.failed(err);
        throw storeUnavailable(`factor store unavailable during ${what}: ${(err as Error).message}`);
      }
    };
  return {
    get: guard('get', store.get),
    enrolTotp: guard('enrolTotp', store.enrolTotp),
    resealTotp: guard('resealTotp', store.resealTotp),
    acceptTotpStep: guard('acceptTotpStep', store.acceptTotpStep),
    useRecoveryCode: guard('useRecoveryCode', store.useRecoveryCode),
    setRecoveryCodes: guard('setRecoveryCodes', store.setRecoveryCodes),
    addPasskey: guard('addPasskey', store.addPasskey),
    passkey: guard('passkey', store.passkey),
    usePasskey: guard('usePasskey', store.usePasskey),
    reset: guard('reset', store.reset),
  };
}
