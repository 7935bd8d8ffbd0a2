import { COMMANDS } from './commands/index.js';

/** The usage text: it loads every command, for its line. */
async function usage(): Promise<string> {
  const commands = await Promise.all([...COMMANDS.values()].map((load) => load()));
  return `usage: crm-gateway <command>\n\ncommands:\n${commands.map((c) => `  ${c.usage}`).join('\n')}\n  help                   this text\n`;
}

/** Entry of `npx crm-gateway`; returns the exit code (long-running commands never return). */
export async function run(argv: readonly string[]): Promise<number> {
  const [name = 'start', ...rest] = argv;
  if (name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(await usage());
    return 0;
  }
  const load = COMMANDS.get(name);
  if (!load) {
    process.stderr.write(`unknown command ${name}\n${await usage()}`);
    return 2;
  }
  return (await load()).run(rest);
}
