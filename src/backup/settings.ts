import { existsSync } from 'node:fs';
import { configPathFromEnv, envOverlay, type Env } from '../config/env.js';
import { ConfigError, loadConfigFile } from '../config/load.js';
import { gatewaySchema, type GatewayConfig } from '../config/schema.js';
import { BackupError } from './errors.js';

export type BackupConfig = GatewayConfig['backup'];
export type S3Config = BackupConfig['s3'];

/** What the backup feature needs from the config, with the database URL already resolved. */
export interface BackupSettings extends Omit<BackupConfig, 'databaseUrl'> {
  /** BACKUP_DATABASE_URL, else DATABASE_URL. */
  readonly databaseUrl: string | undefined;
}

export function backupSettings(cfg: GatewayConfig): BackupSettings {
  return { ...cfg.backup, databaseUrl: cfg.backup.databaseUrl ?? cfg.stores.databaseUrl };
}

const databaseUrlSchema = gatewaySchema.shape.stores.unwrap().shape.databaseUrl;

/**
 * The settings for the `backup` commands. With a gateway config file, from it (and the
 * environment over it) like every other command; without one (the compose backup job mounts
 * none), from the environment alone, validated by the same schema. A config file that exists
 * but is broken is an error, not a reason to fall back.
 */
export function loadBackupSettings(env: Env): BackupSettings {
  const file = configPathFromEnv(env);
  if (existsSync(file)) return backupSettings(loadConfigFile(file, env));
  const { overlay, sources } = envOverlay(env);
  const stores = (overlay.stores ?? {}) as Record<string, unknown>;
  const backup = gatewaySchema.shape.backup.safeParse(overlay.backup ?? {});
  const dbUrl = databaseUrlSchema.safeParse(stores.databaseUrl);
  const problems = [
    ...(backup.success ? [] : backup.error.issues.map((i) => ({ path: ['backup', ...i.path.map(String)].join('.'), message: i.message }))),
    ...(dbUrl.success ? [] : dbUrl.error.issues.map((i) => ({ path: 'stores.databaseUrl', message: i.message }))),
  ].map((p) => ({ ...p, path: `${p.path}${sourceOf(sources, p.path)}` }));
  if (!backup.success || !dbUrl.success) throw new ConfigError(`environment (no config file at ${file})`, problems);
  return { ...backup.data, databaseUrl: backup.data.databaseUrl ?? dbUrl.data };
}

function sourceOf(sources: ReadonlyMap<string, string>, path: string): string {
  for (let p = path; p; p = p.includes('.') ? p.slice(0, p.lastIndexOf('.')) : '') {
    const name = sources.get(p);
    if (name) return ` (from ${name})`;
  }
  return '';
}

/** The database to back up, or BACKUP_CONFIG naming both variables. */
export function requireDatabaseUrl(s: BackupSettings): string {
  if (!s.databaseUrl) throw new BackupError('BACKUP_CONFIG', 'no database to back up: set BACKUP_DATABASE_URL (or DATABASE_URL) to the CRM database, e.g. postgres://crm_user@postgres:5432/crm_autonomo');
  return s.databaseUrl;
}
