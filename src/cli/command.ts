/** One option of a command, as node:util parseArgs takes it. */
export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  readonly multiple?: boolean;
}

export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

/** What `--help` prints for a command or subcommand, and the options it accepts. */
export interface Usage {
  /** After `usage: crm-gateway `, e.g. `audit search [--since t] [--json]`; more lines allowed. */
  readonly synopsis: string;
  /** What it does, one or a few lines. */
  readonly description: string;
  /** Every option it accepts; any other is refused before the command runs. */
  readonly options: OptionSpecs;
}

/** A command line after the shared parser: subcommand, positionals and known options only. */
export interface Invocation {
  readonly sub: string | undefined;
  readonly positionals: readonly string[];
  readonly values: Readonly<Record<string, string | boolean | (string | boolean)[] | undefined>>;
  /** `--verbose`: the CLI's own security events are printed on stderr too. */
  readonly verbose: boolean;
}

/**
 * One `npx crm-gateway <name> …` command. Either `help` (a command without subcommands) or
 * `subcommands`; src/cli/args.ts parses every command line against them, so `--help` and
 * unknown options behave the same in every command. `run` returns the exit code.
 */
export interface Command {
  readonly name: string;
  /** One line for the command list, e.g. `config check [file]   validate a config`. */
  readonly usage: string;
  readonly help?: Usage;
  readonly subcommands?: Readonly<Record<string, Usage>>;
  run(inv: Invocation): Promise<number>;
}
