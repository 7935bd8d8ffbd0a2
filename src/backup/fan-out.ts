import { Writable } from 'node:stream';

function drained(s: NodeJS.WritableStream & { destroyed?: boolean }): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      s.removeListener('drain', done);
      s.removeListener('close', done);
      s.removeListener('error', done);
      resolve();
    };
    s.on('drain', done);
    s.on('close', done);
    s.on('error', done);
  });
}

/**
 * Writes every chunk to several sinks (the stdin of two pg_restore processes), at the pace of
 * the slowest. A sink that closes early is dropped, not an error: `pg_restore --list` stops
 * reading once it has the table of contents; its exit code says whether that was fine.
 */
export class FanOut extends Writable {
  constructor(private readonly sinks: readonly Writable[]) {
    super();
  }

  private live(): Writable[] {
    return this.sinks.filter((s) => !s.destroyed && !s.writableEnded);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    const waits: Promise<void>[] = [];
    for (const s of this.live()) if (!s.write(chunk)) waits.push(drained(s));
    if (waits.length === 0) done();
    else Promise.all(waits).then(() => done(), done);
  }

  override _final(done: (err?: Error | null) => void): void {
    for (const s of this.live()) s.end();
    done();
  }
}
