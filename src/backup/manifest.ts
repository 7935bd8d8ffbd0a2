import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../secrets/index.js';
import { BackupError } from './errors.js';
import type { BackupKey } from './key.js';

/**
 * `<name>.manifest.json` beside `<name>.dump.enc`: what the backup holds and whether it was
 * verified. doctor reads `verified` and `verifiedAt` / `finishedAt` / `createdAt` without the
 * key; the backup commands also check `mac`, an HMAC under a key derived from the backup key,
 * so an edited manifest (row counts, checksums, `verified`) is caught before it is relied on.
 */
export const DATA_SUFFIX = '.dump.enc';
export const MANIFEST_SUFFIX = '.manifest.json';
export const PARTIAL_SUFFIX = '.partial';
const MANIFEST_FORMAT = 'crm-gateway-backup';
const MAC_INFO = 'crm-gateway backup manifest v1';

const digest = z.strictObject({ bytes: z.number().int().min(0), sha256: z.string().regex(/^[0-9a-f]{64}$/) });
const isoTime = z.iso.datetime();

export const tableCountSchema = z.strictObject({ schema: z.string(), name: z.string(), rows: z.number().int().min(0) });
export type TableCount = z.output<typeof tableCountSchema>;

export const manifestSchema = z.strictObject({
  format: z.literal(MANIFEST_FORMAT),
  formatVersion: z.literal(1),
  file: z.string().min(1),
  database: z.string(),
  serverVersion: z.string(),
  pgDumpVersion: z.string(),
  createdAt: isoTime,
  finishedAt: isoTime,
  durationMs: z.number().int().min(0),
  keyId: z.string().regex(/^[0-9a-f]{16}$/),
  cipher: z.literal('aes-256-gcm'),
  plaintext: digest,
  ciphertext: digest,
  /** Every table and its row count, counted in the snapshot the dump was taken from. */
  tables: z.array(tableCountSchema),
  verified: z.boolean(),
  verifiedAt: isoTime.nullable(),
  verifyError: z.string().nullable(),
  remote: z.strictObject({ bucket: z.string(), key: z.string(), uploadedAt: isoTime }).nullable(),
  mac: z.string().regex(/^[0-9a-f]{64}$/),
});
export type Manifest = z.output<typeof manifestSchema>;
export type ManifestBody = Omit<Manifest, 'mac'>;

/** `x/crm-20250131T020000Z.dump.enc` → `x/crm-20250131T020000Z.manifest.json`. */
export function manifestPathFor(dataPath: string): string {
  const name = basename(dataPath);
  const base = name.endsWith(DATA_SUFFIX) ? name.slice(0, -DATA_SUFFIX.length) : name;
  return join(dirname(dataPath), `${base}${MANIFEST_SUFFIX}`);
}

/** JSON with keys sorted at every level: the bytes the MAC covers do not depend on key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function macKey(key: BackupKey): Buffer {
  return Buffer.from(hkdfSync('sha256', key.key, Buffer.alloc(0), MAC_INFO, 32));
}

export function manifestMac(body: ManifestBody, key: BackupKey): string {
  return createHmac('sha256', macKey(key)).update(canonicalJson(body)).digest('hex');
}

/** The manifest without its MAC: what is changed and signed again. */
export function manifestBody(m: Manifest): ManifestBody {
  const body: Partial<Manifest> = { ...m };
  delete body.mac;
  return body as ManifestBody;
}

/** Writes the manifest (mode 0600, atomically: a reader never sees half of one). */
export function writeManifest(path: string, body: ManifestBody, key: BackupKey): Manifest {
  const manifest: Manifest = { ...body, mac: manifestMac(body, key) };
  writeFileAtomic(path, `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

/** Reads and checks a manifest: its shape always; with `key`, that it was made with that key and is unedited. */
export function readManifest(path: string, key?: BackupKey): Manifest {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new BackupError('BACKUP_MANIFEST_MISSING', code === 'ENOENT' ? `the manifest ${path} is missing: without it the backup cannot be checked (restore it, e.g. from the remote copy)` : `cannot read the manifest ${path} (${code ?? String(err)})`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new BackupError('BACKUP_MANIFEST_INVALID', `the manifest ${path} is not JSON`);
  }
  const result = manifestSchema.safeParse(parsed);
  if (!result.success) {
    const first = result.error.issues[0];
    throw new BackupError('BACKUP_MANIFEST_INVALID', `the manifest ${path} is malformed (${first ? `${first.path.join('.') || '(root)'}: ${first.message}` : 'invalid'})`);
  }
  const manifest = result.data;
  if (key) {
    if (manifest.keyId !== key.idHex) throw new BackupError('BACKUP_KEY_MISMATCH', `the manifest ${path} belongs to key ${manifest.keyId}, but the key file holds key ${key.idHex}: use the key that made it (BACKUP_KEY_FILE)`);
    const { mac, ...body } = manifest;
    const expected = Buffer.from(manifestMac(body, key), 'hex');
    if (!timingSafeEqual(expected, Buffer.from(mac, 'hex'))) throw new BackupError('BACKUP_MANIFEST_INVALID', `the manifest ${path} was edited: its authentication code does not match`);
  }
  return manifest;
}
