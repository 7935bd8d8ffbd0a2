import { GENESIS, checkLine } from '../writer/chain.js';
import { listLogFiles, readLogLines, type LogFile } from '../writer/files.js';
import type { HeadRecord } from '../writer/heads.js';
import type { SecurityEvent } from '../../log/events.js';

export type ProblemKind =
  | 'changed'
  | 'removed'
  | 'reordered'
  | 'malformed'
  | 'truncated-line'
  | 'truncated-file'
  | 'unreadable-file'
  | 'missing-file'
  | 'missing-tail'
  | 'head-mismatch';

export interface VerifyProblem {
  readonly chain: string;
  readonly kind: ProblemKind;
  readonly file?: string;
  readonly line?: number;
  readonly seq?: number;
  readonly message: string;
}

export interface ChainSummary {
  readonly chain: string;
  readonly files: number;
  readonly lines: number;
  readonly firstSeq?: number;
  readonly lastSeq?: number;
}

export interface VerifyReport {
  readonly ok: boolean;
  readonly dir: string;
  readonly chains: ChainSummary[];
  readonly problems: VerifyProblem[];
  /** Facts that are not failures: retention removals, drops recorded by the gateway. */
  readonly notes: string[];
  /** Where the chain heads came from, or undefined when none were available. */
  readonly headsFrom?: string | undefined;
}

/** Problems listed per chain before the rest are only counted. */
const MAX_PROBLEMS_PER_CHAIN = 20;

/** How far after a gap the missing lines may still turn up (then they were moved, not removed). */
const REORDER_WINDOW_LINES = 1000;

interface Gap {
  from: number;
  to: number;
  file: string;
  line: number;
  seq: number;
  previousFile: string;
  linesSince: number;
}

interface ChainCursor {
  seq: number;
  hash: string;
  file: string;
}

/**
 * Checks every file of every chain in `dir` (gzipped ones too): each line's hash, each line's
 * link to the one before (across files), and, when chain heads are given, that every recorded
 * file is there and reaches the recorded last line with the recorded hash.
 */
export async function verifyLogDir(dir: string, heads?: { records: readonly HeadRecord[]; from: string }): Promise<VerifyReport> {
  const chains = listLogFiles(dir);
  const headChains = new Set((heads?.records ?? []).map((r) => r.chain));
  const names = [...new Set([...chains.keys(), ...headChains])].sort();
  const problems: VerifyProblem[] = [];
  const notes: string[] = [];
  const summaries: ChainSummary[] = [];
  for (const chain of names) {
    const records = (heads?.records ?? []).filter((r) => r.chain === chain);
    summaries.push(await verifyChain(chain, chains.get(chain) ?? [], records, problems, notes));
  }
  return { ok: problems.length === 0, dir, chains: summaries, problems, notes, headsFrom: heads?.from };
}

async function verifyChain(chain: string, files: readonly LogFile[], records: readonly HeadRecord[], out: VerifyProblem[], notes: string[]): Promise<ChainSummary> {
  let reported = 0;
  let suppressed = 0;
  const problem = (p: Omit<VerifyProblem, 'chain'>): void => {
    if (reported >= MAX_PROBLEMS_PER_CHAIN) {
      suppressed++;
      return;
    }
    reported++;
    out.push({ chain, ...p });
  };
  const byFile = new Map(records.map((r) => [r.file, r]));
  let cursor: ChainCursor | undefined;
  let gap: Gap | undefined;
  const flushGap = (): void => {
    if (!gap) return;
    const where = gap.previousFile === gap.file ? `before ${gap.file}:${gap.line}` : `between ${gap.previousFile} and ${gap.file}:${gap.line} (a missing file, or lines cut from one)`;
    problem({ kind: 'removed', file: gap.file, line: gap.line, seq: gap.seq, message: `lines seq ${gap.from}..${gap.to} were removed ${where}` });
    gap = undefined;
  };
  let lines = 0;
  let firstSeq: number | undefined;

  for (const f of files) {
    const record = byFile.get(f.name);
    let fileMax = 0;
    let recordedLineSeen = false;
    let lastLineNo = 0;
    let pendingMalformed: { lineNo: number } | undefined;

    const read = await readLogLines(f.path, f.gzipped, (text, lineNo) => {
      lastLineNo = lineNo;
      if (pendingMalformed) {
        problem({ kind: 'malformed', file: f.name, line: pendingMalformed.lineNo, message: 'the line is not a complete chained JSON record (edited or corrupted)' });
        pendingMalformed = undefined;
      }
      lines++;
      const c = checkLine(text);
      if (!c.ok) {
        if (c.problem === 'malformed') {
          // Decided at the next line: malformed in the middle, or a cut last line.
          pendingMalformed = { lineNo };
          return;
        }
        problem({ kind: 'changed', file: f.name, line: lineNo, seq: c.seq, message: `line seq ${c.seq} was changed: its hash does not match its content` });
        if (c.seq !== undefined && c.hash !== undefined) cursor = { seq: c.seq, hash: c.hash, file: f.name };
        return;
      }
      firstSeq ??= c.seq;
      fileMax = Math.max(fileMax, c.seq);
      if (record && c.seq === record.lastSeq) {
        recordedLineSeen = true;
        if (c.hash !== record.lastHash) {
          problem({ kind: 'head-mismatch', file: f.name, line: lineNo, seq: c.seq, message: `line seq ${c.seq} is not the line recorded at ${record.updatedAt} (${truncate(record.lastHash)}): the chain was rewritten` });
        }
      }
      if (c.record.event === ('audit.lines_dropped' satisfies SecurityEvent)) notes.push(`${chain}: the gateway recorded ${String(c.record.count)} lines dropped under backlog between ${String(c.record.firstTime)} and ${String(c.record.lastTime)} (${f.name}:${lineNo})`);
      if (gap && ++gap.linesSince > REORDER_WINDOW_LINES) flushGap();
      if (!cursor) {
        const cutFrom = record && c.seq > record.firstSeq ? record.firstSeq : undefined;
        if (cutFrom !== undefined) {
          // Nothing before the first line links to it, so only the recorded head shows a cut start.
          problem({ kind: 'removed', file: f.name, line: lineNo, seq: c.seq, message: `lines seq ${cutFrom}..${c.seq - 1} were removed from the start of ${f.name} (its first line was recorded as seq ${cutFrom})` });
        } else if (c.seq !== 1 || c.prev !== GENESIS) explainStart(chain, c.seq, f.name, records, notes);
      } else if (c.seq === cursor.seq + 1 && c.prev === cursor.hash) {
        // the expected next line
      } else if (c.seq > cursor.seq + 1) {
        flushGap();
        // Missing lines, unless they turn up a little later (then the lines were moved).
        gap = { from: cursor.seq + 1, to: c.seq - 1, file: f.name, line: lineNo, seq: c.seq, previousFile: cursor.file, linesSince: 0 };
      } else if (c.seq <= cursor.seq) {
        if (gap && c.seq >= gap.from && c.seq <= gap.to) {
          problem({ kind: 'reordered', file: gap.file, line: gap.line, seq: gap.seq, message: `line seq ${gap.seq} comes before seq ${c.seq} (${f.name}:${lineNo}): lines were reordered` });
          gap = undefined;
        } else {
          problem({ kind: 'reordered', file: f.name, line: lineNo, seq: c.seq, message: `line seq ${c.seq} comes after seq ${cursor.seq}: lines were reordered or repeated` });
        }
        return; // the chain goes on from the highest line seen
      } else {
        problem({ kind: 'changed', file: f.name, line: lineNo, seq: c.seq, message: `line seq ${c.seq} does not link to line seq ${cursor.seq}: a line was changed and its hash recomputed` });
      }
      cursor = { seq: c.seq, hash: c.hash, file: f.name };
    });

    flushGap();
    if (pendingMalformed) {
      const last = pendingMalformed.lineNo === lastLineNo;
      problem(
        last
          ? { kind: 'truncated-line', file: f.name, line: pendingMalformed.lineNo, message: 'the last line is cut short (file truncated or write interrupted)' }
          : { kind: 'malformed', file: f.name, line: pendingMalformed.lineNo, message: 'the line is not a complete chained JSON record' },
      );
    }
    if (read.truncated) problem({ kind: 'truncated-file', file: f.name, message: `the gzip file is cut short (${read.error ?? 'unexpected end'}): its end is lost` });
    else if (read.error) problem({ kind: 'unreadable-file', file: f.name, message: `cannot read: ${read.error}` });
    if (record && !recordedLineSeen && fileMax < record.lastSeq) {
      problem({ kind: 'missing-tail', file: f.name, seq: record.lastSeq, message: `ends at seq ${fileMax || '(none)'} but seq ${record.lastSeq} was recorded as written at ${record.updatedAt}: lines were removed from its end` });
    }
  }

  const present = new Set(files.map((f) => f.name));
  for (const r of records) {
    if (present.has(r.file)) continue;
    if (r.removedAt) notes.push(`${chain}: ${r.file} (seq ${r.firstSeq}..${r.lastSeq}) was removed by retention at ${r.removedAt}`);
    else problem({ kind: 'missing-file', file: r.file, seq: r.firstSeq, message: `${r.file} is missing: it held seq ${r.firstSeq}..${r.lastSeq} (recorded at ${r.updatedAt}) and retention did not remove it` });
  }
  if (suppressed > 0) out.push({ chain, kind: 'changed', message: `${suppressed} more problems not listed` });
  return { chain, files: files.length, lines, ...(firstSeq !== undefined ? { firstSeq } : {}), ...(cursor ? { lastSeq: cursor.seq } : {}) };
}

/** A chain that does not start at seq 1: fine when retention removed what came before. */
function explainStart(chain: string, seq: number, file: string, records: readonly HeadRecord[], notes: string[]): void {
  const before = records.filter((r) => r.lastSeq < seq);
  if (before.length > 0 && before.every((r) => r.removedAt)) {
    notes.push(`${chain}: starts at seq ${seq} in ${file}; the files before it were removed by retention`);
    return;
  }
  if (before.some((r) => !r.removedAt)) return; // reported as missing-file
  notes.push(`${chain}: starts at seq ${seq} in ${file}; no chain head covers the lines before it, so their removal cannot be checked`);
}

function truncate(hash: string): string {
  return `${hash.slice(0, 12)}…`;
}

/** The report as text for a person. */
export function formatReport(r: VerifyReport): string {
  const out: string[] = [];
  out.push(`audit verify ${r.dir}: ${r.ok ? 'OK' : 'FAILED'}${r.headsFrom ? ` (chain heads from ${r.headsFrom})` : ' (no chain heads: a deleted newest day cannot be detected)'}`);
  for (const c of r.chains) {
    const bad = r.problems.filter((p) => p.chain === c.chain).length;
    out.push(`  ${c.chain}: ${c.files} files, ${c.lines} lines${c.firstSeq !== undefined ? `, seq ${c.firstSeq}..${c.lastSeq}` : ''}: ${bad === 0 ? 'ok' : `${bad} problem(s)`}`);
  }
  for (const p of r.problems) out.push(`  ${p.kind.toUpperCase()} ${p.chain}${p.file ? ` ${p.file}${p.line ? `:${p.line}` : ''}` : ''}: ${p.message}`);
  for (const n of r.notes) out.push(`  note: ${n}`);
  return `${out.join('\n')}\n`;
}
