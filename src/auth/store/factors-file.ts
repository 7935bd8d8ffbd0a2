import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '../../stores/private-file.js';
import type { FactorStore, PasskeyRecord, UserFactors } from './factors.js';

interface FileShape {
  users: Record<string, { totp?: { sealed: string; enrolledAt: string; lastStep?: number }; recoveryHashes?: string[] }>;
  passkeys: (Omit<PasskeyRecord, 'createdAt' | 'lastUsedAt'> & { createdAt: string; lastUsedAt?: string })[];
}

/**
 * Embedded mode: `<dataDir>/factors.json`, mode 0600, replaced atomically as users.json is. Every
 * change reads, edits and writes the file synchronously, with no await in between: within the one
 * process the embedded mode allows, a code cannot be accepted twice.
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
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    writeFileAtomic(file, JSON.stringify(data, null, 2));
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
      const data = read();
      const u = entry(data, user);
      u.totp = { sealed, enrolledAt: new Date().toISOString() };
      u.recoveryHashes = [...hashes];
      write(data);
    },
    async resealTotp(user, sealed) {
      const data = read();
      const t = Object.hasOwn(data.users, user) ? data.users[user]?.totp : undefined;
      if (!t) return;
      t.sealed = sealed;
      write(data);
    },
    async acceptTotpStep(user, step) {
      const data = read();
      const t = Object.hasOwn(data.users, user) ? data.users[user]?.totp : undefined;
      if (!t || (t.lastStep !== undefined && t.lastStep >= step)) return false;
      t.lastStep = step;
      write(data);
      return true;
    },
    async useRecoveryCode(user, hash) {
      const data = read();
      const u = Object.hasOwn(data.users, user) ? data.users[user] : undefined;
      const i = u?.recoveryHashes?.indexOf(hash) ?? -1;
      if (!u?.recoveryHashes || i < 0) return false;
      u.recoveryHashes.splice(i, 1);
      write(data);
      return true;
    },
    async setRecoveryCodes(user, hashes) {
      const data = read();
      entry(data, user).recoveryHashes = [...hashes];
      write(data);
    },
    async addPasskey(p) {
      const data = read();
      if (data.passkeys.some((x) => x.id === p.id)) throw new Error('passkey already registered');
      data.passkeys.push({ ...p, createdAt: p.createdAt.toISOString(), lastUsedAt: p.lastUsedAt?.toISOString() });
      write(data);
    },
    async passkey(id) {
      const p = read().passkeys.find((x) => x.id === id);
      return p ? passkey(p) : undefined;
    },
    async usePasskey(id, from, to) {
      const data = read();
      const p = data.passkeys.find((x) => x.id === id);
      if (!p || p.counter !== from) return false;
      p.counter = to;
      p.lastUsedAt = new Date().toISOString();
      write(data);
      return true;
    },
    async reset(user) {
      const data = read();
      const u = Object.hasOwn(data.users, user) ? data.users[user] : undefined;
      const passkeys = data.passkeys.filter((p) => p.user === user).length;
      const had = { totp: u?.totp !== undefined, recoveryCodes: u?.recoveryHashes?.length ?? 0, passkeys };
      delete data.users[user];
      data.passkeys = data.passkeys.filter((p) => p.user !== user);
      write(data);
      return had;
    },
  };
}
