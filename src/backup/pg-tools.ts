import { spawn, type ChildProcess } from 'node:child_process';
import { BackupError } from './errors.js';

/** stderr kept from a tool for the error message: the end is where the reason is. */
const STDERR_KEEP_BYTES = 16 * 1024;
const VERSION_TIMEOUT_MS = 10_000;

export type PgTool = 'pg_dump' | 'pg_restore';

export interface ToolExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

export interface RunningTool {
  readonly child: ChildProcess;
  /** Settles when the process has exited and its output is closed; rejects only when it could not start. */
  readonly exited: Promise<ToolExit>;
  /** Ends the process now. SIGKILL: a pg_restore must not get to commit anything afterwards. */
  kill(): void;
}

/** Starts a PostgreSQL client tool; a missing binary becomes BACKUP_TOOL_MISSING. */
export function startTool(tool: PgTool, args: readonly string[], env: Record<string, string>, stdio: { stdin: 'pipe' | 'ignore'; stdout: 'pipe' | 'ignore' }): RunningTool {
  const child = spawn(tool, args, { env, stdio: [stdio.stdin, stdio.stdout, 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (s: string) => {
    stderr = (stderr + s).slice(-STDERR_KEEP_BYTES);
  });
  // A consumer that stops reading (pg_restore --list has what it needs) is fine: EPIPE is not an error here.
  child.stdin?.on('error', () => undefined);
  const exited = new Promise<ToolExit>((resolve, reject) => {
    child.once('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'ENOENT' ? new BackupError('BACKUP_TOOL_MISSING', `${tool} is not installed or not on PATH (install the PostgreSQL client tools, version ≥ the server's)`) : err);
    });
    child.once('close', (code, signal) => resolve({ code, signal, stderr: stderr.trim() }));
  });
  return {
    child,
    exited,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

/**
 * The server quotes rows in its errors (`DETAIL: Failing row contains (…)`, `Key (email)=(…)`,
 * `CONTEXT: COPY t, line 3: "…"`); these messages reach the security log and the console, so
 * the row data is cut out and the statement and constraint names kept.
 */
function withoutRowData(line: string): string {
  if (/^\s*(pg_restore: )?(DETAIL|Command was):/.test(line)) return line.replace(/(DETAIL|Command was):.*/, '$1: (row data withheld)');
  return line.replace(/(CONTEXT:\s+COPY [^,]+, line \d+)(, column [^:]+)?: .*/, '$1$2 (row data withheld)');
}

/** The last lines of a tool's stderr, for a one-paragraph error message (without row data). */
export function lastLines(stderr: string, n = 6): string {
  const lines = stderr.split('\n').filter((l) => l.trim() !== '').map(withoutRowData);
  return lines.slice(-n).join(' | ') || '(no output)';
}

/** `pg_dump --version` → `pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)`. */
export async function toolVersion(tool: PgTool, env: Record<string, string>): Promise<string> {
  const run = startTool(tool, ['--version'], env, { stdin: 'ignore', stdout: 'pipe' });
  let out = '';
  run.child.stdout?.setEncoding('utf8').on('data', (s: string) => (out += s));
  const timer = setTimeout(run.kill, VERSION_TIMEOUT_MS);
  try {
    const exit = await run.exited;
    if (exit.code !== 0) throw new BackupError('BACKUP_TOOL_MISSING', `${tool} --version failed: ${lastLines(exit.stderr)}`);
    return out.trim();
  } finally {
    clearTimeout(timer);
  }
}
