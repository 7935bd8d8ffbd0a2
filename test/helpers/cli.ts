import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The built CLI, exactly as `npx crm-gateway` runs it (needs `npm run build`). */
export const BIN = join(process.cwd(), 'bin', 'crm-gateway.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /**
   * The security events of the run: those it appended to the CLI's audit files in LOG_DIR
   * (`security.cli-*.log`), plus JSON lines of stderr with `stream: security` (where they go
   * without a config, or with --verbose).
   */
  events: Record<string, unknown>[];
}

/** A minimal valid gateway config for CLI commands, written into `dir`. */
export function writeCliConfig(dir: string): string {
  const file = join(dir, 'gateway.yaml');
  writeFileSync(file, 'routes:\n  - name: api\n    host: api.test.local\n    upstream: http://127.0.0.1:9\n    auth: jwt\n    roles: [api]\n');
  return file;
}

/** Where CLI processes of a test run write their audit files unless a test names LOG_DIR. */
let defaultLogDir: string | undefined;

/**
 * Runs `node bin/crm-gateway.js ...args` with only the given environment (plus PATH and HOME),
 * `stdin` piped in (and closed), and collects its output.
 */
export function runCli(args: string[], env: Record<string, string>, stdin = '', timeoutMs = 20_000): Promise<CliResult> {
  const logDir = env.LOG_DIR ?? (defaultLogDir ??= mkdtempSync(join(tmpdir(), 'crm-gw-cli-logs-')));
  const before = cliAuditSizes(logDir);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', LOG_DIR: logDir, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const stderr = Buffer.concat(err).toString('utf8');
      const events = stderr
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => {
          try {
            return JSON.parse(l) as Record<string, unknown>;
          } catch {
            return {};
          }
        })
        .filter((e) => e.stream === 'security');
      resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr, events: [...cliAuditEventsSince(logDir, before), ...events] });
    });
    child.stdin.end(stdin);
  });
}

/** Sizes of the CLI's security files in a log folder, to read what one run appends. */
function cliAuditSizes(dir: string): Map<string, number> {
  const sizes = new Map<string, number>();
  if (!existsSync(dir)) return sizes;
  for (const f of readdirSync(dir)) if (/^security\.cli-.*\.log$/.test(f)) sizes.set(f, statSync(join(dir, f)).size);
  return sizes;
}

function cliAuditEventsSince(dir: string, before: Map<string, number>): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const [f, size] of cliAuditSizes(dir)) {
    const text = readFileSync(join(dir, f)).subarray(before.get(f) ?? 0, size).toString('utf8');
    for (const line of text.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        out.push({ stream: 'security', ...(JSON.parse(line) as Record<string, unknown>) });
      } catch {
        // a line cut by a concurrent writer: not this run's
      }
    }
  }
  return out;
}

/** The claims of a JWT, unverified (to read a jti the CLI printed). */
export function jwtClaims(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}

export const ONE_JWT_LINE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\n$/;
