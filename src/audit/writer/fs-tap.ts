import fs from 'node:fs';

/** The calls fs.WriteStream makes through its `fs` option (Node ≥ 13). */
export interface StreamFs {
  open(path: fs.PathLike, flags: fs.OpenMode, mode: fs.Mode | undefined | null, cb: (err: NodeJS.ErrnoException | null, fd: number) => void): void;
  write(fd: number, buffer: NodeJS.ArrayBufferView, offset: number, length: number, position: number | null, cb: (err: NodeJS.ErrnoException | null, written: number, buffer: NodeJS.ArrayBufferView) => void): void;
  writev(fd: number, buffers: readonly NodeJS.ArrayBufferView[], position: number | null, cb: (err: NodeJS.ErrnoException | null, written: number, buffers: NodeJS.ArrayBufferView[]) => void): void;
  close(fd: number, cb: (err: NodeJS.ErrnoException | null) => void): void;
}

/** What the sink learns from the file system, write by write. */
export interface WriteObserver {
  opened(path: string, fd: number): void;
  openFailed(path: string, err: Error): void;
  /** `bytes` reached the kernel for `fd`, in stream order. */
  written(fd: number, bytes: number): void;
  writeFailed(fd: number, err: Error): void;
  closed(fd: number): void;
}

/** Mode of log files: owner writes, group (log readers) reads, others nothing. */
export const LOG_FILE_MODE = 0o640;

/**
 * A pass-through of node:fs for the write streams of winston-daily-rotate-file, which itself
 * says nothing about how far a write got. Knowing exactly which bytes reached the kernel is
 * what lets the sink bound its memory under a slow disk and, after a failed write, write again
 * exactly the lines that were not written: none lost, none twice.
 */
export function tapFs(observer: WriteObserver, base: StreamFs = fs as unknown as StreamFs): StreamFs {
  return {
    open(path, flags, mode, cb) {
      base.open(path, flags, mode, (err, fd) => {
        if (err) {
          observer.openFailed(String(path), err);
          return cb(err, fd);
        }
        // The mode given to open() only applies to a new file and passes through the umask.
        // Only a regular file's mode is ours to set (never a device the path may point to).
        fs.fstat(fd, (statErr, st) => {
          const done = (): void => {
            observer.opened(String(path), fd);
            cb(null, fd);
          };
          if (!statErr && st.isFile()) fs.fchmod(fd, LOG_FILE_MODE, done);
          else done();
        });
      });
    },
    write(fd, buffer, offset, length, position, cb) {
      base.write(fd, buffer, offset, length, position, (err, written, buf) => {
        if (err) observer.writeFailed(fd, err);
        else observer.written(fd, written);
        cb(err, written, buf);
      });
    },
    writev(fd, buffers, position, cb) {
      base.writev(fd, buffers, position, (err, written, bufs) => {
        if (err) observer.writeFailed(fd, err);
        else observer.written(fd, written);
        cb(err, written, bufs);
      });
    },
    close(fd, cb) {
      base.close(fd, (err) => {
        observer.closed(fd);
        cb(err);
      });
    },
  };
}
