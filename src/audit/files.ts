import { createReadStream, readdirSync } from 'node:fs';
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
  const file = createReadStream(path);
  let source: Readable = file;
  let streamError: Error | undefined;
  if (gzipped) {
    const gunzip = createGunzip();
    file.on('error', (err) => gunzip.destroy(err));
    file.pipe(gunzip);
    source = gunzip;
  }
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
