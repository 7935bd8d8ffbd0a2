import { chmodSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join, resolve } from 'node:path';
import { DEFAULTS } from '../config/schema.js';
import { parseDotenv, type DotenvDocument } from './dotenv.js';
import { fileMode, PRIVATE_FILE_MODE, readDotenvFile, writeDotenvFile } from './files.js';
import { DEFAULT_BACKUP_KEY_FILE, generateSecret, SECRET_SPECS, type SecretSpec } from './specs.js';
import { assessSecret } from './strength.js';
import { formatPreviousKeys, rotateRing } from './keyring.js';
import { backupKeyProblem, ensureBackupKey, type BackupKeyState } from './backup-key.js';
import { ensureInternalCertificate, POSTGRES_CERT_FILE, POSTGRES_KEY_FILE, type InternalCertificateState } from './internal-cert.js';
import { ASSERTION_KEY_FILE_NAME, ensureKeyFile } from '../auth/assertion/keys.js';

export type SetupMode = 'development' | 'production';

export interface SetupOptions {
  /** Folder relative paths are resolved against (the deployment's folder). */
  cwd: string;
  /** Set GATEWAY_ENV; when absent an existing file keeps its own (a new one gets development). */
  mode?: SetupMode | undefined;
  /** Replace every generated secret, keeping the JWT key being replaced in the key ring. */
  rotate?: boolean;
  /** Only these generated secrets (names from SECRET_SPECS) are replaced; implies rotate for them. */
  only?: readonly string[];
  envFile?: string;
  template?: string;
  /** Longest token lifetime: how long the replaced JWT key keeps verifying. */
  maxTokenTtlMs: number;
  now?: Date;
}

export interface SetupResult {
  envFile: string;
  created: boolean;
  /** The earlier file's copy, when the file changed. */
  backup: string | undefined;
  changed: boolean;
  /** The file was readable by others and has been set to 0600. */
  modeTightened: boolean;
  generated: string[];
  kept: string[];
  warnings: string[];
  backupKey: BackupKeyState;
  postgresCertificate: InternalCertificateState;
  /** The identity assertion's ES256 key file (GATEWAY_ASSERTION_KEY_FILE, else in DATA_DIR): made here, else at the gateway's first start. */
  assertionKey: { path: string; created: boolean; kid: string };
  /** Runtime folders made (logs 0750, data and backups 0700): compose bind-mounts them. */
  createdDirs: string[];
}

/**
 * Folders the gateway writes to, made by the operator's user before compose can make them as
 * root. Existing folders are left as they are.
 */
function ensureRuntimeDirs(cwd: string, doc: DotenvDocument): string[] {
  const dirs: [string, number][] = [
    [doc.get('LOG_DIR') || DEFAULTS.logDir, 0o750],
    [doc.get('DATA_DIR') || DEFAULTS.dataDir, 0o700],
    [doc.get('BACKUP_DIR') || DEFAULTS.backupDir, 0o700],
  ];
  const made: string[] = [];
  for (const [dir, mode] of dirs) {
    const path = resolve(cwd, dir);
    if (existsSync(path)) continue;
    mkdirSync(path, { recursive: true, mode });
    made.push(path);
  }
  return made;
}

/** The template shipped with the package, used when the deployment's folder has none. */
export function packagedTemplate(): string {
  return fileURLToPath(new URL('../../.env.example', import.meta.url));
}

function readTemplate(path: string): DotenvDocument {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`cannot read the template ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  return parseDotenv(text, path);
}

function stamp(doc: DotenvDocument, spec: SecretSpec, value: string, now: Date, template: DotenvDocument): void {
  doc.set(spec.name, value, template.has(spec.name) ? [] : [`# ${spec.description}`]);
  doc.setCreatedAt(spec.name, now);
}

/**
 * Writes `.env` from the template with fresh secrets of the architecture's strengths. An
 * existing file is parsed first (malformed: nothing is written), its values are kept unless
 * rotating, keys the template added since are appended, and it is backed up (0600) before any
 * change. Re-running without changes leaves the file untouched. The backup key goes to its
 * own file, never into `.env`.
 */
export async function runSetup(opts: SetupOptions): Promise<SetupResult> {
  const now = opts.now ?? new Date();
  const envFile = resolve(opts.cwd, opts.envFile ?? '.env');
  const localTemplate = resolve(opts.cwd, '.env.example');
  const templatePath = opts.template ? resolve(opts.cwd, opts.template) : existsSync(localTemplate) ? localTemplate : packagedTemplate();
  const template = readTemplate(templatePath);
  for (const name of opts.only ?? []) if (!SECRET_SPECS.some((s) => s.name === name)) throw new Error(`${name} is not a secret setup generates (one of ${SECRET_SPECS.map((s) => s.name).join(', ')})`);

  const existed = existsSync(envFile);
  if (existed && !statSync(envFile).isFile()) throw new Error(`${envFile} is not a regular file`);
  const before = existed ? readDotenvFile(envFile) : undefined;
  const doc = before ? before.clone() : template.clone();
  if (before) for (const key of template.keys()) if (!doc.has(key)) doc.copyFrom(template, key);
  if (opts.mode) doc.set('GATEWAY_ENV', opts.mode);
  else if (!before) doc.set('GATEWAY_ENV', 'development');
  // A new production file starts with backups on; an existing file keeps the operator's choice.
  if (!before && opts.mode === 'production' && doc.has('BACKUP_ENABLED')) doc.set('BACKUP_ENABLED', 'true');

  const generated: string[] = [];
  const kept: string[] = [];
  const warnings: string[] = [];
  for (const spec of SECRET_SPECS) {
    const current = doc.get(spec.name) ?? '';
    const replace = opts.only ? opts.only.includes(spec.name) : opts.rotate === true;
    if (current !== '' && !replace) {
      kept.push(spec.name);
      const problem = assessSecret(spec.name, current, spec);
      if (problem) warnings.push(`kept ${problem.message}: replace it with --rotate (or \`secrets generate ${spec.name}\`)`);
      continue;
    }
    const value = generateSecret(spec);
    if (spec.name === 'API_SECRET_KEY' && current !== '') {
      // The key being replaced keeps verifying the tokens it signed until they expire.
      const ring = rotateRing(current, doc.get('API_SECRET_KEY_PREVIOUS'), value, { now, maxTokenTtlMs: opts.maxTokenTtlMs });
      doc.set('API_SECRET_KEY_PREVIOUS', formatPreviousKeys(ring.previous));
    }
    stamp(doc, spec, value, now, template);
    generated.push(spec.name);
  }
  if (!doc.has('WHATSAPP_APP_SECRET') || doc.get('WHATSAPP_APP_SECRET') === '') {
    warnings.push("WHATSAPP_APP_SECRET is empty: copy it from Meta's app dashboard (never generated) before enabling the webhook");
  }

  // Refuse before writing anything when the files setup never replaces are unusable.
  const backupKeyPath = resolve(opts.cwd, doc.get('BACKUP_KEY_FILE') || DEFAULT_BACKUP_KEY_FILE);
  if (existsSync(backupKeyPath)) {
    const problem = backupKeyProblem(readFileSync(backupKeyPath, 'utf8'));
    if (problem) throw new Error(`backup key ${backupKeyPath} ${problem}; it is left as is (backups made with it need it): move it away and run setup again`);
  }
  const pgCert = resolve(opts.cwd, POSTGRES_CERT_FILE);
  const pgKey = resolve(opts.cwd, POSTGRES_KEY_FILE);
  if (existsSync(pgCert) !== existsSync(pgKey)) throw new Error(`${pgCert} and ${pgKey} must both exist or both be absent`);

  const text = doc.toString();
  const changed = !existed || readFileSync(envFile, 'utf8') !== text;
  const modeTightened = existed && (fileMode(envFile) & 0o077) !== 0;
  let backup: string | undefined;
  // A new file replaces the old one with mode 0600; an unchanged one only has its mode fixed.
  if (changed) backup = writeDotenvFile(envFile, doc, now);
  else if (modeTightened) chmodSync(envFile, PRIVATE_FILE_MODE);

  const createdDirs = ensureRuntimeDirs(opts.cwd, doc);
  const backupKey = ensureBackupKey(backupKeyPath);
  const postgresCertificate = await ensureInternalCertificate(pgCert, pgKey);
  const assertionKeyPath = resolve(opts.cwd, doc.get('GATEWAY_ASSERTION_KEY_FILE') || join(doc.get('DATA_DIR') || DEFAULTS.dataDir, ASSERTION_KEY_FILE_NAME));
  const assertionKeys = ensureKeyFile(assertionKeyPath);
  const assertionKey = { path: assertionKeyPath, created: assertionKeys.created, kid: assertionKeys.keys.at(-1)?.kid ?? '' };
  return { envFile, created: !existed, backup, changed, modeTightened, generated, kept, warnings, backupKey, postgresCertificate, assertionKey, createdDirs };
}
