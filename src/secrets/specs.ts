import { randomBytes } from 'node:crypto';
import { DEFAULTS } from '../config/schema.js';

/**
 * The secrets `setup` makes, with the strengths of the security architecture. `services` are
 * the compose services allowed to receive each one: a secret handed to any other service is
 * shared where it should not be.
 */
export type SecretEncoding = 'hex' | 'base64' | 'alphanumeric';

export interface SecretSpec {
  readonly name: string;
  /** Random bytes drawn. */
  readonly bytes: number;
  readonly encoding: SecretEncoding;
  /** Shortest value accepted from an operator (characters). */
  readonly minChars: number;
  readonly description: string;
  readonly services: readonly string[];
}

/** Length of a generated database password: 24 bytes of base64 is 32 characters. */
export const DB_PASSWORD_CHARS = 32;

export const SECRET_SPECS: readonly SecretSpec[] = [
  {
    name: 'CRM_DB_PASSWORD',
    bytes: 24,
    encoding: 'alphanumeric',
    // Operators who made theirs with `openssl rand -base64 24 | tr -d '=+/'` get 30-32 characters.
    minChars: 24,
    description: 'PostgreSQL password of the CRM database user',
    services: ['postgres', 'crm-api', 'nocodb', 'backup'],
  },
  { name: 'CRM_API_SECRET', bytes: 32, encoding: 'hex', minChars: 64, description: 'CRM API signing secret', services: ['crm-api'] },
  { name: 'API_SECRET_KEY', bytes: 32, encoding: 'hex', minChars: 64, description: "gateway JWT signing key (current key of the ring)", services: ['gateway'] },
  { name: 'NOCODB_JWT_SECRET', bytes: 32, encoding: 'base64', minChars: 43, description: 'NocoDB JWT secret', services: ['nocodb'] },
  { name: 'WHATSAPP_VERIFY_TOKEN', bytes: 16, encoding: 'hex', minChars: 32, description: 'WhatsApp webhook verification token', services: ['gateway'] },
  { name: 'REDIS_PASSWORD', bytes: 32, encoding: 'hex', minChars: 64, description: 'Redis password (--requirepass)', services: ['redis', 'gateway', 'crm-api'] },
  { name: 'LOG_HASH_KEY', bytes: 32, encoding: 'hex', minChars: 64, description: 'key of the keyed hash of phone numbers and ids in logs', services: ['gateway'] },
  { name: 'WHATSAPP_QUEUE_KEY', bytes: 32, encoding: 'hex', minChars: 64, description: "AES-256-GCM key of the webhook's queued payloads", services: ['gateway'] },
];

/** Secrets made elsewhere (Meta issues the app secret): checked, never generated. */
export const EXTERNAL_SECRETS: readonly Pick<SecretSpec, 'name' | 'minChars' | 'description' | 'services'>[] = [
  { name: 'WHATSAPP_APP_SECRET', minChars: 32, description: "WhatsApp app secret from Meta's app dashboard", services: ['gateway'] },
];

/** Names that hold secret material, for the "shared" and "hard-coded" checks. */
export const ALL_SECRET_NAMES: readonly string[] = [...SECRET_SPECS.map((s) => s.name), ...EXTERNAL_SECRETS.map((s) => s.name), 'API_SECRET_KEY_PREVIOUS', 'WHATSAPP_APP_SECRET_PREVIOUS'];

/** Backup encryption key: 32 random bytes, hex, in its own file (never in `.env`). */
export const BACKUP_KEY_BYTES = 32;
export const DEFAULT_BACKUP_KEY_FILE: string = DEFAULTS.backupKeyFile;

export function secretSpec(name: string): SecretSpec | undefined {
  return SECRET_SPECS.find((s) => s.name === name);
}

/** base64 of 24 bytes without `+`, `/` and `=`, topped up to a fixed length from more random bytes. */
function alphanumeric(bytes: number, length: number): string {
  let out = randomBytes(bytes).toString('base64').replace(/[^A-Za-z0-9]/g, '');
  // Dropping `+` and `/` shortens the value now and then; topping it up keeps the length (and
  // so the strength, ~190 bits) fixed instead of occasionally a few characters short.
  while (out.length < length) out += randomBytes(bytes).toString('base64').replace(/[^A-Za-z0-9]/g, '');
  return out.slice(0, length);
}

/** A fresh value for a spec, from the operating system's CSPRNG. */
export function generateSecret(spec: SecretSpec): string {
  switch (spec.encoding) {
    case 'hex':
      return randomBytes(spec.bytes).toString('hex');
    case 'base64':
      return randomBytes(spec.bytes).toString('base64');
    case 'alphanumeric':
      return alphanumeric(spec.bytes, DB_PASSWORD_CHARS);
  }
}
