import { userInfo } from 'node:os';
import { loadConfigFile } from '../config/load.js';
import { configPathFromEnv, processEnv } from '../config/env.js';
import type { GatewayConfig } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import { createAuthService, type AuthService } from '../auth/service.js';
import { createRedis } from '../stores/redis.js';
import { createPostgres } from '../stores/postgres.js';
import { openCliAuditLog } from '../audit/cli-log.js';

/**
 * CLI commands log to stderr: stdout is kept for what a script captures (a token, a list).
 * Security events of CLI actions are JSON lines there, with `stream: security`.
 */
export function cliLogger(): Logger {
  const write = (obj: Record<string, unknown>): void => void process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), ...obj })}\n`);
  return {
    access: () => undefined,
    security: (event, fields = {}) => write({ stream: 'security', event, actor: userInfo().username, ...fields }),
    app: (level, message, fields = {}) => {
      if (level === 'error' || level === 'warn') write({ stream: 'app', level, message, ...fields });
    },
  };
}

/** A CLI process's logger: stderr, and with a config the audit files too (close it before exit). */
export interface CliLog {
  readonly log: Logger;
  close(): Promise<void>;
}

/**
 * The logger of a CLI action: every event goes to stderr as cliLogger() writes it and, when the
 * gateway's config is known, to LOG_DIR through the audit logger too (its own `cli` files and
 * chain), so `admin.*` events are in the tamper-evident record security staff review. When
 * the audit files cannot be opened the action still runs (a revocation must not wait on a
 * full disk), with a WARNING saying its events went to stderr only.
 */
export async function openCliLog(cfg: GatewayConfig | undefined): Promise<CliLog> {
  const stderr = cliLogger();
  if (!cfg) return { log: stderr, close: async () => undefined };
  let audit: Awaited<ReturnType<typeof openCliAuditLog>>;
  try {
    audit = await openCliAuditLog(cfg);
  } catch (err) {
    process.stderr.write(`WARNING: audit log in ${cfg.log.dir} unavailable (${(err as Error).message}); this action's events go to stderr only\n`);
    return { log: stderr, close: async () => undefined };
  }
  const actor = userInfo().username;
  const log: Logger = {
    access: () => undefined,
    security: (event, fields = {}) => {
      stderr.security(event, fields);
      audit.security(event, { actor, ...fields });
    },
    app: (level, message, fields = {}) => {
      stderr.app(level, message, fields);
      audit.app(level, message, fields);
    },
  };
  return { log, close: () => audit.close() };
}

export interface CliContext {
  cfg: GatewayConfig;
  log: Logger;
  auth: AuthService;
  close(): Promise<void>;
}

/** Config, stores and the auth service, as the gateway itself builds them. */
export async function openAuth(): Promise<CliContext> {
  const env = processEnv();
  const cfg = loadConfigFile(configPathFromEnv(env), env);
  const cliLog = await openCliLog(cfg);
  const log = cliLog.log;
  const redis = await createRedis(cfg, log, { enableOfflineQueue: true, lazyConnect: false });
  const postgres = await createPostgres(cfg, log);
  const auth = await createAuthService(cfg, { log, redis, postgres });
  const close = async (): Promise<void> => {
    await auth?.close();
    await Promise.allSettled([redis?.quit(), postgres?.end()]);
    await cliLog.close();
  };
  if (!auth) {
    await close();
    throw new CliError('API_SECRET_KEY is not set: run `npx crm-gateway setup` first');
  }
  return { cfg, log, auth, close };
}

/** A usage or input problem: printed without a stack, exit code 1 (2 for usage). */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** `--name value` and `--flag` options, the rest positional. */
export function parseArgs(args: readonly string[]): { positional: string[]; options: Map<string, string | true> } {
  const positional: string[] = [];
  const options = new Map<string, string | true>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      if (eq > 0) options.set(a.slice(2, eq), a.slice(eq + 1));
      else if (i + 1 < args.length && !(args[i + 1] as string).startsWith('--')) options.set(a.slice(2), args[++i] as string);
      else options.set(a.slice(2), true);
    } else positional.push(a);
  }
  return { positional, options };
}

/**
 * A secret from the terminal without echo, or the first line of stdin when piped. Never argv:
 * command lines are visible to every user of the machine and kept in shell history.
 */
export async function readSecret(prompt: string, confirm = false): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const c of stdin) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
  }
  const ask = (text: string): Promise<string> =>
    new Promise((resolve, reject) => {
      process.stderr.write(text);
      stdin.setRawMode(true);
      stdin.resume();
      let value = '';
      const onData = (buf: Buffer): void => {
        for (const ch of buf.toString('utf8')) {
          if (ch === '\r' || ch === '\n') {
            done();
            resolve(value);
            return;
          }
          if (ch === '\u0003') {
            done();
            reject(new CliError('cancelled'));
            return;
          }
          if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
          else value += ch;
        }
      };
      const done = (): void => {
        stdin.off('data', onData);
        stdin.setRawMode(false);
        stdin.pause();
        process.stderr.write('\n');
      };
      stdin.on('data', onData);
    });
  const first = await ask(prompt);
  if (confirm && (await ask('Again: ')) !== first) throw new CliError('the two entries differ');
  return first;
}
