import { parseArgs } from 'node:util';
import type { Command, Invocation, OptionSpecs, Usage } from './command.js';
import { CliError } from './errors.js';

/** Options every command accepts. */
const COMMON_OPTIONS: OptionSpecs = {
  help: { type: 'boolean', short: 'h' },
  verbose: { type: 'boolean' },
};

const COMMON_HELP = `  -h, --help     this text
  --verbose      also print this command's security events on stderr (they always go to the audit files)`;

export type Parsed = { readonly kind: 'help'; readonly text: string } | { readonly kind: 'run'; readonly inv: Invocation };

/** `--help` / `-h` before a `--` terminator. */
function wantsHelp(args: readonly string[]): boolean {
  const end = args.indexOf('--');
  return (end < 0 ? args : args.slice(0, end)).some((a) => a === '--help' || a === '-h');
}

export function helpText(command: Command, sub?: string): string {
  const one = (u: Usage): string => `usage: crm-gateway ${u.synopsis}\n${u.description.replace(/^/gm, '  ')}\n`;
  if (command.help) return `${one(command.help)}\noptions:\n${COMMON_HELP}\n`;
  const subs = command.subcommands ?? {};
  const chosen = sub !== undefined ? subs[sub] : undefined;
  if (chosen) return `${one(chosen)}\noptions:\n${COMMON_HELP}\n`;
  return `${Object.values(subs).map(one).join('')}\nEach takes -h/--help and --verbose; crm-gateway ${command.name} <command> --help for one.\n`;
}

/** Node's parseArgs messages, as one short line naming the option. */
function parseProblem(err: NodeJS.ErrnoException): string {
  const option = /'(-[^' ]+)/.exec(err.message)?.[1] ?? '';
  switch (err.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown option ${option}`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return /does not take/.test(err.message) ? `${option} takes no value` : `${option} needs a value`;
    default:
      return err.message.split('\n')[0] ?? 'bad arguments';
  }
}

/**
 * The one parser of every command line (node:util parseArgs, strict): the subcommand first,
 * then only the options that command declares. `--help` anywhere asks for its usage and nothing
 * runs; anything unknown is a usage error (exit 2) before the command touches a file or a store.
 */
export function parseCommandLine(command: Command, args: readonly string[]): Parsed {
  let usage = command.help;
  let sub: string | undefined;
  let rest = args;
  if (command.subcommands) {
    const first = args[0];
    if (first === undefined || first === 'help' || (first.startsWith('-') && wantsHelp([first]))) {
      if (first === undefined) throw new CliError(`${command.name} needs a command: ${Object.keys(command.subcommands).join(', ')}`, 2, command.name);
      return { kind: 'help', text: helpText(command) };
    }
    usage = command.subcommands[first];
    if (!usage) {
      if (wantsHelp(args)) return { kind: 'help', text: helpText(command) };
      throw new CliError(`unknown ${command.name} command ${first.startsWith('-') ? `option ${first}` : first} (${Object.keys(command.subcommands).join(', ')})`, 2, command.name);
    }
    sub = first;
    rest = args.slice(1);
  }
  if (wantsHelp(rest)) return { kind: 'help', text: helpText(command, sub) };
  const where = sub ? `${command.name} ${sub}` : command.name;
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: [...rest], options: { ...(usage?.options ?? {}), ...COMMON_OPTIONS }, strict: true, allowPositionals: true });
  } catch (err) {
    throw new CliError(parseProblem(err as NodeJS.ErrnoException), 2, where);
  }
  const values: Invocation['values'] = Object.fromEntries(Object.entries(parsed.values).filter(([k]) => !(k in COMMON_OPTIONS)));
  return { kind: 'run', inv: { sub, positionals: parsed.positionals, values, verbose: parsed.values.verbose === true } };
}

/** A string option's value, or undefined. */
export function stringOption(inv: Invocation, name: string): string | undefined {
  const v = inv.values[name];
  return typeof v === 'string' ? v : undefined;
}

export function flag(inv: Invocation, name: string): boolean {
  return inv.values[name] === true;
}

export function listOption(inv: Invocation, name: string): string[] | undefined {
  const v = inv.values[name];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : undefined;
}
