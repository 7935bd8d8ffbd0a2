import type { Command } from '../command.js';

/**
 * Every CLI command by name, each module loaded only when its command runs: `crm-gateway start`
 * then loads the gateway alone, not the doctor, the backup code, pg or selfsigned that other
 * commands need (issue 13, item 5). A feature adds its command here, one line each.
 */
export const COMMANDS: ReadonlyMap<string, () => Promise<Command>> = new Map([
  ['start', async () => (await import('./start.js')).startCommand],
  ['config', async () => (await import('./config.js')).configCommand],
  ['migrate', async () => (await import('./migrate.js')).migrateCommand],
  ['users', async () => (await import('./users.js')).usersCommand],
  ['tokens', async () => (await import('./tokens.js')).tokensCommand],
  ['clients', async () => (await import('./clients.js')).clientsCommand],
  ['setup', async () => (await import('./setup.js')).setupCommand],
  ['secrets', async () => (await import('./secrets.js')).secretsCommand],
  ['doctor', async () => (await import('./doctor.js')).doctorCommand],
  ['audit', async () => (await import('./audit.js')).auditCommand],
  ['backup', async () => (await import('./backup.js')).backupCommand],
  ['access', async () => (await import('./access.js')).accessCommand],
  ['block', async () => (await import('./block.js')).blockCommand],
  ['unblock', async () => (await import('./block.js')).unblockCommand],
  ['sessions', async () => (await import('./sessions.js')).sessionsCommand],
]);
