import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { EncryptStream, openBackupFile } from '../../../src/backup/cipher.js';
import { keyIdOf, type BackupKey } from '../../../src/backup/key.js';
import { HEADER_BYTES, OVERHEAD_BYTES } from '../../../src/backup/format.js';
import { BackupError } from '../../../src/backup/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'crmgw-cipher-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function makeKey(): BackupKey {
  const key = randomBytes(32);
  const id = keyIdOf(key);
  return { key, id, idHex: id.toString('hex'), warnings: [] };
}

async function encryptTo(name: string, plain: Buffer, key: BackupKey, chunk = 7_919): Promise<string> {
  const path = join(dir, name);
  const parts: Buffer[] = [];
  for (let i = 0; i < plain.length; i += chunk) parts.push(plain.subarray(i, i + chunk));
  await pipeline(Readable.from(parts), new EncryptStream(key), createWriteStream(path));
  return path;
}

async function decrypt(path: string, key: BackupKey): Promise<{ plain: Buffer; sha: string | undefined }> {
  const opened = await openBackupFile(path, key);
  const chunks: Buffer[] = [];
  for await (const c of opened.plaintext) chunks.push(c as Buffer);
  return { plain: Buffer.concat(chunks), sha: opened.ciphertextSha256() };
}

async function failure(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    assert.ok(err instanceof BackupError, String(err));
    return err.code;
  }
}

test('round trip, streamed in odd chunk sizes; the file is the plaintext plus 46 bytes; the hash covers the whole file', async () => {
  const key = makeKey();
  for (const size of [0, 1, 15, 16, 17, 65_536, 1_000_003]) {
    const plain = randomBytes(size);
    const path = await encryptTo(`rt-${size}`, plain, key);
    const file = readFileSync(path);
    assert.equal(file.length, size + OVERHEAD_BYTES);
    const { plain: back, sha } = await decrypt(path, key);
    assert.ok(back.equals(plain), `size ${size}`);
    assert.equal(sha, createHash('sha256').update(file).digest('hex'));
  }
});

test('a fresh nonce per file: the same plaintext never gives the same ciphertext', async () => {
  const key = makeKey();
  const plain = Buffer.alloc(4096, 'a');
  const a = readFileSync(await encryptTo('n1', plain, key));
  const b = readFileSync(await encryptTo('n2', plain, key));
  assert.ok(!a.subarray(HEADER_BYTES - 12, HEADER_BYTES).equals(b.subarray(HEADER_BYTES - 12, HEADER_BYTES)));
  assert.ok(!a.subarray(HEADER_BYTES).equals(b.subarray(HEADER_BYTES)));
  assert.ok(!a.includes(Buffer.from('aaaaaaaa')));
});

test('every single flipped bit fails: header (as additional data), ciphertext, tag', async () => {
  const key = makeKey();
  const plain = randomBytes(3000);
  const path = await encryptTo('flip', plain, key);
  const good = readFileSync(path);
  const results = new Map<string, number>();
  // Each byte position of the key id would name another key: that is a key mismatch, reported before decrypting.
  for (const at of [8, 9, 10, 17, 18, 29, 30, 1500, good.length - 17, good.length - 16, good.length - 1]) {
    const bad = Buffer.from(good);
    bad[at] = (bad[at] as number) ^ 0x80;
    writeFileSync(path, bad);
    const code = await failure(decrypt(path, key));
    results.set(code, (results.get(code) ?? 0) + 1);
    assert.notEqual(code, 'ok', `flipping byte ${at}`);
  }
  assert.deepEqual([...results.keys()].sort(), ['BACKUP_FORMAT', 'BACKUP_KEY_MISMATCH', 'BACKUP_TAMPERED']);
});

test('a wrong key is named before any decryption; a truncated file fails the tag', async () => {
  const key = makeKey();
  const path = await encryptTo('wk', randomBytes(5000), key);
  const other = makeKey();
  await assert.rejects(decrypt(path, other), new RegExp(`encrypted with key ${key.idHex}, but the key file holds key ${other.idHex}`));
  // The same key id but other key bytes (a forged header is the only way): the tag catches it.
  const forged: BackupKey = { ...other, id: key.id, idHex: key.idHex };
  assert.equal(await failure(decrypt(path, forged)), 'BACKUP_TAMPERED');
  const good = readFileSync(path);
  writeFileSync(path, good.subarray(0, good.length - 100));
  assert.equal(await failure(decrypt(path, key)), 'BACKUP_TAMPERED');
  writeFileSync(path, good.subarray(0, OVERHEAD_BYTES - 1));
  assert.equal(await failure(decrypt(path, key)), 'BACKUP_TRUNCATED');
  assert.equal(await failure(openBackupFile(join(dir, 'absent'), key)), 'BACKUP_NOT_FOUND');
});
