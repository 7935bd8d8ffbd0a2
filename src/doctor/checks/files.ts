import { existsSync, readFileSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join, relative, sep } from 'node:path';
import { backupKeyProblem } from '../../secrets/backup-key.js';
import { DEFAULTS } from '../../config/schema.js';
import { pass, prodFail, type Check, type CheckResult, type DoctorContext } from '../types.js';

/** Longest a `git check-ignore` may take. */
const GIT_TIMEOUT_MS = 5_000;

function backupSettings(ctx: DoctorContext): { keyFile: string; dir: string } {
  return {
    keyFile: ctx.at(ctx.config?.backup.keyFile ?? (ctx.env.BACKUP_KEY_FILE || DEFAULTS.backupKeyFile)),
    dir: ctx.at(ctx.config?.backup.dir ?? (ctx.env.BACKUP_DIR || DEFAULTS.backupDir)),
  };
}

/** The backup encryption key: present, 32 bytes hex, mode 0600 in a 0700 folder, not beside the backups. */
export const backupKeyCheck: Check = (ctx) => {
  const { keyFile, dir } = backupSettings(ctx);
  const name = relative(ctx.cwd, keyFile) || keyFile;
  if (!existsSync(keyFile)) return [{ id: 'backup-key', status: prodFail(ctx), message: `no backup encryption key at ${name}`, fix: 'npx crm-gateway setup production (creates it; never overwrites one)' }];
  const out: CheckResult[] = [];
  let content: string | undefined;
  try {
    if (!statSync(keyFile).isFile()) throw Object.assign(new Error('not a file'), { code: 'not a regular file' });
    content = readFileSync(keyFile, 'utf8');
  } catch (err) {
    return [{ id: 'backup-key', status: 'FAIL', message: `backup key ${name} is unreadable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, fix: `check the path and permissions of ${name}` }];
  }
  const problem = backupKeyProblem(content);
  if (problem) out.push({ id: 'backup-key', status: 'FAIL', message: `backup key ${name} ${problem}`, fix: 'restore the key from your offline copy; a new key cannot read old backups' });
  const mode = statSync(keyFile).mode & 0o777;
  if ((mode & 0o077) !== 0) out.push({ id: 'backup-key', status: prodFail(ctx), message: `backup key ${name} is mode ${mode.toString(8)}`, fix: `chmod 600 ${name}` });
  const dirMode = statSync(dirname(keyFile)).mode & 0o777;
  if ((dirMode & 0o077) !== 0) out.push({ id: 'backup-key', status: prodFail(ctx), message: `folder of the backup key is mode ${dirMode.toString(8)}`, fix: `chmod 700 ${relative(ctx.cwd, dirname(keyFile)) || '.'}` });
  if (keyFile === dir || keyFile.startsWith(dir + sep)) out.push({ id: 'backup-key', status: 'FAIL', message: `the backup key is stored inside the backup folder ${relative(ctx.cwd, dir)}: whoever copies the backups gets the key`, fix: 'set BACKUP_KEY_FILE outside BACKUP_DIR' });
  return out.length > 0 ? out : [pass('backup-key', `${name}: 32-byte key, mode ${mode.toString(8)}`)];
};

/**
 * The client keys of `upstreamTls` (mTLS to an upstream): mode 0600 like the gateway's own TLS
 * key, for whoever reads one can present the gateway's client certificate to that upstream.
 * Nothing to report when no route has one.
 */
export const upstreamTlsKeyCheck: Check = (ctx) => {
  const out: CheckResult[] = [];
  for (const route of ctx.config?.routes ?? []) {
    const key = route.upstreamTls?.key;
    if (!key) continue;
    const file = ctx.at(key);
    const name = relative(ctx.cwd, file) || file;
    let mode: number;
    try {
      mode = statSync(file).mode & 0o777;
    } catch (err) {
      out.push({ id: 'upstream-tls-key', status: 'FAIL', message: `route ${route.name}: upstreamTls key ${name} is unreadable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, fix: `check the path and permissions of ${name}` });
      continue;
    }
    if ((mode & 0o077) !== 0) out.push({ id: 'upstream-tls-key', status: prodFail(ctx), message: `route ${route.name}: upstreamTls key ${name} is mode ${mode.toString(8)}`, fix: `chmod 600 ${name}` });
    else out.push(pass('upstream-tls-key', `route ${route.name}: upstreamTls key ${name}, mode ${mode.toString(8)}`));
  }
  return out;
};

function gitRoot(from: string): string | undefined {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, '.git'))) return dir;
    if (dirname(dir) === dir) return undefined;
  }
}

function git(root: string, args: string[]): number | undefined {
  const r = spawnSync('git', args, { cwd: root, stdio: 'ignore', timeout: GIT_TIMEOUT_MS });
  return r.error ? undefined : (r.status ?? undefined);
}

/** In a git checkout, secrets, keys, logs and backups must be ignored and never committed. */
export const gitignoreCheck: Check = (ctx) => {
  const root = gitRoot(ctx.cwd);
  if (!root) return [pass('gitignore', 'not a git checkout: nothing to commit by mistake')];
  const { keyFile, dir } = backupSettings(ctx);
  const paths = new Map<string, string>([
    [ctx.envFile.path, '.env'],
    [`${ctx.envFile.path}.backup-20000101T000000Z`, '.env backups'],
    [keyFile, 'backup key'],
    [join(dir, 'x.manifest.json'), 'backups'],
    [join(ctx.at(ctx.config?.log.dir ?? DEFAULTS.logDir), 'x.log'), 'logs'],
  ]);
  if (ctx.config) paths.set(ctx.at(ctx.config.tls.keyFile), 'TLS key');
  const out: CheckResult[] = [];
  for (const [path, what] of paths) {
    const rel = relative(root, path);
    if (rel.startsWith('..')) continue; // outside the checkout
    const ignored = git(root, ['check-ignore', '-q', '--no-index', '--', rel]);
    if (ignored === undefined) return [{ id: 'gitignore', status: 'WARN', message: 'git is not available to check .gitignore', fix: 'install git, or check by hand that .env*, keys, logs and backups are ignored' }];
    if (ignored !== 0) out.push({ id: 'gitignore', status: 'FAIL', message: `${what} (${rel}) is not covered by .gitignore`, fix: `add ${rel.split(sep)[0]} to .gitignore` });
    else if (existsSync(path) && git(root, ['ls-files', '--error-unmatch', '--', rel]) === 0) {
      out.push({ id: 'gitignore', status: 'FAIL', message: `${what} (${rel}) is committed to git`, fix: `git rm --cached ${rel}, then rotate every secret it held` });
    }
  }
  return out.length > 0 ? out : [pass('gitignore', '.env*, keys, logs and backups are ignored by git')];
};
