import { readFileSync } from 'node:fs';
import { basename, relative } from 'node:path';
import { DEFAULTS } from '../../config/schema.js';
import { EXTERNAL_SECRETS, SECRET_SPECS } from '../../secrets/specs.js';
import { ComposeError, isLoopback, parseCompose, referencedNames, roleOf, type ComposeService } from '../compose.js';
import { pass, prodFail, type Check, type CheckResult, type DoctorContext } from '../types.js';

/** Variable names that hold credentials; `*_FILE` names a file, not a secret. */
const SECRET_KEY = /(PASSWORD|PASSWD|SECRET|TOKEN|(^|_)KEY)$/i;
const TLS_MODES = new Set(['require', 'verify-ca', 'verify-full']);
/** `${VAR}` / `$VAR` (Compose) or `$$VAR` (a shell in the container): the value is not typed in. */
const FROM_ENV = /\$\$?\{?[A-Za-z_]/;

/** Which services may receive each secret (from SECRET_SPECS); matched as part of the service name. */
const CONSUMERS = new Map<string, readonly string[]>([
  ...SECRET_SPECS.map((s) => [s.name, s.services] as const),
  ...EXTERNAL_SECRETS.map((s) => [s.name, s.services] as const),
  ['API_SECRET_KEY_PREVIOUS', ['gateway']],
  ['WHATSAPP_APP_SECRET_PREVIOUS', ['gateway']],
]);

function servicePorts(ctx: DoctorContext, file: string, s: ComposeService, out: CheckResult[]): void {
  // The listeners inside the container: the service's own HTTPS_PORT / HTTP_PORT, else the config's.
  const own = (name: string): number | undefined => {
    const v = s.environment.find((e) => e.key === name)?.value;
    return v && /^\d+$/.test(v) ? Number(v) : undefined;
  };
  const allowed = new Set([own('HTTPS_PORT') ?? ctx.config?.listen.httpsPort ?? DEFAULTS.httpsPort, own('HTTP_PORT') ?? ctx.config?.listen.httpPort ?? DEFAULTS.httpPort]);
  for (const p of s.ports) {
    if (roleOf(s) === 'gateway') {
      if (p.target === undefined || !allowed.has(p.target)) {
        out.push({ id: 'compose', status: 'FAIL', message: `${file}: the gateway publishes ${p.spec}; only HTTPS and HTTP (${[...allowed].join(', ')}) may be (admin and metrics stay inside)`, fix: `remove "${p.spec}" from services.${s.name}.ports` });
      }
    } else if (isLoopback(p.hostIp)) {
      out.push({ id: 'compose', status: prodFail(ctx), message: `${file}: ${s.name} publishes ${p.spec} on the host's loopback (development only)`, fix: `remove services.${s.name}.ports; use "expose" or the internal network` });
    } else {
      out.push({ id: 'compose', status: 'FAIL', message: `${file}: ${s.name} publishes ${p.spec} on every interface: only the gateway may be exposed`, fix: `remove services.${s.name}.ports (use "expose" for other containers)` });
    }
  }
  if (s.networkMode === 'host') {
    out.push({ id: 'compose', status: roleOf(s) === 'gateway' ? 'WARN' : 'FAIL', message: `${file}: ${s.name} uses network_mode: host, so every port it opens is exposed`, fix: `remove services.${s.name}.network_mode` });
  }
}

function serviceSecrets(ctx: DoctorContext, file: string, s: ComposeService, out: CheckResult[]): void {
  for (const e of s.environment) {
    if (SECRET_KEY.test(e.key) && e.raw.trim() !== '' && !FROM_ENV.test(e.raw)) {
      out.push({ id: 'compose', status: 'FAIL', message: `${file}: ${s.name} has ${e.key} typed into the file`, fix: `use ${e.key}: \${<NAME>} and keep the value in .env (npx crm-gateway setup)` });
    }
    // NocoDB's URL form has no way to ask for TLS (NC_DB_JSON with "ssl" does).
    if (e.key === 'NC_DB' && /^pg:\/\//.test(e.value)) {
      out.push({ id: 'postgres-tls', status: prodFail(ctx), message: `${file}: ${s.name}'s NC_DB connects to PostgreSQL without TLS`, fix: 'use NC_DB_JSON with "ssl" (as the shipped docker-compose.yml does)' });
    }
    if (/^postgres(ql)?:\/\//.test(e.value)) {
      const q = e.value.split('?')[1] ?? '';
      const mode = new URLSearchParams(q).get('sslmode') ?? 'disable';
      if (!TLS_MODES.has(mode)) out.push({ id: 'postgres-tls', status: prodFail(ctx), message: `${file}: ${s.name}'s ${e.key} connects to PostgreSQL without TLS (sslmode=${mode})`, fix: 'append ?sslmode=verify-full&sslrootcert=… (or sslmode=require)' });
    }
  }
  for (const name of s.references) {
    const allowed = CONSUMERS.get(name);
    if (allowed && !allowed.some((a) => s.name.includes(a))) {
      out.push({ id: 'secrets-shared', status: 'FAIL', message: `${file}: ${name} is handed to ${s.name}, which should not hold it (only ${allowed.join(', ')})`, fix: `remove \${${name}} from services.${s.name}` });
    }
  }
  for (const f of s.envFiles) {
    if (basename(f) === basename(ctx.envFile.path)) {
      out.push({ id: 'secrets-shared', status: prodFail(ctx), message: `${file}: ${s.name} loads ${f} whole (env_file), so it receives every secret in it`, fix: `list only the variables ${s.name} needs under services.${s.name}.environment` });
    }
  }
}

function serviceHardening(ctx: DoctorContext, file: string, s: ComposeService, out: CheckResult[]): void {
  if (roleOf(s) === 'redis') {
    const VALUE = /--requirepass(?:=|\s+)("[^"]*"|'[^']*'|\S*)/;
    const raw = VALUE.exec(s.rawCommand)?.[1];
    const value = (VALUE.exec(s.command)?.[1] ?? '').replace(/^["']|["']$/g, '');
    if (raw === undefined) out.push({ id: 'redis-password', status: prodFail(ctx), message: `${file}: ${s.name} runs without --requirepass`, fix: 'command: redis-server --appendonly yes --requirepass "${REDIS_PASSWORD}"' });
    else if (!FROM_ENV.test(raw)) out.push({ id: 'redis-password', status: 'FAIL', message: `${file}: ${s.name}'s --requirepass value is typed into the file`, fix: '--requirepass "${REDIS_PASSWORD}"' });
    else if (referencedNames(raw).length > 0 && (value === '' || value.startsWith('--'))) {
      out.push({ id: 'redis-password', status: prodFail(ctx), message: `${file}: ${s.name}'s --requirepass is empty with this .env (REDIS_PASSWORD unset)`, fix: 'npx crm-gateway setup' });
    }
  }
  if (roleOf(s) === 'postgres' && !/\bssl=on\b/.test(s.command)) {
    out.push({ id: 'postgres-tls', status: prodFail(ctx), message: `${file}: ${s.name} does not enable TLS (-c ssl=on)`, fix: 'see the docker-compose.yml shipped with crm-gateway (secrets/postgres.crt from setup)' });
  }
}

/** The stack: only the gateway publishes ports, Redis needs a password, secrets go only where needed. */
export const composeCheck: Check = (ctx) => {
  if (ctx.composeFiles.length === 0) {
    return [{ id: 'compose', status: ctx.production ? 'WARN' : 'PASS', message: 'no compose file here: check by hand that only the gateway is reachable from outside' }];
  }
  const out: CheckResult[] = [];
  let services = 0;
  for (const path of ctx.composeFiles) {
    const file = relative(ctx.cwd, path) || path;
    let parsed: ComposeService[];
    try {
      parsed = parseCompose(readFileSync(path, 'utf8'), ctx.env, file);
    } catch (err) {
      out.push({ id: 'compose', status: 'FAIL', message: err instanceof ComposeError ? err.message : `${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, fix: `docker compose -f ${file} config` });
      continue;
    }
    services += parsed.length;
    for (const s of parsed) {
      servicePorts(ctx, file, s, out);
      serviceSecrets(ctx, file, s, out);
      serviceHardening(ctx, file, s, out);
    }
  }
  return out.length > 0 ? out : [pass('compose', `${ctx.composeFiles.map((f) => relative(ctx.cwd, f)).join(' + ')}: ${services} services, only the gateway publishes ports; Redis has a password; PostgreSQL uses TLS`)];
};
