import { processEnv } from '../../config/env.js';
import { ConfigError } from '../../config/load.js';
import type { Logger } from '../../log/logger.js';
import { prepare, RefusedToStart } from '../../bootstrap.js';
import type { Command } from '../command.js';
import { CliError } from '../errors.js';
import { OpenApiSpecError } from '../../openapi/errors.js';

/** A logger that stays quiet: `config check` reports on stdout/stderr itself. */
const quiet: Logger = { access: () => undefined, security: () => undefined, app: () => undefined };

export const configCommand: Command = {
  name: 'config',
  usage: 'config check [file]    validate a config with the current environment; print every problem',
  subcommands: {
    check: {
      synopsis: 'config check [file]',
      description: 'validate a config (default config/gateway.yaml or GATEWAY_CONFIG) with the current environment; print every problem',
      options: {},
    },
  },
  async run(inv) {
    const [file, extra] = inv.positionals;
    if (extra !== undefined) throw new CliError(`unexpected argument ${extra}`, 2, 'config check');
    try {
      const { config, findings } = await prepare(processEnv(), quiet, { file, generateCertificate: false });
      // Each route's OpenAPI spec is fetched and compiled as startup (and SIGHUP) would: check one before reloading.
      if (config.routes.some((r) => r.openapi)) await (await import('../../openapi/registry.js')).OpenApiSpecs.load(config.routes, quiet);
      process.stdout.write(`config OK: ${config.routes.length} routes (${config.routes.map((r) => r.name).join(', ')}), env ${config.env}\n`);
      if (findings.length > 0) process.stdout.write(`${findings.length} warning(s) above would refuse startup in production\n`);
      return 0;
    } catch (err) {
      if (err instanceof ConfigError || err instanceof RefusedToStart || err instanceof OpenApiSpecError) throw new CliError(err.message);
      throw err;
    }
  },
};
