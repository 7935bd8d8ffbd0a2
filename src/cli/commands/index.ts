import type { Command } from '../command.js';
import { startCommand } from './start.js';
import { configCommand } from './config.js';

/** Every CLI command. A feature adds its command here, one line each. */
export const COMMANDS: readonly Command[] = [
  startCommand,
  configCommand,
];
