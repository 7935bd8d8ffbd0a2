import { existsSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '../..');

/**
 * The skip option of a test that runs the built gateway (dist/): false when `file` (relative to
 * the project root) is there, else the reason. Under CI=1 a missing build is an error instead:
 * `npm ci` builds (the prepare script), so a missing dist/ there is a broken build, and the
 * process tests must fail rather than quietly not run.
 */
export function notBuilt(file: string, why = 'dist/ is missing: run `npm run build` first'): string | false {
  if (existsSync(join(ROOT, file))) return false;
  if (process.env.CI === '1' || process.env.CI === 'true') {
    throw new Error(`${file} is missing under CI=1 (npm ci runs the build through the prepare script): ${why}`);
  }
  return why;
}
