import { createReadStream, readdirSync, type ReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';

/** The three log streams, each its own files and its own hash chain. */
export const STREAMS = ['access', 'security', 'app'] as const;
export type StreamName = (typeof STREAMS)[number];

/** `<stream>[.<instance>]-YYYY-MM-DD.log[.gz]`; the date is the UTC day. */
const FILE_NAME = /^(access|security|app)(?:\.([a-z0-9_-]{1,32}))?-(\d{4}-\d{2}-\d{2})\.log(\.gz)?$/;

/** The winston-daily-rotate-file pattern of a stream's files. */
export function filePattern(stream: StreamName, instance?: string): string {
  return `${chainName(stream, instance)}-%DATE%.log`;
}

/** Name of one hash chain: the stream, plus the instance when several processes share a folder. */
export function chainName(stream: StreamName, instance?: string): string {
  return instance ? `${stream}.${instance}` : stream;
}

/** The plain file of `chain` for UTC day `day` (YYYY-MM-DD), as the rotating stream names it. */
export function fileNameFor(chain: string, day: string): string {
  return `${chain}-${day}.log`;
}

export interface LogFile {
  /** File name without `.gz`: the same for a day before and after compression. */
  readonly name: string;
  readonly path: string;
  readonly stream: StreamName;
  /** The chain this file belongs to (`access`, or `access.<instance>`). */
  readonly chain: string;
  /** UTC day, YYYY-MM-DD. */
  readonly day: string;
  readonly gzipped: boolean;
}

export function parseFileName(dir: string, file: string): LogFile | undefined {
  const m = FILE_NAME.exec(file);
  if (!m) return undefined;
  const stream = m[1] as StreamName;
  const instance = m[2];
  const day = m[3] as string;
  return { name: file.replace(/\.gz$/, ''), path: join(dir, file), stream, chain: chainName(stream, instance), day, gzipped: m[4] !== undefined };
}

/**
 * Every log file in `dir`, grouped by chain and sorted by day. When a day exists both plain and
 * gzipped (a compression interrupted after the rename), the gzipped one is the complete copy.
 */
export function listLogFiles(dir: string): Map<string, LogFile[]> {
  const byName = new Map<string, LogFile>();
  for (const f of readdirSync(dir)) {
    const parsed = parseFileName(dir, f);
    if (!parsed) continue;
    const existing = byName.get(parsed.name);
    if (!existing || parsed.gzipped) byName.set(parsed.name, parsed);
  }
  const chains = new Map<string, LogFile[]>();
  for (const f of byName.values()) {
    const list = chains.get(f.chain) ?? [];
    list.push(f);
    chains.set(f.chain, list);
  }
  for (const list of chains.values()) list.sort((a, b) => a.day.localeCompare(b.day));
  return chains;
}

export interface FileReadResult {
  /** The file ended early: a gzip stream cut short, or a last line without its newline. */
  truncated: boolean;
  error?: string;
}

/**
 * Reads a log file line by line (gzipped or not) without holding it in memory. `onLine` gets
 * each complete line with its 1-based number. A gzip file cut short yields what it holds and
 * reports `truncated`.
 */
export async function readLogLines(path: string, gzipped: boolean, onLine: (line: string, lineNo: number) => void | boolean): Promise<FileReadResult> {
  const { file, source } = openLogContent(path, gzipped);
  let streamError: Error | undefined;
  source.on('error', (err) => {
    streamError = err;
  });
  let lineNo = 0;
  let stopped = false;
  let lastLine: string | undefined;
  const rl = createInterface({ input: source, crlfDelay: Infinity });
  try {
    for await (const line of rl) {
      if (lastLine !== undefined) {
        lineNo++;
        if (onLine(lastLine, lineNo) === false) {
          stopped = true;
          break;
        }
      }
      lastLine = line;
    }
  } catch (err) {
    streamError ??= err as Error;
  } finally {
    rl.close();
    source.destroy();
    file.destroy();
  }
  if (stopped) return { truncated: false };
  // readline cannot say whether the last line had its newline; a JSON line that does not parse
  // as a whole is the sign of a cut (checked by the caller through `checkLine`).
  if (lastLine !== undefined && lastLine !== '') {
    lineNo++;
    onLine(lastLine, lineNo);
  }
  if (streamError) {
    const code = (streamError as NodeJS.ErrnoException).code;
    const truncated = code === 'Z_BUF_ERROR' || /unexpected end of file/i.test(streamError.message);
    return { truncated, error: `${code ?? 'error'}: ${streamError.message}` };
  }
  return { truncated: false };
}

/** A log file's content as a stream: the file itself, or its gunzipped bytes. Destroy both when done. */
function openLogContent(path: string, gzipped: boolean, range: { start?: number; end?: number } = {}): { file: ReadStream; source: Readable } {
  const file = createReadStream(path, range);
  if (!gzipped) return { file, source: file };
  const gunzip = createGunzip();
  file.on('error', (err) => gunzip.destroy(err));
  file.pipe(gunzip);
  return { file, source: gunzip };
}

export interface RangeReadResult {
  /** Content offset just past the last complete line handed over: where the next read starts. */
  readonly next: number;
  /** The read reached the end of the content (or `end`) rather than stopping at `maxBytes` or failing. */
  readonly reachedEnd: boolean;
  /** The file could not be opened or read on (the lines before it were handed over). */
  readonly error?: NodeJS.ErrnoException;
}

const NEWLINE = 0x0a;

/**
 * Reads the complete lines of a log file's content (gunzipped for a `.gz`) from the byte offset
 * `start` up to `end` (exclusive; the end of the content when unset), for following a file that
 * another process is still appending to. Only lines that end in a newline are handed over: a
 * torn last line stays unread, and `next` points at its start for the next read. Stops after
 * the line that takes it to `maxBytes` (so each call's work is bounded). A `.gz` is inflated
 * from its beginning (the bytes before `start` are skipped); one cut short ends the read there.
 */
export async function readLogRange(
  path: string,
  gzipped: boolean,
  opts: { readonly start: number; readonly end?: number; readonly maxBytes?: number },
  onLine: (line: string) => void,
): Promise<RangeReadResult> {
  const { start, end } = opts;
  const maxBytes = opts.maxBytes ?? Infinity;
  if (end !== undefined && end <= start) return { next: start, reachedEnd: true };
  // Plain files are read from `start` (`end` is inclusive for createReadStream); a gzip stream only from 0.
  const range = gzipped ? {} : { start, ...(end !== undefined ? { end: end - 1 } : {}) };
  const { file, source } = openLogContent(path, gzipped, range);
  /** Content offset just past the chunks seen so far. */
  let seen = gzipped ? 0 : start;
  /** Bytes after the last newline; they start at content offset `next`. */
  let pending: Buffer | undefined;
  let next = start;
  let stopped = false;
  try {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      const chunkAt = seen;
      seen += chunk.length;
      if (seen <= start) continue;
      let buf = chunkAt < start ? chunk.subarray(start - chunkAt) : chunk;
      if (end !== undefined && seen > end) buf = buf.subarray(0, Math.max(0, buf.length - (seen - end)));
      if (pending) buf = Buffer.concat([pending, buf]);
      let from = 0;
      for (let nl = buf.indexOf(NEWLINE); nl !== -1; nl = buf.indexOf(NEWLINE, from)) {
        // As readline with crlfDelay Infinity: a CR before the newline is not part of the line.
        onLine(buf.toString('utf8', from, nl > from && buf[nl - 1] === 0x0d ? nl - 1 : nl));
        from = nl + 1;
        if (next + from - start >= maxBytes) {
          stopped = true;
          break;
        }
      }
      next += from;
      if (stopped || (end !== undefined && seen >= end)) break;
      pending = from < buf.length ? buf.subarray(from) : undefined;
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // A gzip cut short (a crash while compressing): what it held is read; nothing more will come.
    if (gzipped && (code === 'Z_BUF_ERROR' || /unexpected end of file/i.test((err as Error).message))) return { next, reachedEnd: true };
    // Lines handed over before the failure stay handed over: `next` says how far that was.
    return { next, reachedEnd: false, error: err as NodeJS.ErrnoException };
  } finally {
    source.destroy();
    file.destroy();
  }
  return { next, reachedEnd: !stopped };
}

/**
 * The length of a `.gz` file's content as its gzip trailer states it (ISIZE: modulo 2^32), read
 * from the last four bytes without inflating anything. Undefined for a file too short to have one.
 */
export async function gzipContentSize(path: string): Promise<number | undefined> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    if (size < 18) return undefined;
    const tail = Buffer.alloc(4);
    await fh.read(tail, 0, 4, size - 4);
    return tail.readUInt32LE(0);
  } finally {
    await fh.close();
  }
}
