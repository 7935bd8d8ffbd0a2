import { createCipheriv, createDecipheriv, createHash, randomBytes, type CipherGCM, type DecipherGCM, type Hash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { BackupError } from './errors.js';
import { CIPHER_AES_256_GCM, encodeHeader, FORMAT_VERSION, HEADER_BYTES, MAX_PLAINTEXT_BYTES, NONCE_BYTES, OVERHEAD_BYTES, parseHeader, TAG_BYTES, type Header } from './format.js';
import { BlockDigests, changedSinceVerified, type Fingerprint } from './fingerprint.js';
import type { BackupKey } from './key.js';

const ALGORITHM = 'aes-256-gcm';

/**
 * Plaintext in, the whole encrypted file out: header first, then ciphertext as it comes, then
 * the tag. A fresh random nonce for every file (random 96-bit nonces stay safe for far more
 * files than a daily backup will ever make under one key).
 */
export class EncryptStream extends Transform {
  private readonly cipher: CipherGCM;
  private readonly header: Buffer;
  private started = false;
  plaintextBytes = 0;

  constructor(key: BackupKey) {
    super();
    this.header = encodeHeader({ version: FORMAT_VERSION, cipher: CIPHER_AES_256_GCM, keyId: key.id, nonce: randomBytes(NONCE_BYTES) });
    this.cipher = createCipheriv(ALGORITHM, key.key, this.header.subarray(HEADER_BYTES - NONCE_BYTES), { authTagLength: TAG_BYTES });
    this.cipher.setAAD(this.header);
  }

  private start(): void {
    if (this.started) return;
    this.started = true;
    this.push(this.header);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.start();
    this.plaintextBytes += chunk.length;
    if (this.plaintextBytes > MAX_PLAINTEXT_BYTES) {
      done(new BackupError('BACKUP_TOO_LARGE', `the dump passed ${MAX_PLAINTEXT_BYTES} bytes, the most one AES-GCM file may hold`));
      return;
    }
    done(null, this.cipher.update(chunk));
  }

  override _flush(done: TransformCallback): void {
    this.start();
    this.push(this.cipher.final());
    done(null, this.cipher.getAuthTag());
  }
}

/**
 * Ciphertext in, plaintext out; `final()` checks the tag when the input ends, and a wrong tag
 * fails the stream. Until then the plaintext is unauthenticated: callers either discard it
 * (hash only) or hold its end back (HoldBack) from anything that would act on it.
 */
class DecryptStream extends Transform {
  private readonly decipher: DecipherGCM;
  private readonly hash: Hash = createHash('sha256');
  private digest: string | undefined;
  /** Set once the tag has been checked and matched. */
  authenticated = false;

  constructor(
    key: BackupKey,
    header: Buffer,
    private readonly tag: Buffer,
    private readonly file: string,
  ) {
    super();
    this.decipher = createDecipheriv(ALGORITHM, key.key, header.subarray(HEADER_BYTES - NONCE_BYTES), { authTagLength: TAG_BYTES });
    this.decipher.setAAD(header);
    this.decipher.setAuthTag(tag);
    this.hash.update(header);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    done(null, this.decipher.update(chunk));
  }

  override _flush(done: TransformCallback): void {
    this.hash.update(this.tag);
    this.digest = this.hash.digest('hex');
    let last: Buffer;
    try {
      last = this.decipher.final();
    } catch {
      done(new BackupError('BACKUP_TAMPERED', `${this.file}: authentication failed: the file was changed or damaged after it was written (or the header's key id was edited)`));
      return;
    }
    this.authenticated = true;
    done(null, last);
  }

  /** sha256 of the whole file (header, ciphertext, tag), once the stream has ended. */
  ciphertextSha256(): string | undefined {
    return this.digest;
  }
}

export interface OpenedBackup {
  header: Header;
  /** Size of the whole file. */
  bytes: number;
  /** Plaintext; errors with BACKUP_TAMPERED at the end when the tag does not match. */
  plaintext: Readable;
  ciphertextSha256(): string | undefined;
  /** What this pass authenticated, once the plaintext has ended with the tag matched; else undefined. */
  fingerprint(): Fingerprint | undefined;
}

/** Header, tag and size against what the verifying pass authenticated, before anything is decrypted. */
function checkAgainst(expected: Fingerprint | undefined, path: string, size: number, header: Buffer, tag: Buffer): void {
  if (!expected) return;
  if (size !== expected.size) throw changedSinceVerified(path, 'its size');
  if (!header.equals(expected.header)) throw changedSinceVerified(path, 'its header');
  if (!tag.equals(expected.tag)) throw changedSinceVerified(path, 'its tag');
}

/**
 * Opens an encrypted backup for one streaming pass: header and tag are read first (one file
 * descriptor throughout, so the checks and the stream see the same file), the key id compared,
 * then the ciphertext streams through the decipher. With `expected` (the fingerprint of a pass
 * that authenticated the file), every block is compared with it before it is decrypted.
 */
export async function openBackupFile(path: string, key: BackupKey, expected?: Fingerprint): Promise<OpenedBackup> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new BackupError('BACKUP_NOT_FOUND', code === 'ENOENT' ? `no backup file at ${path}` : `cannot open ${path} (${code ?? String(err)})`);
  }
  try {
    const { size } = await fh.stat();
    const headerBuf = Buffer.alloc(Math.min(HEADER_BYTES, size));
    await fh.read(headerBuf, 0, headerBuf.length, 0);
    const header = parseHeader(headerBuf, path);
    if (size < OVERHEAD_BYTES) throw new BackupError('BACKUP_TRUNCATED', `${path} is truncated: ${size} bytes, less than header and tag (${OVERHEAD_BYTES})`);
    if (!header.keyId.equals(key.id)) {
      throw new BackupError('BACKUP_KEY_MISMATCH', `${path} was encrypted with key ${header.keyId.toString('hex')}, but the key file holds key ${key.idHex}: use the key that made it (BACKUP_KEY_FILE)`);
    }
    const tag = Buffer.alloc(TAG_BYTES);
    await fh.read(tag, 0, TAG_BYTES, size - TAG_BYTES);
    checkAgainst(expected, path, size, headerBuf, tag);
    const decrypt = new DecryptStream(key, headerBuf, tag, path);
    const blocks = new BlockDigests(expected?.blocks, path);
    // An empty dump has no ciphertext: createReadStream with end < start would read to EOF.
    const body = size - OVERHEAD_BYTES > 0 ? fh.createReadStream({ start: HEADER_BYTES, end: size - TAG_BYTES - 1 }) : undefined;
    if (body) {
      body.on('error', (err) => decrypt.destroy(err)).pipe(blocks).on('error', (err) => decrypt.destroy(err)).pipe(decrypt);
      // A consumer that gives up early (a failed restore) must not leave the descriptor open.
      decrypt.once('close', () => {
        blocks.destroy();
        body.destroy();
      });
    } else {
      decrypt.end();
      decrypt.once('close', () => void fh.close());
    }
    const fingerprint = (): Fingerprint | undefined => (decrypt.authenticated ? { size, header: headerBuf, tag, blocks: blocks.digests } : undefined);
    return { header, bytes: size, plaintext: decrypt, ciphertextSha256: () => decrypt.ciphertextSha256(), fingerprint };
  } catch (err) {
    await fh.close();
    throw err;
  }
}
