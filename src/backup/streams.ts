import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/** Passes bytes through unchanged while counting them and hashing them (sha256). */
export class HashTap extends Transform {
  private readonly hash: Hash = createHash('sha256');
  bytes = 0;
  private digest: string | undefined;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    done(null, chunk);
  }

  /** The hex digest; only once the stream has ended. */
  sha256(): string {
    this.digest ??= this.hash.digest('hex');
    return this.digest;
  }
}

/**
 * Holds back the last `size` bytes until its input ends cleanly. Put after a decryption whose
 * authentication is only known at the end: the consumer (pg_restore) never sees the end of the
 * archive, and so can never finish and commit, unless the tag was right.
 */
export class HoldBack extends Transform {
  private held: Buffer = Buffer.alloc(0);

  constructor(private readonly size: number) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    const all = this.held.length === 0 ? chunk : Buffer.concat([this.held, chunk]);
    if (all.length <= this.size) {
      this.held = all;
      done();
      return;
    }
    this.held = Buffer.from(all.subarray(all.length - this.size));
    done(null, all.subarray(0, all.length - this.size));
  }

  override _flush(done: TransformCallback): void {
    done(null, this.held);
  }
}
