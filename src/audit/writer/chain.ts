import { createHash } from 'node:crypto';

/*
 * The hash chain of a log stream. Every line ends with
 *   `,"seq":<n>,"prev":"<hash of line n-1>","hash":"<sha256 of everything before ,"hash">"}`
 * so a line cannot change without its hash changing, and no line can be removed, added or
 * moved without breaking `prev`/`seq` of the next. The chain runs on across rotated files and
 * restarts; its head is also kept outside the files (see heads.ts), which catches a rewrite of
 * the whole tail or the loss of whole files.
 */

/** The `prev` of a chain's first line. */
export const GENESIS = '0'.repeat(64);

export interface ChainState {
  /** Sequence number of the last line written (0 before the first). */
  readonly seq: number;
  /** Hash of the last line written (GENESIS before the first). */
  readonly hash: string;
}

export const EMPTY_CHAIN: ChainState = { seq: 0, hash: GENESIS };

const HASH_HEX = 64;
const HASH_FIELD = ',"hash":"';
/** Characters after the hashed prefix: `,"hash":"` + 64 hex + `"}`. */
const SUFFIX_LENGTH = HASH_FIELD.length + HASH_HEX + 2;
const RESERVED = new Set(['seq', 'prev', 'hash']);

export interface SealedLine {
  readonly line: string;
  readonly seq: number;
  readonly hash: string;
}

/**
 * JSON of a log record without the chain fields (reserved names in the record are renamed with
 * a leading underscore so the chain fields are always the ones read back).
 */
export function recordJson(record: Record<string, unknown>): string {
  let safe = record;
  if ('seq' in record || 'prev' in record || 'hash' in record) {
    safe = {};
    for (const [k, v] of Object.entries(record)) safe[RESERVED.has(k) ? `_${k}` : k] = v;
  }
  return JSON.stringify(safe);
}

/** Appends the chain fields to a record's JSON (from `recordJson`) and hashes the result. */
export function seal(json: string, state: ChainState): SealedLine {
  const seq = state.seq + 1;
  const open = json.length > 2 ? `${json.slice(0, -1)},` : '{';
  const prefix = `${open}"seq":${seq},"prev":"${state.hash}"`;
  const hash = createHash('sha256').update(prefix).digest('hex');
  return { line: `${prefix}${HASH_FIELD}${hash}"}`, seq, hash };
}

export type LineCheck =
  | { ok: true; seq: number; prev: string; hash: string; record: Record<string, unknown> }
  | { ok: false; problem: 'malformed' | 'hash-mismatch'; seq?: number; prev?: string; hash?: string };

/** Checks one line on its own: well formed, and its hash matches its content. */
export function checkLine(line: string): LineCheck {
  let record: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(line);
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return { ok: false, problem: 'malformed' };
    record = parsed as Record<string, unknown>;
  } catch {
    return { ok: false, problem: 'malformed' };
  }
  const { seq, prev, hash } = record;
  if (typeof seq !== 'number' || typeof prev !== 'string' || typeof hash !== 'string' || hash.length !== HASH_HEX) return { ok: false, problem: 'malformed' };
  if (!line.endsWith(`${HASH_FIELD}${hash}"}`) || line.length < SUFFIX_LENGTH) return { ok: false, problem: 'malformed' };
  const actual = createHash('sha256').update(line.slice(0, line.length - SUFFIX_LENGTH)).digest('hex');
  if (actual !== hash) return { ok: false, problem: 'hash-mismatch', seq, prev, hash };
  return { ok: true, seq, prev, hash, record };
}
