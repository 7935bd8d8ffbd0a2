import type { SecretSpec } from './specs.js';

/**
 * Values that ship in examples, tutorials and images, normalized (lower case, letters and
 * digits only). A secret equal to one of them is as good as public.
 */
const KNOWN_DEFAULTS = new Set([
  'password', 'passw0rd', 'pass', 'changeme', 'changethis', 'changeit', 'secret', 'mysecret', 'supersecret', 'secretkey',
  'admin', 'administrator', 'root', 'postgres', 'redis', 'nocodb', 'metabase', 'crm', 'crmuser', 'crmpassword', 'test',
  'testing', 'default', 'example', 'letmein', 'qwerty', '123456', '12345678', '123456789', '1234567890', 'token',
  'verifytoken', 'apikey', 'jwtsecret', 'xxx', 'todo', 'none', 'null',
]);
/** Placeholders an operator forgot to replace: `your_secret_here`, `<change me>`, `CHANGE_ME_...`. */
// Separators are required around the words: generated hex, base64 and alphanumeric values have none.
const PLACEHOLDER = /^<.*>$|^(your|my|change|replace|insert|put|enter|fill)[_ .-]|[_ .-](here|me|placeholder)$|^(changeme|change_me|x{3,})/i;
/** Fewer distinct characters than this cannot hold the entropy the architecture asks. */
const MIN_DISTINCT_CHARS = 8;

/**
 * Why a value of the right length still holds little entropy, or undefined: too few distinct
 * characters, or one short pattern repeated (`0123456789abcdef` four times has 16 distinct
 * characters and 64 hex digits, and about 64 bits at most). Random values of the architecture's
 * strengths are never flagged (a period under half the length: odds below 16^-32).
 */
export function predictability(value: string): string | undefined {
  const distinct = new Set(value).size;
  if (distinct < MIN_DISTINCT_CHARS) return `only ${distinct} distinct characters`;
  for (let period = 1; period <= value.length / 2; period++) {
    if (value.length % period === 0 && value.slice(0, period).repeat(value.length / period) === value) return `a ${period}-character pattern repeated`;
  }
  return undefined;
}

export interface SecretProblem {
  /** `fail`: unusable (default, too short, predictable); `warn`: works, but not as specified. */
  level: 'fail' | 'warn';
  message: string;
}

/** What is wrong with a secret's value, or undefined when it is fine. Never echoes the value. */
export function assessSecret(name: string, value: string | undefined, spec?: Pick<SecretSpec, 'minChars'> & Partial<Pick<SecretSpec, 'encoding' | 'bytes'>>): SecretProblem | undefined {
  if (value === undefined || value === '') return { level: 'fail', message: `${name} is not set` };
  const normalized = value.toLowerCase().replace(/[^a-z0-9]/g, '');
  if (KNOWN_DEFAULTS.has(normalized) || PLACEHOLDER.test(value)) return { level: 'fail', message: `${name} is a default or placeholder value` };
  const weak = predictability(value);
  if (weak) return { level: 'fail', message: `${name} is predictable (${weak})` };
  if (spec && value.length < spec.minChars) return { level: 'fail', message: `${name} is too short (${value.length} characters; at least ${spec.minChars})` };
  if (spec?.encoding === 'hex' && !/^[0-9a-fA-F]+$/.test(value)) return { level: 'warn', message: `${name} is not hex (the architecture asks ${spec.bytes ?? '?'} random bytes as hex)` };
  if (spec?.encoding === 'alphanumeric' && !/^[A-Za-z0-9]+$/.test(value)) return { level: 'warn', message: `${name} has characters other than letters and digits (they break connection URLs)` };
  if (spec?.encoding === 'base64' && !/^[A-Za-z0-9+/]+={0,2}$/.test(value)) return { level: 'warn', message: `${name} is not base64` };
  return undefined;
}
