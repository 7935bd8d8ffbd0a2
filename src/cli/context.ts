import { userInfo } from 'node:os';
import { loadConfigFile } from '../config/load.js';
import { configPathFromEnv, processEnv } from '../config/env.js';
import type { GatewayConfig } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import { createAuthService, type AuthService } from '../auth/service.js';
import { createRedis } from '../stores/redis.js';
import { createPostgres } from '../stores/postgres.js';
import { openCliAuditLog } from '../audit/writer/cli-log.js';
import { CliError } from './errors.js';

export { CliError };

/**
 * CLI commands print for people on stderr and keep stdout for what a script captures (a token, a
 * list). Security events are JSON lines; on stderr they would break up that human text, so they
 * go there only with `--verbose`, or when no audit file can hold them (no config: the compose
 * backup job, whose stderr is the container log).
 */
export function cliLogger(opts: { securityToStderr: boolean; verbose: boolean }): Logger {
  const write = (obj: Record<string, unknown>): void => void process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), ...obj })}\n`);
  return {
    access: () => undefined,
    security: (event, fields = {}) => {
      if (opts.securityToStderr) write({ stream: 'security', event, actor: userInfo().username, ...fields });
    },
    app: (level, message, fields = {}) => {
      if (level !== 'error' && level !== 'warn') return;
      if (opts.verbose) write({ stream: 'app', level, message, ...fields });
      else process.stderr.write(`${level === 'error' ? 'ERROR' : 'WARNING'}: ${message}\n`);
    },
  };
}

/** A CLI process's logger: the audit files when the config is known, else stderr (close it before exit). */
export interface CliLog {
  readonly log: Logger;
  close(): Promise<void>;
}

/**
 * The logger of a CLI action: with the gateway's config, every event goes to LOG_DIR through
 * the audit logger (its own `cli` files and chain), so `admin.*` events are in the
 * tamper-evident record security staff review, and to stderr only with `verbose`. When the
 * audit files cannot be opened the action still runs (a revocation must not wait on a full
 * disk), with a WARNING, and its events go to stderr instead.
 */
export async function openCliLog(cfg: GatewayConfig | undefined, verbose = false): Promise<CliLog> {
  if (!cfg) return { log: cliLogger({ securityToStderr: true, verbose }), close: async () => undefined };
  let audit: Awaited<ReturnType<typeof openCliAuditLog>>;
  try {
    audit = await openCliAuditLog(cfg, { verbose });
  } catch (err) {
    process.stderr.write(`WARNING: audit log in ${cfg.log.dir} unavailable (${(err as Error).message}); this action's events go to stderr only\n`);
    return { log: cliLogger({ securityToStderr: true, verbose }), close: async () => undefined };
  }
  const stderr = cliLogger({ securityToStderr: verbose, verbose });
  const actor = userInfo().username;
  const log: Logger = {
    access: () => undefined,
    security: (event, fields = {}) => {
      stderr.security(event, fields);
      audit.security(event, { actor, ...fields });
    },
    // The audit logger's console channel prints warnings itself (cliConsole).
    app: (level, message, fields = {}) => audit.app(level, message, fields),
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
export async function openAuth(verbose = false): Promise<CliContext> {
  const env = processEnv();
  const cfg = loadConfigFile(configPathFromEnv(env), env);
  const cliLog = await openCliLog(cfg, verbose);
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
