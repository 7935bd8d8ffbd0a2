import { open, stat } from 'node:fs/promises';
import { checkLine, type ChainState } from './chain.js';
import { readLogLines } from './files.js';

/** How much of a file's end is read to find its last line; doubled up to the maximum. */
const TAIL_WINDOW = 64 * 1024;
const TAIL_WINDOW_MAX = 16 * 1024 * 1024;
const NEWLINE = 0x0a;

/**
 * Cuts a plain log file back to its last complete line. A write the disk refused half-way (or a
 * crash) can leave part of a line; that part was never counted as written, and the whole line
 * is written again after it, so the fragment is the only thing removed. Returns the bytes cut.
 */
export async function cutTornTail(path: string): Promise<number> {
  let info;
  try {
    info = await stat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  if (!info.isFile() || info.size === 0) return 0;
  const fh = await open(path, 'r+');
  try {
    let window = TAIL_WINDOW;
    for (;;) {
      const start = Math.max(0, info.size - window);
      const buf = Buffer.alloc(info.size - start);
      await fh.read(buf, 0, buf.length, start);
      if (buf[buf.length - 1] === NEWLINE) return 0;
      const lastNewline = buf.lastIndexOf(NEWLINE);
      if (lastNewline >= 0 || start === 0) {
        const keep = lastNewline >= 0 ? start + lastNewline + 1 : 0;
        await fh.truncate(keep);
        await fh.sync();
        return info.size - keep;
      }
      if (window >= TAIL_WINDOW_MAX) throw new Error(`no line end in the last ${TAIL_WINDOW_MAX} bytes of ${path}`);
      window *= 2;
    }
  } finally {
    await fh.close();
  }
}

/**
 * The chain state at the end of a file: seq and hash of its last line that checks. Reads the
 * end of a plain file only; a gzipped file is read through.
 */
export async function lastChainState(path: string, gzipped: boolean): Promise<ChainState | undefined> {
  if (gzipped) {
    let last: ChainState | undefined;
    await readLogLines(path, true, (line) => {
      const c = checkLine(line);
      if (c.ok) last = { seq: c.seq, hash: c.hash };
    });
    return last;
  }
  const info = await stat(path);
  const fh = await open(path, 'r');
  try {
    let window = TAIL_WINDOW;
    for (;;) {
      const start = Math.max(0, info.size - window);
      const buf = Buffer.alloc(info.size - start);
      await fh.read(buf, 0, buf.length, start);
      const lines = buf.toString('utf8').split('\n');
      // The first piece may be the end of a longer line unless the window reaches the start.
      const from = start === 0 ? 0 : 1;
      for (let i = lines.length - 1; i >= from; i--) {
        const c = checkLine(lines[i] as string);
        if (c.ok) return { seq: c.seq, hash: c.hash };
      }
      if (start === 0 || window >= TAIL_WINDOW_MAX) return undefined;
      window *= 2;
    }
  } finally {
    await fh.close();
  }
}
