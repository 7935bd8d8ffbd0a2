import { main, exitOnStartupError } from '../../main.js';
import type { Command } from '../command.js';
import { CliError } from '../errors.js';

export const startCommand: Command = {
  name: 'start',
  usage: 'start                  run the gateway (config/gateway.yaml or GATEWAY_CONFIG)',
  help: { synopsis: 'start', description: 'run the gateway (config/gateway.yaml or GATEWAY_CONFIG); the default command', options: {} },
  async run(inv) {
    if (inv.positionals.length > 0) throw new CliError(`unexpected argument ${inv.positionals[0]}`, 2, 'start');
    await main().catch(exitOnStartupError);
    return new Promise<number>(() => undefined); // runs until a signal stops the process
  },
};
