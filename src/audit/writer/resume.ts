import { EMPTY_CHAIN, type ChainState } from './chain.js';
import { gzipClosedFile } from './compress.js';
import { listLogFiles } from './files.js';
import type { HeadRecord } from './heads.js';
import { cutTornTail, lastChainState } from './tail.js';

export interface Resumed {
  readonly state: ChainState;
  /** What was found and repaired, for the app log. */
  readonly notes: string[];
  /** The files hold fewer lines than the chain heads record (lines lost or removed). */
  readonly gap?: { fileSeq: number; headSeq: number } | undefined;
}

/**
 * Where a chain continues after a restart: the last line of its newest file, or the recorded
 * head when that is further (then the files lost lines, and continuing from the head keeps
 * that loss visible to `audit verify` instead of hiding it under a fresh chain). Also finishes
 * what a crash may have left: a cut last line, and past days not yet gzipped.
 */
export async function resumeChain(dir: string, chain: string, heads: readonly HeadRecord[], today: string): Promise<Resumed> {
  const notes: string[] = [];
  const files = listLogFiles(dir).get(chain) ?? [];
  for (const f of files) {
    if (f.gzipped || f.day >= today) continue;
    const cut = await cutTornTail(f.path);
    if (cut > 0) notes.push(`cut a ${cut}-byte incomplete last line from ${f.name}`);
    await gzipClosedFile(f.path);
    notes.push(`gzipped ${f.name}, left uncompressed by a previous run`);
  }
  const newest = files[files.length - 1];
  let state: ChainState = EMPTY_CHAIN;
  if (newest) {
    if (!newest.gzipped && newest.day >= today) {
      const cut = await cutTornTail(newest.path);
      if (cut > 0) notes.push(`cut a ${cut}-byte incomplete last line from ${newest.name}`);
    }
    const path = newest.gzipped || newest.day >= today ? newest.path : `${newest.path}.gz`;
    state = (await lastChainState(path, newest.gzipped || newest.day < today)) ?? EMPTY_CHAIN;
  }
  let head: HeadRecord | undefined;
  for (const h of heads) if (h.chain === chain && (!head || h.lastSeq > head.lastSeq)) head = h;
  if (head && head.lastSeq > state.seq) {
    notes.push(`the files end at seq ${state.seq} but the chain head records seq ${head.lastSeq} (${head.file}): continuing from the head`);
    return { state: { seq: head.lastSeq, hash: head.lastHash }, notes, gap: { fileSeq: state.seq, headSeq: head.lastSeq } };
  }
  return { state, notes };
}
