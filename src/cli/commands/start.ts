import { main, exitOnStartupError } from '../../main.js';
import type { Command } from '../command.js';

export const startCommand: Command = {
  name: 'start',
  usage: 'start                  run the gateway (config/gateway.yaml or GATEWAY_CONFIG)',
  async run() {
    await main().catch(exitOnStartupError);
    return new Promise<number>(() => undefined); // runs until a signal stops the process
  },
};
