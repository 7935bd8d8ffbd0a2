/** Every CLI failure starts with this, whatever the command: one thing for scripts and people to look for. */
export const ERROR_PREFIX = 'crm-gateway: error: ';

/** A usage or input problem: printed without a stack; exit code 1, or 2 for usage. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
    /** The command (`audit search`) whose `--help` the message points to, for usage errors. */
    readonly helpFor?: string,
  ) {
    super(message);
  }
}

const FILE_PROBLEMS: Readonly<Record<string, string>> = {
  ENOENT: 'no such file or folder',
  ENOTDIR: 'not a folder',
  EISDIR: 'a folder, not a file',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOSPC: 'no space left on the disk',
};

/** A file-system error as a sentence naming the path (`no such file or folder: logs`), not `ENOENT: scandir …`. */
export function fileProblem(err: unknown): string | undefined {
  const e = err as NodeJS.ErrnoException;
  const what = e?.code ? FILE_PROBLEMS[e.code] : undefined;
  return what && e.path ? `${what}: ${e.path}` : undefined;
}

/** The one-line error of any failed command; a stack only with --verbose, and for a bug. */
export function errorText(err: unknown, verbose: boolean): string {
  if (err instanceof CliError) return `${ERROR_PREFIX}${err.message}${err.helpFor ? ` (see crm-gateway ${err.helpFor} --help)` : ''}\n`;
  const sentence = fileProblem(err);
  if (sentence) return `${ERROR_PREFIX}${sentence}\n`;
  const message = err instanceof Error ? err.message : String(err);
  return `${ERROR_PREFIX}${message}\n${verbose && err instanceof Error && err.stack ? `${err.stack}\n` : ''}`;
}
