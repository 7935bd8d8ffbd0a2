import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { configPathFromEnv, type Env } from '../config/env.js';
import { loadConfigFile } from '../config/load.js';
import { parseDuration } from '../config/units.js';
import { readDotenvFile } from './files.js';
import { DEFAULT_MAX_TOKEN_TTL_MS } from './keyring.js';

/**
 * The longest token lifetime the gateway accepts (`auth.maxTokenTtl`), read the way the gateway
 * reads it: config file + `.env` + environment. A retired JWT key must outlive every token it
 * signed, so when the config cannot be read this falls back to JWT_MAX_TTL or the schema's 24 h
 * and says so.
 */
export function maxTokenTtl(cwd: string, envFile: string | undefined, processEnv: Env): { ms: number; warning?: string } {
  const path = resolve(cwd, envFile ?? '.env');
  let fileValues: Record<string, string> = {};
  try {
    if (existsSync(path)) fileValues = readDotenvFile(path).toRecord();
  } catch {
    // A malformed .env is reported by the command that reads it for writing.
  }
  const env: Env = { ...fileValues, ...Object.fromEntries(Object.entries(processEnv).filter(([, v]) => v)) };
  try {
    return { ms: loadConfigFile(resolve(cwd, configPathFromEnv(env)), env).auth.maxTokenTtl };
  } catch (err) {
    const fromEnv = env.JWT_MAX_TTL ? parseDuration(env.JWT_MAX_TTL) : undefined;
    const ms = fromEnv ?? DEFAULT_MAX_TOKEN_TTL_MS;
    const reason = (err as Error).message.split('\n').map((l) => l.trim()).filter(Boolean).slice(0, 2).join(' ');
    return { ms, warning: `could not read the config (${reason}); the old JWT key stays valid for ${ms / 3_600_000} h (JWT_MAX_TTL or the default) + 30 s` };
  }
}
