import { BackupError } from './errors.js';

/**
 * The encrypted file, self-describing and written in one pass:
 *
 *   magic "CRMGWBAK" (8) | version (1) | cipher (1) | key id (8) | nonce (12) | ciphertext … | GCM tag (16)
 *
 * The header is the GCM additional data, so changing any of it (a key id edited to match
 * another key, a swapped nonce) fails authentication like a changed ciphertext byte does.
 * The tag comes last because it only exists once the whole dump has streamed through.
 */
export const MAGIC = Buffer.from('CRMGWBAK', 'ascii');
export const FORMAT_VERSION = 1;
/** Cipher ids, so a later version can move on without guessing. 1 = AES-256-GCM. */
export const CIPHER_AES_256_GCM = 1;
export const KEY_ID_BYTES = 8;
/** 96-bit nonces: GCM's native size (other sizes are hashed into one). */
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
export const HEADER_BYTES = MAGIC.length + 1 + 1 + KEY_ID_BYTES + NONCE_BYTES;
/** Bytes the file has beyond the plaintext. */
export const OVERHEAD_BYTES = HEADER_BYTES + TAG_BYTES;
/**
 * GCM's limit for one message under one nonce: 2^39 - 256 bits (~64 GiB). Past it the counter
 * would wrap and reuse keystream, so a larger dump is refused rather than written.
 */
export const MAX_PLAINTEXT_BYTES = 2 ** 36 - 32;

export interface Header {
  version: number;
  cipher: number;
  keyId: Buffer;
  nonce: Buffer;
}

export function encodeHeader(h: Header): Buffer {
  if (h.keyId.length !== KEY_ID_BYTES || h.nonce.length !== NONCE_BYTES) throw new Error('key id or nonce of the wrong size');
  return Buffer.concat([MAGIC, Buffer.from([h.version, h.cipher]), h.keyId, h.nonce]);
}

/** Parses and checks a header; `file` names the file in errors. */
export function parseHeader(buf: Buffer, file: string): Header {
  if (buf.length < MAGIC.length || !buf.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new BackupError('BACKUP_FORMAT', `${file} is not a crm-gateway backup (no CRMGWBAK header)`);
  }
  if (buf.length < HEADER_BYTES) throw new BackupError('BACKUP_TRUNCATED', `${file} is truncated: ${buf.length} bytes, shorter than the ${HEADER_BYTES}-byte header`);
  const version = buf[MAGIC.length] as number;
  const cipher = buf[MAGIC.length + 1] as number;
  if (version !== FORMAT_VERSION) throw new BackupError('BACKUP_FORMAT', `${file} has format version ${version}; this build reads version ${FORMAT_VERSION}`);
  if (cipher !== CIPHER_AES_256_GCM) throw new BackupError('BACKUP_FORMAT', `${file} uses cipher id ${cipher}; this build knows only ${CIPHER_AES_256_GCM} (AES-256-GCM)`);
  const at = MAGIC.length + 2;
  return { version, cipher, keyId: Buffer.from(buf.subarray(at, at + KEY_ID_BYTES)), nonce: Buffer.from(buf.subarray(at + KEY_ID_BYTES, HEADER_BYTES)) };
}
