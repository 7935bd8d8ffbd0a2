import { ALL_SECRET_NAMES, SECRET_SPECS } from '../../secrets/specs.js';
import { assessSecret } from '../../secrets/strength.js';
import { parsePreviousKeys } from '../../secrets/keyring.js';
import { SECRET_MAX_AGE_DAYS } from '../../secrets/rotate.js';
import { findingResults, policyFindings } from './policy.js';
import { pass, prodFail, type Check, type CheckResult, type DoctorContext } from '../types.js';

const DAY_MS = 86_400_000;
/** Shortest password accepted inside REDIS_URL / DATABASE_URL. */
const MIN_URL_PASSWORD_CHARS = 16;
/** The previous webhook secret is only needed while Meta switches over. */
const WHATSAPP_PREVIOUS_MAX_DAYS = 7;

function urlPassword(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    return decodeURIComponent(new URL(url).password) || undefined;
  } catch {
    return undefined;
  }
}

/** Names whose problem the startup policy already reports (it knows which routes need them). */
function coveredByPolicy(ctx: DoctorContext): Set<string> {
  const names = new Set<string>();
  for (const f of policyFindings(ctx)) {
    if (f.id !== 'secret-missing' && f.id !== 'secret-weak') continue;
    const name = /^([A-Z0-9_]+) /.exec(f.message)?.[1];
    if (name) names.add(name);
  }
  return names;
}

/** Default, placeholder, short or predictable secrets (the pre-deployment checklist's first item). */
export const secretStrengthCheck: Check = (ctx) => {
  const out: CheckResult[] = findingResults(ctx, ['secret-missing', 'secret-weak'], 'secret-strength');
  const covered = coveredByPolicy(ctx);
  for (const spec of SECRET_SPECS) {
    if (covered.has(spec.name)) continue;
    const value = ctx.env[spec.name];
    const problem = assessSecret(spec.name, value, spec);
    if (!problem) continue;
    const missing = !value;
    out.push({
      id: 'secret-strength',
      status: missing ? prodFail(ctx) : problem.level === 'fail' ? 'FAIL' : 'WARN',
      message: `${problem.message} (${spec.description})`,
      fix: missing ? 'npx crm-gateway setup production' : `npx crm-gateway secrets generate ${spec.name}`,
    });
  }
  for (const name of ['REDIS_URL', 'DATABASE_URL']) {
    const pw = urlPassword(ctx.env[name]);
    const problem = pw === undefined ? undefined : assessSecret(`the password in ${name}`, pw, { minChars: MIN_URL_PASSWORD_CHARS });
    if (problem) out.push({ id: 'secret-strength', status: 'FAIL', message: problem.message, fix: `use the generated password (REDIS_PASSWORD / CRM_DB_PASSWORD) in ${name}` });
  }
  if (out.length === 0) out.push(pass('secret-strength', `${SECRET_SPECS.length} generated secrets set, none default, short or predictable`));
  return out;
};

/** One value serving two purposes: a leak of one service's secret opens the other. */
export const secretsSharedCheck: Check = (ctx) => {
  const byValue = new Map<string, string[]>();
  for (const name of ALL_SECRET_NAMES) {
    const raw = ctx.env[name];
    if (!raw) continue;
    const values = name === 'API_SECRET_KEY_PREVIOUS' ? safePrevious(raw) : [raw];
    for (const v of values) byValue.set(v, [...(byValue.get(v) ?? []), name]);
  }
  const out: CheckResult[] = [];
  for (const names of byValue.values()) {
    const distinct = [...new Set(names)];
    if (distinct.length > 1) out.push({ id: 'secrets-shared', status: 'FAIL', message: `${distinct.join(' and ')} hold the same value`, fix: `npx crm-gateway secrets generate ${distinct.filter((n) => SECRET_SPECS.some((s) => s.name === n)).slice(1).join(' ') || '<NAME>'}` });
  }
  return out.length > 0 ? out : [pass('secrets-shared', 'every secret is distinct')];
};

function safePrevious(text: string): string[] {
  try {
    return parsePreviousKeys(text).map((k) => k.secret);
  } catch {
    return [];
  }
}

/** Maintenance: rotate every 90 days. Ages come from the `# created:` lines setup writes. */
export const secretsAgeCheck: Check = (ctx) => {
  const doc = ctx.envFile.doc;
  if (!doc) return [];
  const out: CheckResult[] = [];
  const unknown: string[] = [];
  for (const spec of SECRET_SPECS) {
    if (!doc.get(spec.name)) continue;
    const created = doc.createdAt(spec.name);
    if (!created) {
      unknown.push(spec.name);
      continue;
    }
    const days = Math.floor((ctx.now.getTime() - created.getTime()) / DAY_MS);
    if (days > SECRET_MAX_AGE_DAYS) {
      out.push({ id: 'secrets-age', status: 'WARN', message: `${spec.name} is ${days} days old (rotate every ${SECRET_MAX_AGE_DAYS})`, fix: spec.name === 'API_SECRET_KEY' ? 'npx crm-gateway secrets rotate-jwt' : 'npx crm-gateway secrets rotate (prints the steps)' });
    }
  }
  if (unknown.length > 0) out.push({ id: 'secrets-age', status: 'WARN', message: `age unknown (no "# created:" line): ${unknown.join(', ')}`, fix: 'rotate them (npx crm-gateway secrets rotate) so their date is recorded' });
  const prevCreated = doc.get('WHATSAPP_APP_SECRET_PREVIOUS') ? doc.createdAt('WHATSAPP_APP_SECRET_PREVIOUS') : undefined;
  if (prevCreated && ctx.now.getTime() - prevCreated.getTime() > WHATSAPP_PREVIOUS_MAX_DAYS * DAY_MS) {
    out.push({ id: 'secrets-age', status: 'WARN', message: `WHATSAPP_APP_SECRET_PREVIOUS is still accepted ${Math.floor((ctx.now.getTime() - prevCreated.getTime()) / DAY_MS)} days after the rotation`, fix: 'npx crm-gateway secrets rotate --drop-whatsapp-previous --skip-jwt' });
  }
  return out.length > 0 ? out : [pass('secrets-age', `every generated secret is younger than ${SECRET_MAX_AGE_DAYS} days`)];
};

/** API_SECRET_KEY_PREVIOUS parses (the verifier refuses a malformed ring) and holds no retired keys. */
export const jwtKeyRingCheck: Check = (ctx) => {
  const text = ctx.env.API_SECRET_KEY_PREVIOUS;
  if (!text) return [pass('jwt-key-ring', 'no previous JWT keys')];
  try {
    const keys = parsePreviousKeys(text);
    const retired = keys.filter((k) => k.retireAfter.getTime() <= ctx.now.getTime()).length;
    const weak = keys.map((k, i) => (assessSecret(`previous JWT key ${i + 1}`, k.secret, { minChars: 32 }) ? i + 1 : 0)).filter((i) => i > 0);
    if (weak.length > 0) return [{ id: 'jwt-key-ring', status: 'FAIL', message: `API_SECRET_KEY_PREVIOUS entries ${weak.join(', ')} are weak keys that still verify tokens`, fix: 'npx crm-gateway secrets rotate-jwt --no-grace' }];
    if (retired > 0) return [{ id: 'jwt-key-ring', status: 'WARN', message: `${retired} retired key(s) still listed in API_SECRET_KEY_PREVIOUS`, fix: 'npx crm-gateway secrets rotate-jwt (drops retired keys)' }];
    return [pass('jwt-key-ring', `${keys.length} previous key(s), retiring by ${new Date(Math.max(...keys.map((k) => k.retireAfter.getTime()))).toISOString()}`)];
  } catch (err) {
    return [{ id: 'jwt-key-ring', status: 'FAIL', message: (err as Error).message, fix: 'correct or empty API_SECRET_KEY_PREVIOUS in .env' }];
  }
};
