import { COMMANDS } from './commands/index.js';
import { helpText, parseCommandLine } from './args.js';
import { CliError, errorText } from './errors.js';

/** The usage text: it loads every command, for its line. */
async function usage(): Promise<string> {
  const commands = await Promise.all([...COMMANDS.values()].map((load) => load()));
  return `usage: crm-gateway <command> [--help]\n\ncommands:\n${commands.map((c) => `  ${c.usage}`).join('\n')}\n  help [command]         this text, or a command's\n`;
}

/** Entry of `npx crm-gateway`; returns the exit code (long-running commands never return). */
export async function run(argv: readonly string[]): Promise<number> {
  const [name = 'start', ...rest] = argv;
  if (name === 'help' || name === '--help' || name === '-h') {
    const load = rest[0] !== undefined ? COMMANDS.get(rest[0]) : undefined;
    process.stdout.write(load ? helpText(await load()) : await usage());
    return 0;
  }
  const load = COMMANDS.get(name);
  if (!load) {
    process.stderr.write(`${errorText(new CliError(`unknown command ${name}`), false)}${await usage()}`);
    return 2;
  }
  const command = await load();
  const verbose = rest.includes('--verbose');
  try {
    const parsed = parseCommandLine(command, rest);
    if (parsed.kind === 'help') {
      process.stdout.write(parsed.text);
      return 0;
    }
    return await command.run(parsed.inv);
  } catch (err) {
    process.stderr.write(errorText(err, verbose));
    return err instanceof CliError ? err.exitCode : 1;
  }
}
