import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { encodeHeader, parseHeader, HEADER_BYTES, MAGIC, OVERHEAD_BYTES, FORMAT_VERSION, CIPHER_AES_256_GCM, MAX_PLAINTEXT_BYTES } from '../../../src/backup/format.js';
import { BackupError } from '../../../src/backup/errors.js';

const header = () => ({ version: FORMAT_VERSION, cipher: CIPHER_AES_256_GCM, keyId: randomBytes(8), nonce: randomBytes(12) });

test('the header: magic, version, cipher, key id, nonce; 30 bytes, 46 with the tag', () => {
  const h = header();
  const buf = encodeHeader(h);
  assert.equal(buf.length, HEADER_BYTES);
  assert.equal(HEADER_BYTES, 30);
  assert.equal(OVERHEAD_BYTES, 46);
  assert.ok(buf.subarray(0, 8).equals(MAGIC));
  assert.deepEqual(parseHeader(buf, 'f'), h);
});

test('GCM’s per-message limit is enforced below 2^39 − 256 bits', () => {
  assert.equal(MAX_PLAINTEXT_BYTES * 8, 2 ** 39 - 256);
});

test('a header that is not ours, from the future, or cut short is refused by name', () => {
  const buf = encodeHeader(header());
  const code = (b: Buffer): string => {
    try {
      parseHeader(b, 'x.dump.enc');
      return 'ok';
    } catch (err) {
      assert.ok(err instanceof BackupError);
      assert.match(err.message, /x\.dump\.enc/);
      return err.code;
    }
  };
  assert.equal(code(Buffer.from('PGDMP\x01\x0e\x00')), 'BACKUP_FORMAT');
  const v2 = Buffer.from(buf);
  v2[8] = 2;
  assert.equal(code(v2), 'BACKUP_FORMAT');
  const c9 = Buffer.from(buf);
  c9[9] = 9;
  assert.equal(code(c9), 'BACKUP_FORMAT');
  assert.equal(code(buf.subarray(0, 20)), 'BACKUP_TRUNCATED');
  assert.throws(() => encodeHeader({ ...header(), nonce: randomBytes(16) }), /wrong size/);
});
