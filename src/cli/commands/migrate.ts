import { configPathFromEnv, processEnv } from '../../config/env.js';
import { loadConfigFile } from '../../config/load.js';
import { AUTH_MIGRATIONS } from '../../auth/store/migrations.js';
import { migrate } from '../../stores/migrations.js';
import { createPostgres } from '../../stores/postgres.js';
import type { Command } from '../command.js';
import { openCliLog } from '../context.js';
import { CliError } from '../errors.js';

export const migrateCommand: Command = {
  name: 'migrate',
  usage: 'migrate                apply pending PostgreSQL migrations (also done at startup; safe to run concurrently)',
  help: { synopsis: 'migrate', description: 'apply pending PostgreSQL migrations (also done at startup; safe to run concurrently)', options: {} },
  async run(inv) {
    if (inv.positionals.length > 0) throw new CliError(`unexpected argument ${inv.positionals[0]}`, 2, 'migrate');
    const env = processEnv();
    const cfg = loadConfigFile(configPathFromEnv(env), env);
    const cliLog = await openCliLog(cfg, inv.verbose);
    const log = cliLog.log;
    const pool = await createPostgres(cfg, log);
    if (!pool) {
      process.stderr.write('DATABASE_URL is not set: the embedded file store needs no migrations\n');
      await cliLog.close();
      return 0;
    }
    try {
      const applied = await migrate(pool, AUTH_MIGRATIONS);
      log.security('admin.migrated', { applied });
      process.stdout.write(applied.length > 0 ? `applied migrations ${applied.join(', ')}\n` : 'database is up to date\n');
      return 0;
    } finally {
      await pool.end();
      await cliLog.close();
    }
  },
};
