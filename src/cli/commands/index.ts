import type { Command } from '../command.js';
import { startCommand } from './start.js';
import { configCommand } from './config.js';
import { usersCommand } from './users.js';
import { tokensCommand } from './tokens.js';
import { clientsCommand } from './clients.js';
import { migrateCommand } from './migrate.js';
import { setupCommand } from './setup.js';
import { secretsCommand } from './secrets.js';
import { doctorCommand } from './doctor.js';
import { auditCommand } from './audit.js';
import { backupCommand } from './backup.js';

/** Every CLI command. A feature adds its command here, one line each. */
export const COMMANDS: readonly Command[] = [
  startCommand,
  configCommand,
  migrateCommand,
  usersCommand,
  tokensCommand,
  clientsCommand,
  setupCommand,
  secretsCommand,
  doctorCommand,
  auditCommand,
  backupCommand,
];
