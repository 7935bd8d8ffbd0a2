import { COMMANDS } from './commands/index.js';

function usage(): string {
  return `usage: crm-gateway <command>\n\ncommands:\n${COMMANDS.map((c) => `  ${c.usage}`).join('\n')}\n  help                   this text\n`;
}

/** Entry of `npx crm-gateway`; returns the exit code (long-running commands never return). */
export async function run(argv: readonly string[]): Promise<number> {
  const [name = 'start', ...rest] = argv;
  if (name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(usage());
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    process.stderr.write(`unknown command ${name}\n${usage()}`);
    return 2;
  }
  return command.run(rest);
}
