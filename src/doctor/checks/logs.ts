import { randomBytes } from 'node:crypto';
import { accessSync, closeSync, constants, existsSync, openSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { pass, prodFail, type Check, type CheckResult } from '../types.js';

/** Security logs are reviewed weekly: anything shorter can lose a week before anyone looks. */
const MIN_RETENTION_DAYS = 7;
/** Logs hold client addresses; keeping them longer than a year needs a reason. */
const MAX_RETENTION_DAYS = 366;

/** Creates and removes a probe file: the only honest answer to "can the gateway write here". */
function writable(dir: string): string | undefined {
  const probe = join(dir, `.doctor-probe-${randomBytes(6).toString('hex')}`);
  try {
    closeSync(openSync(probe, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600));
    rmSync(probe);
    return undefined;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  }
}

function canWrite(dir: string): string | undefined {
  try {
    accessSync(dir, constants.W_OK);
    return undefined;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  }
}

function nearestExisting(path: string): string {
  let p = path;
  while (!existsSync(p) && dirname(p) !== p) p = dirname(p);
  return p;
}

/** Log folder writable and private, retention set, no debug logging in production. */
export const logsCheck: Check = (ctx) => {
  const log = ctx.config?.log;
  if (!log) return [];
  const dir = ctx.at(log.dir);
  const name = relative(ctx.cwd, dir) || dir;
  const out: CheckResult[] = [];
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) out.push({ id: 'logs', status: 'FAIL', message: `LOG_DIR ${name} is not a folder`, fix: 'point LOG_DIR at a folder' });
    else {
      const err = writable(dir);
      if (err) out.push({ id: 'logs', status: 'FAIL', message: `LOG_DIR ${name} is not writable (${err})`, fix: `chown the folder to the gateway's user, or set LOG_DIR` });
      const mode = statSync(dir).mode & 0o777;
      if ((mode & 0o007) !== 0) out.push({ id: 'logs', status: prodFail(ctx), message: `LOG_DIR ${name} is mode ${mode.toString(8)}: anyone on the host can read client addresses`, fix: `chmod 750 ${name}` });
    }
  } else {
    // Only asked, not probed: no file is created outside the log folder itself.
    const parent = nearestExisting(dir);
    const err = canWrite(parent);
    if (err) out.push({ id: 'logs', status: 'FAIL', message: `LOG_DIR ${name} does not exist and ${relative(ctx.cwd, parent) || parent} is not writable (${err})`, fix: `mkdir -m 750 ${name}` });
  }
  if (log.retentionDays < MIN_RETENTION_DAYS) out.push({ id: 'logs', status: 'WARN', message: `logs are kept ${log.retentionDays} days (weekly reviews need ${MIN_RETENTION_DAYS}+)`, fix: 'LOG_RETENTION_DAYS=30' });
  if (log.retentionDays > MAX_RETENTION_DAYS) out.push({ id: 'logs', status: 'WARN', message: `logs are kept ${log.retentionDays} days: personal data kept over a year`, fix: 'LOG_RETENTION_DAYS=30' });
  if (ctx.production && log.level === 'debug') out.push({ id: 'logs', status: 'WARN', message: 'LOG_LEVEL=debug in production', fix: 'LOG_LEVEL=info' });
  return out.length > 0 ? out : [pass('logs', `${name} writable, kept ${log.retentionDays} days, level ${log.level}`)];
};
