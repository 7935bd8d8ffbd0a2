import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { BackupError } from './errors.js';

/**
 * GCM authenticates a file only once its last byte has been read, and its ciphertext is
 * malleable (flipped ciphertext bits flip the same plaintext bits), so a file changed between
 * the restore's verifying pass and its restoring pass could feed pg_restore rewritten SQL (a
 * `COMMIT;` in the table of contents) before the tag is checked again. The verifying pass
 * therefore records a fingerprint of exactly the bytes it authenticated: header, tag, size and
 * the sha256 of every block of ciphertext. The restoring pass compares each block with it
 * before decrypting it, so nothing reaches pg_restore that was not authenticated.
 */
export const FINGERPRINT_BLOCK_BYTES = 1024 * 1024;

export interface Fingerprint {
  readonly size: number;
  readonly header: Buffer;
  readonly tag: Buffer;
  /** sha256 of each FINGERPRINT_BLOCK_BYTES block of the ciphertext between header and tag. */
  readonly blocks: readonly Buffer[];
}

export function changedSinceVerified(file: string, what: string): BackupError {
  return new BackupError('BACKUP_TAMPERED', `${file}: authentication failed: ${what} changed since the file was verified; nothing after it was used`);
}

/**
 * Cuts the ciphertext into fixed blocks (the same whatever the read sizes) and hashes each.
 * Without `expected` it records the hashes; with it, a block is passed on only when its hash
 * matches the one recorded by the pass that authenticated the file.
 */
export class BlockDigests extends Transform {
  readonly digests: Buffer[] = [];
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(
    private readonly expected: readonly Buffer[] | undefined,
    private readonly file: string,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    let rest = chunk;
    while (rest.length > 0) {
      const take = Math.min(rest.length, FINGERPRINT_BLOCK_BYTES - this.pendingBytes);
      this.pending.push(rest.subarray(0, take));
      this.pendingBytes += take;
      rest = rest.subarray(take);
      if (this.pendingBytes === FINGERPRINT_BLOCK_BYTES && !this.seal(done)) return;
    }
    done();
  }

  override _flush(done: TransformCallback): void {
    if (this.pendingBytes > 0 && !this.seal(done)) return;
    if (this.expected && this.digests.length !== this.expected.length) {
      done(changedSinceVerified(this.file, 'its length'));
      return;
    }
    done();
  }

  /** Hashes the pending block and passes it on; false (with `done` called) when it does not match. */
  private seal(done: TransformCallback): boolean {
    const block = this.pending.length === 1 ? (this.pending[0] as Buffer) : Buffer.concat(this.pending);
    this.pending = [];
    this.pendingBytes = 0;
    const digest = createHash('sha256').update(block).digest();
    if (this.expected) {
      const want = this.expected[this.digests.length];
      if (!want || !want.equals(digest)) {
        done(changedSinceVerified(this.file, `block ${this.digests.length + 1}`));
        return false;
      }
    }
    this.digests.push(digest);
    this.push(block);
    return true;
  }
}
