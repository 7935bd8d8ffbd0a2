import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { configPathFromEnv, type Env } from '../../config/env.js';
import { DEFAULTS } from '../../config/defaults.js';
import { loadConfigFile } from '../../config/load.js';
import { readDotenvFile } from '../../secrets/files.js';
import { ASSERTION_KEY_FILE_NAME, rotateKeyFile, type AssertionRotation } from './keys.js';
import { assertionKeyFile } from './service.js';

/**
 * `secrets rotate-assertion`: the key file is found the way the gateway finds it (config file +
 * `.env` + environment: GATEWAY_ASSERTION_KEY_FILE, else DATA_DIR), then rotated in place.
 * Every instance reading that file picks the change up by itself: no restart.
 */
export function rotateAssertionKey(opts: { cwd: string; envFile?: string | undefined; env: Env; keyFile?: string | undefined; grace: boolean; now?: Date }): AssertionRotation & { warning?: string } {
  if (opts.keyFile) return rotateKeyFile(resolve(opts.cwd, opts.keyFile), { grace: opts.grace, now: opts.now });
  const dotenv = resolve(opts.cwd, opts.envFile ?? '.env');
  const fileValues = existsSync(dotenv) ? readDotenvFile(dotenv).toRecord() : {};
  const env: Env = { ...fileValues, ...Object.fromEntries(Object.entries(opts.env).filter(([, v]) => v)) };
  let file: string;
  let warning: string | undefined;
  try {
    file = assertionKeyFile(loadConfigFile(resolve(opts.cwd, configPathFromEnv(env)), env));
  } catch (err) {
    file = env.GATEWAY_ASSERTION_KEY_FILE || join(env.DATA_DIR || DEFAULTS.dataDir, ASSERTION_KEY_FILE_NAME);
    warning = `could not read the config (${(err as Error).message.split('\n')[0] ?? ''}); rotating ${file}`;
  }
  const r = rotateKeyFile(resolve(opts.cwd, file), { grace: opts.grace, now: opts.now });
  return warning ? { ...r, warning } : r;
}
