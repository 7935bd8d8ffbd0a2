import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canonicalJson, manifestPathFor, readManifest, writeManifest, type ManifestBody } from '../../../src/backup/manifest.js';
import { keyIdOf, type BackupKey } from '../../../src/backup/key.js';

const dir = mkdtempSync(join(tmpdir(), 'crmgw-manifest-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function makeKey(): BackupKey {
  const key = randomBytes(32);
  const id = keyIdOf(key);
  return { key, id, idHex: id.toString('hex'), warnings: [] };
}

function body(key: BackupKey): ManifestBody {
  const sha = 'ab'.repeat(32);
  return {
    format: 'crm-gateway-backup',
    formatVersion: 1,
    file: 'crm-20250131T020000Z.dump.enc',
    database: 'crm_autonomo',
    serverVersion: '16.4',
    pgDumpVersion: 'pg_dump (PostgreSQL) 16.4',
    createdAt: '2025-01-31T02:00:00.000Z',
    finishedAt: '2025-01-31T02:00:05.000Z',
    durationMs: 5000,
    keyId: key.idHex,
    cipher: 'aes-256-gcm',
    plaintext: { bytes: 100, sha256: sha },
    ciphertext: { bytes: 146, sha256: sha },
    tables: [{ schema: 'public', name: 'contactos', rows: 3 }],
    verified: true,
    verifiedAt: '2025-01-31T02:00:06.000Z',
    verifyError: null,
    remote: null,
  };
}

test('manifestPathFor: <name>.dump.enc → <name>.manifest.json', () => {
  assert.equal(manifestPathFor('/b/crm-20250131T020000Z.dump.enc'), '/b/crm-20250131T020000Z.manifest.json');
  assert.equal(manifestPathFor('/b/other.bin'), '/b/other.bin.manifest.json');
});

test('canonical JSON does not depend on key order', () => {
  assert.equal(canonicalJson({ b: 1, a: { d: [1, { y: 2, x: 1 }], c: null } }), canonicalJson({ a: { c: null, d: [1, { x: 1, y: 2 }] }, b: 1 }));
  assert.equal(canonicalJson({ b: 1, a: 2 }), '{"a":2,"b":1}');
});

test('a manifest round-trips with its MAC (mode 0600) and keeps doctor’s fields', () => {
  const key = makeKey();
  const path = join(dir, 'ok.manifest.json');
  writeManifest(path, body(key), key);
  assert.equal(statSync(path).mode & 0o777, 0o600);
  const m = readManifest(path, key);
  assert.equal(m.verified, true);
  assert.match(m.mac, /^[0-9a-f]{64}$/);
  const raw = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  assert.equal(raw.verified, true);
  assert.equal(typeof raw.verifiedAt, 'string');
  // Reordering keys (another tool rewrote it) is not an edit.
  const reordered = Object.fromEntries(Object.entries(raw).reverse());
  writeFileSync(path, JSON.stringify(reordered));
  assert.equal(readManifest(path, key).database, 'crm_autonomo');
});

test('edited, malformed, missing, or another key’s manifest', () => {
  const key = makeKey();
  const path = join(dir, 'edit.manifest.json');
  writeManifest(path, body(key), key);
  const raw = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  writeFileSync(path, JSON.stringify({ ...raw, verified: false }));
  assert.throws(() => readManifest(path, key), /BACKUP_MANIFEST_INVALID|was edited/);
  // Without the key (doctor, metrics) only the shape is checked.
  assert.equal(readManifest(path).verified, false);
  writeFileSync(path, JSON.stringify({ ...raw, extra: 1 }));
  assert.throws(() => readManifest(path), /malformed/);
  writeFileSync(path, JSON.stringify({ ...raw, plaintext: { bytes: -1, sha256: 'x' } }));
  assert.throws(() => readManifest(path), /malformed \(plaintext\./);
  assert.throws(() => readManifest(join(dir, 'none.manifest.json'), key), (err: Error & { code?: string }) => err.code === 'BACKUP_MANIFEST_MISSING');
  writeManifest(path, body(key), key);
  const other = makeKey();
  assert.throws(() => readManifest(path, other), (err: Error & { code?: string }) => err.code === 'BACKUP_KEY_MISMATCH');
});
