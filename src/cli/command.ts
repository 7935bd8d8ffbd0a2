/** One `npx crm-gateway <name> …` command. `run` returns the exit code. */
export interface Command {
  readonly name: string;
  /** One line for the usage text, e.g. `config check [file]   validate a config`. */
  readonly usage: string;
  run(args: readonly string[]): Promise<number>;
}
