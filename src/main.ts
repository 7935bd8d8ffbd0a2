import { pathToFileURL } from 'node:url';
import { processEnv, type Env } from './config/env.js';
import { ConfigError } from './config/load.js';
import { createConsoleLogger } from './log/logger.js';
import { prepare, RefusedToStart } from './bootstrap.js';
import { startGateway, type RunningGateway } from './server/start.js';
import { createRedis } from './stores/redis.js';
import { createPostgres } from './stores/postgres.js';

/** Wires only: load config → validate → build app → listen → stop on SIGTERM/SIGINT. */
export async function main(env: Env = processEnv()): Promise<RunningGateway> {
  const log = createConsoleLogger(env.LOG_LEVEL === 'debug' ? 'debug' : 'info');
  const { config } = await prepare(env, log);
  const redis = createRedis(config, log);
  const postgres = createPostgres(config, log);
  const running = await startGateway(config, { log, redis, postgres });
  const stop = (signal: string): void => {
    log.app('info', 'shutting down', { signal });
    running
      .shutdown()
      .then(() => Promise.allSettled([redis?.quit(), postgres?.end()]))
      .then(
        () => process.exit(0),
        () => process.exit(1),
      );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  return running;
}

/** Prints a startup failure for a person and exits non-zero. */
export function exitOnStartupError(err: unknown): never {
  if (err instanceof ConfigError || err instanceof RefusedToStart) process.stderr.write(`crm-gateway: ${err.message}\n`);
  else process.stderr.write(`crm-gateway: failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch(exitOnStartupError);
}
