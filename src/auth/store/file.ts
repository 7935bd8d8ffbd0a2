import { mkdirSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../../stores/private-file.js';
import { dirname, join } from 'node:path';
import type { ClientRecord, IdentityStore, UserRecord } from './types.js';

interface FileShape {
  users: (Omit<UserRecord, 'createdAt' | 'lastLoginAt' | 'sessionsValidFrom'> & { createdAt: string; lastLoginAt?: string; sessionsValidFrom?: string })[];
  clients: (Omit<ClientRecord, 'createdAt'> & { createdAt: string })[];
}

/**
 * Embedded mode: users and clients in `<dataDir>/users.json`, mode 0600, replaced atomically
 * (temp file created 0600, fsync, rename) so a crash never leaves half a file. One instance only.
 */
export function createFileIdentityStore(dataDir: string): IdentityStore {
  const file = join(dataDir, 'users.json');
  const read = (): FileShape => {
    try {
      const data = JSON.parse(readFileSync(file, 'utf8')) as FileShape;
      return { users: data.users ?? [], clients: data.clients ?? [] };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { users: [], clients: [] };
      throw new Error(`cannot read ${file}: ${(err as Error).message}`);
    }
  };
  const write = (data: FileShape): void => {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    writeFileAtomic(file, JSON.stringify(data, null, 2));
  };
  const user = (u: FileShape['users'][number]): UserRecord => ({
    ...u,
    createdAt: new Date(u.createdAt),
    lastLoginAt: u.lastLoginAt ? new Date(u.lastLoginAt) : undefined,
    sessionsValidFrom: u.sessionsValidFrom ? new Date(u.sessionsValidFrom) : undefined,
  });
  const client = (c: FileShape['clients'][number]): ClientRecord => ({ ...c, createdAt: new Date(c.createdAt) });

  return {
    kind: 'file',
    async getUser(name) {
      const u = read().users.find((x) => x.name === name);
      return u ? user(u) : undefined;
    },
    async listUsers() {
      return read().users.map(user).sort((a, b) => a.name.localeCompare(b.name));
    },
    async addUser(u) {
      const data = read();
      if (data.users.some((x) => x.name === u.name)) throw new Error(`user ${u.name} exists`);
      data.users.push({ ...u, createdAt: u.createdAt.toISOString(), lastLoginAt: u.lastLoginAt?.toISOString(), sessionsValidFrom: u.sessionsValidFrom?.toISOString() });
      write(data);
    },
    async updateUser(name, patch) {
      const data = read();
      const u = data.users.find((x) => x.name === name);
      if (!u) return false;
      if (patch.passwordHash !== undefined) u.passwordHash = patch.passwordHash;
      if (patch.roles !== undefined) u.roles = patch.roles;
      if (patch.disabled !== undefined) u.disabled = patch.disabled;
      if (patch.lastLoginAt !== undefined) u.lastLoginAt = patch.lastLoginAt.toISOString();
      if (patch.sessionsValidFrom !== undefined) u.sessionsValidFrom = patch.sessionsValidFrom.toISOString();
      write(data);
      return true;
    },
    async getClient(name) {
      const c = read().clients.find((x) => x.name === name);
      return c ? client(c) : undefined;
    },
    async listClients() {
      return read().clients.map(client).sort((a, b) => a.name.localeCompare(b.name));
    },
    async addClient(c) {
      const data = read();
      if (data.clients.some((x) => x.name === c.name)) throw new Error(`client ${c.name} exists`);
      data.clients.push({ ...c, createdAt: c.createdAt.toISOString() });
      write(data);
    },
    async updateClient(name, patch) {
      const data = read();
      const c = data.clients.find((x) => x.name === name);
      if (!c) return false;
      if (patch.secretHash !== undefined) c.secretHash = patch.secretHash;
      if (patch.roles !== undefined) c.roles = patch.roles;
      if (patch.disabled !== undefined) c.disabled = patch.disabled;
      write(data);
      return true;
    },
  };
}
