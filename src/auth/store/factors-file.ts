import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '../../stores/private-file.js';
import { withFileLock } from '../../containment/file-lock.js';
import type { FactorStore, PasskeyRecord, UserFactors } from './factors.js';

interface FileShape {
  users: Record<string, { totp?: { sealed: string; enrolledAt: string; lastStep?: number }; recoveryHashes?: string[] }>;
  passkeys: (Omit<PasskeyRecord, 'createdAt' | 'lastUsedAt'> & { createdAt: string; lastUsedAt?: string })[];
}

/**
 * Without PostgreSQL: `<dataDir>/factors.json`, mode 0600, replaced atomically as users.json is.
 * Every change reads, edits and writes the file under `factors.json.lock` (src/containment/
 * file-lock.ts), synchronously inside it: the workers of GATEWAY_WORKERS (and the CLI) share the
 * file, and without the lock two processes that read the same version would each accept the same
 * TOTP step or recovery code (measured before the lock: 550 acceptances of 300 steps).
 */
export function createFileFactorStore(dataDir: string): FactorStore {
  const file = join(dataDir, 'factors.json');
  const read = (): FileShape => {
    try {
      const data = JSON.parse(readFileSync(file, 'utf8')) as Partial<FileShape>;
      return { users: data.users ?? {}, passkeys: data.passkeys ?? [] };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { users: {}, passkeys: [] };
      throw new Error(`cannot read ${file}: ${(err as Error).message}`);
    }
  };
  const write = (data: FileShape): void => {
    writeFileAtomic(file, JSON.stringify(data, null, 2));
  };
  /** One read-modify-write under the lock; `edit` returns false to leave the file as it was. */
  const change = async <T>(edit: (data: FileShape) => { value: T; write: boolean }): Promise<T> => {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    return withFileLock(`${file}.lock`, () => {
      const data = read();
      const out = edit(data);
      if (out.write) write(data);
      return out.value;
    });
  };
  const passkey = (p: FileShape['passkeys'][number]): PasskeyRecord => ({ ...p, createdAt: new Date(p.createdAt), lastUsedAt: p.lastUsedAt ? new Date(p.lastUsedAt) : undefined });
  const entry = (data: FileShape, user: string): FileShape['users'][string] => {
    if (!Object.hasOwn(data.users, user)) data.users[user] = {};
    return data.users[user] as FileShape['users'][string];
  };

  return {
    async get(user) {
      const data = read();
      const u = Object.hasOwn(data.users, user) ? data.users[user] : undefined;
      const out: UserFactors = { recoveryHashes: [...(u?.recoveryHashes ?? [])], passkeys: data.passkeys.filter((p) => p.user === user).map(passkey) };
      if (u?.totp) out.totp = { sealed: u.totp.sealed, enrolledAt: new Date(u.totp.enrolledAt), lastStep: u.totp.lastStep };
      return out;
    },
    async enrolTotp(user, sealed, hashes) {
      await change((data) => {
        const u = entry(data, user);
        u.totp = { sealed, enrolledAt: new Date().toISOString() };
        u.recoveryHashes = [...hashes];
        return { value: undefined, write: true };
      });
    },
    async resealTotp(user, sealed) {
      await change((data) => {
        const t = Object.hasOwn(data.users, user) ? data.users[user]?.totp : undefined;
        if (!t) return { value: undefined, write: false };
        t.sealed = sealed;
        return { value: undefined, write: true };
      });
    },
    acceptTotpStep: (user, step) =>
      change((data) => {
        const t = Object.hasOwn(data.users, user) ? data.users[user]?.totp : undefined;
        if (!t || (t.lastStep !== undefined && t.lastStep >= step)) return { value: false, write: false };
        t.lastStep = step;
        return { value: true, write: true };
      }),
    useRecoveryCode: (user, hash) =>
      change((data) => {
        const u = Object.hasOwn(data.users, user) ? data.users[user] : undefined;
        const i = u?.recoveryHashes?.indexOf(hash) ?? -1;
        if (!u?.recoveryHashes || i < 0) return { value: false, write: false };
        u.recoveryHashes.splice(i, 1);
        return { value: true, write: true };
      }),
    async setRecoveryCodes(user, hashes) {
      await change((data) => {
        entry(data, user).recoveryHashes = [...hashes];
        return { value: undefined, write: true };
      });
    },
    async addPasskey(p) {
      await change((data) => {
        if (data.passkeys.some((x) => x.id === p.id)) throw new Error('passkey already registered');
        data.passkeys.push({ ...p, createdAt: p.createdAt.toISOString(), lastUsedAt: p.lastUsedAt?.toISOString() });
        return { value: undefined, write: true };
      });
    },
    async passkey(id) {
      const p = read().passkeys.find((x) => x.id === id);
      return p ? passkey(p) : undefined;
    },
    usePasskey: (id, from, to) =>
      change((data) => {
        const p = data.passkeys.find((x) => x.id === id);
        if (!p || p.counter !== from) return { value: false, write: false };
        p.counter = to;
        p.lastUsedAt = new Date().toISOString();
        return { value: true, write: true };
      }),
    reset: (user) =>
      change((data) => {
        const u = Object.hasOwn(data.users, user) ? data.users[user] : undefined;
        const passkeys = data.passkeys.filter((p) => p.user === user).length;
        const had = { totp: u?.totp !== undefined, recoveryCodes: u?.recoveryHashes?.length ?? 0, passkeys };
        delete data.users[user];
        data.passkeys = data.passkeys.filter((p) => p.user !== user);
        return { value: had, write: true };
      }),
  };
}
