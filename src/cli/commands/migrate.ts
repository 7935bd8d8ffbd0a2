import { configPathFromEnv, processEnv } from '../../config/env.js';
import { ConfigError, loadConfigFile } from '../../config/load.js';
import { AUTH_MIGRATIONS } from '../../auth/store/migrations.js';
import { migrate } from '../../stores/migrations.js';
import { createPostgres } from '../../stores/postgres.js';
import type { Command } from '../command.js';
import { openCliLog } from '../context.js';

export const migrateCommand: Command = {
  name: 'migrate',
  usage: 'migrate                apply pending PostgreSQL migrations (also done at startup; safe to run concurrently)',
  async run() {
    const env = processEnv();
    let cfg;
    try {
      cfg = loadConfigFile(configPathFromEnv(env), env);
    } catch (err) {
      if (err instanceof ConfigError) {
        process.stderr.write(`${err.message}\n`);
        return 1;
      }
      throw err;
    }
    const cliLog = await openCliLog(cfg);
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
    } catch (err) {
      process.stderr.write(`crm-gateway: ${(err as Error).message}\n`);
      return 1;
    } finally {
      await pool.end();
      await cliLog.close();
    }
  },
};
