import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { GatewayConfig } from '../config/schema.js';
import { checkLine } from '../audit/writer/chain.js';
import { listLogFiles, readLogLines } from '../audit/writer/files.js';

/**
 * The overview's status figures that are not in the security log: the certificate clients are
 * shown, today's audit chains, the newest verified backup. Each is read from its own source at
 * render time; a source that cannot be read is shown as such, never as fine.
 */

const DAY_MS = 86_400_000;
/** How often today's audit files are re-checked at most: a page view must stay cheap. */
export const CHAIN_CHECK_INTERVAL_MS = 5 * 60_000;
/** How long a page waits for a check already running before it shows the previous result. */
const CHAIN_CHECK_WAIT_MS = 2_000;

export type Status = { readonly state: 'ok' | 'warn' | 'fail' | 'off'; readonly text: string; readonly detail?: string | undefined };

export interface CertificateStatus extends Status {
  readonly validTo?: string | undefined;
  readonly daysLeft?: number | undefined;
  readonly subject?: string | undefined;
}

/** The TLS certificate file, as the gateway serves it: expiry and days left (warn under 21, fail under 7). */
export function certificateStatus(certFile: string, now = Date.now()): CertificateStatus {
  try {
    const cert = new X509Certificate(readFileSync(certFile));
    const validTo = new Date(cert.validTo);
    const daysLeft = Math.floor((validTo.getTime() - now) / DAY_MS);
    const subject = cert.subject.replace(/\n/g, ', ');
    const state = daysLeft < 7 ? 'fail' : daysLeft < 21 ? 'warn' : 'ok';
    const text = daysLeft < 0 ? `expired ${-daysLeft} days ago` : `expires in ${daysLeft} days`;
    return { state, text, validTo: validTo.toISOString(), daysLeft, subject, detail: `${subject}; ${certFile}` };
  } catch (err) {
    return { state: 'fail', text: 'cannot read the certificate', detail: `${certFile}: ${(err as Error).message}` };
  }
}

export interface ChainStatus extends Status {
  readonly checkedAt?: string | undefined;
  readonly lines?: number | undefined;
}

/**
 * Today's files of every audit chain, checked line by line (each line's hash, each link to the
 * line before within the file). The full check across days and against the recorded heads is
 * `audit verify`; this is the cheap daily view of it, at most every CHAIN_CHECK_INTERVAL_MS.
 */
async function checkToday(dir: string, now: number): Promise<ChainStatus> {
  const day = new Date(now).toISOString().slice(0, 10);
  let lines = 0;
  const problems: string[] = [];
  let files = 0;
  for (const list of listLogFiles(dir).values()) {
    for (const f of list) {
      if (f.day !== day) continue;
      files++;
      let prev: { seq: number; hash: string } | undefined;
      const read = await readLogLines(f.path, f.gzipped, (line, lineNo) => {
        lines++;
        const c = checkLine(line);
        if (!c.ok) {
          problems.push(`${f.name}:${lineNo} ${c.problem === 'malformed' ? 'is not a chained record' : 'was changed (hash mismatch)'}`);
          prev = undefined;
          return;
        }
        if (prev && (c.seq !== prev.seq + 1 || c.prev !== prev.hash)) problems.push(`${f.name}:${lineNo} (seq ${c.seq}) does not follow seq ${prev.seq}`);
        prev = { seq: c.seq, hash: c.hash };
      });
      // A cut last line is the line being written now (these files are live), not damage.
      if (read.error && !read.truncated) problems.push(`${f.name}: ${read.error}`);
    }
  }
  const checkedAt = new Date(now).toISOString();
  if (files === 0) return { state: 'warn', text: 'no audit file for today yet', checkedAt, lines };
  if (problems.length > 0) return { state: 'fail', text: `${problems.length} problem${problems.length === 1 ? '' : 's'} in today's chains`, detail: problems.slice(0, 3).join('; '), checkedAt, lines };
  return { state: 'ok', text: `today's chains intact (${lines} lines in ${files} files)`, checkedAt, lines };
}

/** Today's chain check, cached and shared between page views (one runs at a time). */
export class ChainStatusCache {
  private last: ChainStatus | undefined;
  private lastAt = 0;
  private running: Promise<ChainStatus> | undefined;

  constructor(
    private readonly dir: string,
    private readonly now: () => number = Date.now,
  ) {}

  async get(): Promise<ChainStatus> {
    if (this.last && this.now() - this.lastAt < CHAIN_CHECK_INTERVAL_MS) return this.last;
    this.running ??= checkToday(this.dir, this.now())
      .catch((err: Error): ChainStatus => ({ state: 'fail', text: 'cannot read the audit folder', detail: err.message, checkedAt: new Date(this.now()).toISOString() }))
      .then((s) => {
        this.last = s;
        this.lastAt = this.now();
        this.running = undefined;
        return s;
      });
    let timer: NodeJS.Timeout | undefined;
    const waited = await Promise.race([this.running, new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), CHAIN_CHECK_WAIT_MS)))]);
    clearTimeout(timer);
    return waited ?? this.last ?? { state: 'warn', text: 'checking today’s chains now' };
  }
}

export interface BackupStatus extends Status {
  readonly time?: string | undefined;
  readonly name?: string | undefined;
}

/** The newest verified backup in BACKUP_DIR (warn after 2 days, fail after 7 or with none). */
export async function backupStatus(cfg: GatewayConfig['backup'], now = Date.now()): Promise<BackupStatus> {
  if (!cfg.enabled) return { state: 'off', text: 'off', detail: 'BACKUP_ENABLED is false: this gateway makes no backups' };
  try {
    // Loaded when backups are on: a gateway without them loads no backup code (startup footprint).
    const { readCatalog } = await import('../backup/catalog.js');
    const verified = readCatalog(cfg.dir).entries.filter((e) => e.verified);
    const newest = verified[verified.length - 1];
    if (!newest) return { state: 'fail', text: 'no verified backup', detail: cfg.dir };
    const ageDays = (now - newest.time.getTime()) / DAY_MS;
    return { state: ageDays > 7 ? 'fail' : ageDays > 2 ? 'warn' : 'ok', text: `newest verified backup`, time: newest.time.toISOString(), name: newest.name, detail: `${newest.name}${newest.bytes !== undefined ? `, ${newest.bytes} bytes` : ''}` };
  } catch (err) {
    return { state: 'fail', text: 'cannot read the backup folder', detail: `${cfg.dir}: ${(err as Error).message}` };
  }
}
