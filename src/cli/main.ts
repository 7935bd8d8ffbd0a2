import { processEnv } from '../config/env.js';
import { ConfigError } from '../config/load.js';
import type { Logger } from '../log/logger.js';
import { prepare, RefusedToStart } from '../bootstrap.js';
import { main as startMain, exitOnStartupError } from '../main.js';

const USAGE = `usage: crm-gateway <command>

commands:
  start                  run the gateway (config/gateway.yaml or GATEWAY_CONFIG)
  config check [file]    validate a config with the current environment; print every problem
  help                   this text
`;

/** A logger that stays quiet: `config check` reports on stdout/stderr itself. */
const quiet: Logger = { access: () => undefined, security: () => undefined, app: () => undefined };

async function configCheck(file: string | undefined): Promise<number> {
  try {
    const { config, findings } = await prepare(processEnv(), quiet, { file, generateCertificate: false });
    process.stdout.write(`config OK: ${config.routes.length} routes (${config.routes.map((r) => r.name).join(', ')}), env ${config.env}\n`);
    if (findings.length > 0) process.stdout.write(`${findings.length} warning(s) above would refuse startup in production\n`);
    return 0;
  } catch (err) {
    if (err instanceof ConfigError || err instanceof RefusedToStart) {
      process.stderr.write(`${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

/** Entry of `npx crm-gateway`; returns the exit code (long-running commands never return). */
export async function run(argv: readonly string[]): Promise<number> {
  const [command = 'start', sub, arg] = argv;
  switch (command) {
    case 'start':
      await startMain().catch(exitOnStartupError);
      return new Promise<number>(() => undefined);
    case 'config':
      if (sub === 'check') return configCheck(arg);
      process.stderr.write(USAGE);
      return 2;
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return 0;
    default:
      process.stderr.write(`unknown command ${command}\n${USAGE}`);
      return 2;
  }
}

