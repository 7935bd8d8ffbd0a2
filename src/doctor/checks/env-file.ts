import { statSync } from 'node:fs';
import { relative } from 'node:path';
import { pass, prodFail, type Check, type CheckResult } from '../types.js';

/** `.env` present, well-formed, and readable by its owner only (architecture: mode 600). */
export const envFileCheck: Check = (ctx) => {
  const { path, doc, error } = ctx.envFile;
  const name = relative(ctx.cwd, path) || path;
  if (error === 'missing') return [{ id: 'env-file', status: prodFail(ctx), message: `no ${name}: settings and secrets come only from the process environment`, fix: 'npx crm-gateway setup production' }];
  if (error || !doc) return [{ id: 'env-file', status: 'FAIL', message: error ?? `${name} unreadable`, fix: `fix the lines named (the last good copy is the newest ${name}.backup-*)` }];
  const out: CheckResult[] = [pass('env-file', `${name} parses (${doc.keys().length} settings)`)];
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o077) === 0) out.push(pass('env-file-mode', `${name} is mode ${mode.toString(8)}`));
  else {
    // Readable by everyone is a leak anywhere; group bits are a production matter.
    const status = (mode & 0o007) !== 0 ? 'FAIL' : prodFail(ctx);
    out.push({ id: 'env-file-mode', status, message: `${name} is mode ${mode.toString(8)}: others can read the secrets`, fix: `chmod 600 ${name}` });
  }
  return out;
};

/** Judged as production, the gateway must run as production too (it then refuses unsafe settings). */
export const environmentCheck: Check = (ctx) => {
  const declared = ctx.env.GATEWAY_ENV || 'development';
  if (ctx.production && declared !== 'production') {
    return [{ id: 'environment', status: 'FAIL', message: `GATEWAY_ENV is ${declared}: the gateway would start with unsafe settings instead of refusing them`, fix: 'set GATEWAY_ENV=production (npx crm-gateway setup production)' }];
  }
  return [pass('environment', `GATEWAY_ENV=${declared}${ctx.production ? '' : ' (judged as development; use --production for the deployment checklist)'}; settings from ${ctx.envSources.join(' + ')}`)];
};

/** The config loads with this environment; every later check needs it. */
export const configCheck: Check = (ctx) => {
  if (ctx.configError || !ctx.config) return [{ id: 'config', status: 'FAIL', message: ctx.configError ?? 'no config', fix: 'npx crm-gateway config check' }];
  return [pass('config', `${ctx.config.routes.length} routes (${ctx.config.routes.map((r) => r.name).join(', ')})`)];
};
