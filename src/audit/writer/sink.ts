import type { EventEmitter } from 'node:events';
import { mkdir, readdir, unlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import DailyRotateFile from 'winston-daily-rotate-file';
import { recordJson, seal, type ChainState, type SealedLine } from './chain.js';
import { gzipClosedFile } from './compress.js';
import { chainName, filePattern, parseFileName, type StreamName } from './files.js';
import { LOG_FILE_MODE, tapFs, type StreamFs } from './fs-tap.js';
import { cutTornTail } from './tail.js';

/** Bytes handed to the file stream and not yet on disk before the sink holds lines back. */
export const WRITE_HIGH_WATER_BYTES = 1024 * 1024;
/** First and longest wait between attempts to write again after the disk refused. */
export const RETRY_FIRST_MS = 1_000;
export const RETRY_MAX_MS = 30_000;
/** Room a line takes beyond its record: the chain fields and the newline. */
const CHAIN_OVERHEAD_BYTES = 170;
const MESSAGE = Symbol.for('message');
const DIR_MODE = 0o750;
const DAY_MS = 86_400_000;
/** Retries spent waiting for a failed file stream to close before its lines are taken back. */
const MAX_CLOSE_WAITS = 5;

export interface SinkEvents {
  /** The files cannot be written: lines are held in memory (bounded) until they can. Once per outage. */
  degraded(err: Error): void;
  /**
   * A whole line reached the file after `degraded`: once per outage, never on a reopen alone.
   * `heldLines` lines held meanwhile are being written.
   */
  recovered(info: { downMs: number; heldLines: number; error: string }): void;
  /** The backlog is full: lines are being dropped (counted, and recorded when room returns). */
  overflow(info: { backlogBytes: number }): void;
  rotated(oldFile: string, newFile: string): void;
  compressed(file: string): void;
  /** Retention removed a file. */
  removed(name: string): void;
  warning(message: string, err: unknown): void;
}

export interface SinkOptions {
  readonly dir: string;
  readonly stream: StreamName;
  /** Set when several processes share the folder: each writes its own files and chain. */
  readonly instance?: string | undefined;
  readonly retentionDays: number;
  /** Most bytes of lines the sink holds (queued plus not yet on disk) before it drops lines. */
  readonly maxBacklogBytes: number;
  /** Where the chain continues from (see recovery.ts). */
  readonly chain: ChainState;
  readonly events: SinkEvents;
  readonly retryFirstMs?: number;
  readonly retryMaxMs?: number;
  /** Test seam: the file system calls of the write streams (a slow or failing disk). */
  readonly fs?: StreamFs;
}

interface Pending {
  readonly line: string;
  readonly bytes: number;
  readonly seq: number;
  readonly hash: string;
}

/** One open file of the sink: lines handed to it, in order, until the kernel has them all. */
interface Track {
  readonly path: string;
  fd?: number;
  readonly pending: Pending[];
  /** Bytes of pending[0] already written (a write that stopped mid-line). */
  partial: number;
  closed: boolean;
  failed: boolean;
  rotatedAway: boolean;
}

/** What this sink uses of the transport (its typings mark log/close optional). */
type RotatingTransport = DailyRotateFile & { log(info: object, cb: () => void): void; close(): void; readonly logStream: EventEmitter };

type Queued = { readonly json: string; readonly bytes: number } | { readonly sealed: Pending; readonly bytes: number };

export interface FileHead {
  firstSeq: number;
  lastSeq: number;
  lastHash: string;
}

export interface SinkStatus {
  readonly chain: string;
  readonly state: 'ok' | 'degraded' | 'probing' | 'closed';
  readonly queuedLines: number;
  readonly backlogBytes: number;
  readonly writtenLines: number;
  readonly droppedLines: number;
  readonly lastError?: string;
}

/**
 * One log stream on disk: winston-daily-rotate-file does the daily files (UTC days) and
 * retention; this adds what it lacks for an audit log:
 * - every line is chained (chain.ts) at the moment it is handed to the file, in file order;
 * - memory is bounded: at most WRITE_HIGH_WATER_BYTES wait in the file stream, the rest in a
 *   queue of at most `maxBacklogBytes`; beyond that lines are dropped, counted, and a record of
 *   the drop is written into the stream itself when room returns;
 * - a refused write (disk full, directory not writable) never crashes the process: the lines
 *   the kernel did not take are queued again, in order, with their chain fields, and written
 *   when the disk accepts them (retried with backoff);
 * - closed days are gzipped only once every byte is on disk (the library's own gzip reads the
 *   old file while its last writes are still in flight).
 */
export class StreamSink {
  readonly chain: string;
  private readonly opts: SinkOptions;
  private readonly observerFs: StreamFs;
  /** Lines waiting for the file, oldest at `queueHead` (an index, so taking one is O(1)). */
  private queue: Queued[] = [];
  private queueHead = 0;
  private queueBytes = 0;
  private inflightBytes = 0;
  private state: SinkStatus['state'] = 'ok';
  private transport: RotatingTransport | undefined;
  private tracks: Track[] = [];
  private current: Track | undefined;
  private skipFirstNew: string | undefined;
  private readonly byFd = new Map<number, Track>();
  private chainState: ChainState;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelay: number;
  private degradedAt = 0;
  private lastError: Error | undefined;
  private readonly tornFiles = new Set<string>();
  private dropped = { count: 0, first: '', last: '', total: 0 };
  private overflowing = false;
  private written = 0;
  private readonly heads = new Map<string, FileHead>();
  private readonly dirtyHeads = new Set<string>();
  private compressing: Promise<void> = Promise.resolve();
  private waiters: ((done: boolean) => void)[] = [];
  private flushAll = false;
  private pumping = false;
  private closeWaits = 0;

  constructor(opts: SinkOptions) {
    this.opts = opts;
    this.chain = chainName(opts.stream, opts.instance);
    this.chainState = opts.chain;
    this.retryDelay = opts.retryFirstMs ?? RETRY_FIRST_MS;
    this.observerFs = tapFs(
      {
        opened: (path, fd) => this.onOpened(path, fd),
        openFailed: (path, err) => this.onOpenFailed(path, err),
        written: (fd, bytes) => this.onWritten(fd, bytes),
        writeFailed: (fd, err) => this.onWriteFailed(fd, err),
        closed: (fd) => this.onClosed(fd),
      },
      opts.fs,
    );
  }

  /** Opens today's file; when that fails the sink starts degraded (queueing, retrying). */
  async start(): Promise<boolean> {
    try {
      await this.open();
      return true;
    } catch (err) {
      this.fail(err as Error);
      return false;
    }
  }

  /** Creates the folder and opens today's file. Throws when that is impossible right now. */
  private async open(): Promise<void> {
    await mkdir(this.opts.dir, { recursive: true, mode: DIR_MODE });
    this.openTransport();
    this.queueRetention();
  }

  /** Retention runs in the same queue as compression, so it never removes a file being gzipped. */
  private queueRetention(): void {
    this.compressing = this.compressing.then(() => this.sweepRetention());
  }

  /**
   * Removes this chain's files (plain or gzipped) of days older than the retention. Done here,
   * by the day in the file name, rather than by the library's `maxFiles`: that one removes only
   * files it created in this run's audit list, misses at startup, and knows nothing of our .gz.
   */
  async sweepRetention(now: Date = new Date()): Promise<void> {
    const cutoff = new Date(now.getTime() - this.opts.retentionDays * DAY_MS).toISOString().slice(0, 10);
    let names: string[];
    try {
      names = await readdir(this.opts.dir);
    } catch (err) {
      this.opts.events.warning('cannot list the log folder for retention', err);
      return;
    }
    for (const name of names) {
      const f = parseFileName(this.opts.dir, name);
      if (!f || f.chain !== this.chain || f.day >= cutoff) continue;
      try {
        await unlink(f.path);
        this.opts.events.removed(name);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.opts.events.warning(`cannot remove ${name} (retention)`, err);
      }
    }
  }

  /** Queues one record (already redacted); it is chained and written in arrival order. */
  write(record: Record<string, unknown>): void {
    if (this.state === 'closed') return;
    const json = recordJson(record);
    const bytes = Buffer.byteLength(json) + CHAIN_OVERHEAD_BYTES;
    if (this.queueBytes + this.inflightBytes + bytes > this.opts.maxBacklogBytes) {
      this.drop(record);
      return;
    }
    this.queue.push({ json, bytes });
    this.queueBytes += bytes;
    this.pump();
  }

  /** True when lines reach the disk: not failing, not probing, not dropping. */
  get healthy(): boolean {
    return this.state === 'ok' && !this.overflowing;
  }

  get backlogBytes(): number {
    return this.queueBytes + this.inflightBytes;
  }

  status(): SinkStatus {
    return {
      chain: this.chain,
      state: this.state,
      queuedLines: this.queuedCount(),
      backlogBytes: this.backlogBytes,
      writtenLines: this.written,
      droppedLines: this.dropped.total,
      ...(this.lastError ? { lastError: this.lastError.message } : {}),
    };
  }

  /** Heads of the files written since the last call (file name → first/last seq, last hash). */
  takeHeads(): Map<string, FileHead> {
    const out = new Map<string, FileHead>();
    for (const f of this.dirtyHeads) out.set(f, { ...(this.heads.get(f) as FileHead) });
    this.dirtyHeads.clear();
    return out;
  }

  /** Resolves once every queued line is on disk, or after `timeoutMs` (false then). */
  async flush(timeoutMs: number): Promise<boolean> {
    if (this.idle()) return true;
    let timer: NodeJS.Timeout | undefined;
    const done = await Promise.race([
      new Promise<boolean>((resolve) => this.waiters.push(resolve)),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    return done;
  }

  /**
   * Writes everything still queued (one more attempt now if the disk was refusing), closes the
   * file, and returns the lines that could not be written within `timeoutMs`, for the caller
   * to put on another channel.
   */
  async close(timeoutMs: number): Promise<string[]> {
    if (this.state === 'closed') return [];
    this.flushAll = true;
    const deadline = Date.now() + timeoutMs;
    if (this.state === 'degraded') {
      clearTimeout(this.retryTimer);
      await this.recover();
    }
    this.pump();
    // A disk that still refuses gets no more waiting: what is left goes to the caller.
    if (this.state !== 'degraded') await this.flush(Math.max(0, deadline - Date.now()));
    clearTimeout(this.retryTimer);
    const unwritten = [...this.tracks.flatMap((t) => t.pending.map((p) => p.line)), ...this.queue.slice(this.queueHead).map((q) => ('sealed' in q ? q.sealed.line : q.json))];
    const transport = this.transport;
    this.transport = undefined;
    this.state = 'closed';
    if (transport) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
        transport.once('finish', () => {
          clearTimeout(timer);
          resolve();
        });
        transport.close();
      });
    }
    await this.compressing;
    return unwritten;
  }

  // -- writing -------------------------------------------------------------------------------

  private pump(): void {
    // Not re-entered: a line logged from inside a hand-off (a rotation event) waits in the queue,
    // or it would reach the file before the line being handed off, out of chain order.
    if ((this.state !== 'ok' && this.state !== 'probing') || this.pumping) return;
    this.pumping = true;
    try {
      this.pumpQueue();
    } finally {
      this.pumping = false;
    }
    this.reportDrops();
    this.settleWaiters();
  }

  private pumpQueue(): void {
    while (this.queuedCount() > 0 && (this.flushAll || this.inflightBytes < WRITE_HIGH_WATER_BYTES)) {
      const item = this.takeQueued();
      this.queueBytes -= item.bytes;
      let pending: Pending;
      if ('sealed' in item) pending = item.sealed;
      else {
        const sealed: SealedLine = seal(item.json, this.chainState);
        this.chainState = { seq: sealed.seq, hash: sealed.hash };
        pending = { line: sealed.line, bytes: Buffer.byteLength(sealed.line) + 1, seq: sealed.seq, hash: sealed.hash };
      }
      if (!this.handOff(pending)) return;
    }
  }

  /** Gives one line to the rotating file stream; false when the stream cannot take it. */
  private handOff(p: Pending): boolean {
    const transport = this.transport;
    if (!transport) {
      this.requeueFront([p]);
      return false;
    }
    try {
      transport.log({ [MESSAGE]: p.line }, () => undefined);
    } catch (err) {
      // A rotation that cannot create the folder throws from inside write().
      this.requeueFront([p]);
      this.fail(err as Error);
      return false;
    }
    (this.current as Track).pending.push(p);
    this.inflightBytes += p.bytes;
    return true;
  }

  private queuedCount(): number {
    return this.queue.length - this.queueHead;
  }

  private takeQueued(): Queued {
    const item = this.queue[this.queueHead++] as Queued;
    if (this.queueHead === this.queue.length) {
      this.queue = [];
      this.queueHead = 0;
    } else if (this.queueHead > 4096 && this.queueHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.queueHead);
      this.queueHead = 0;
    }
    return item;
  }

  private requeueFront(lines: Pending[]): void {
    if (lines.length === 0) return;
    const items: Queued[] = lines.map((p) => ({ sealed: p, bytes: p.bytes }));
    this.queue = [...items, ...this.queue.slice(this.queueHead)];
    this.queueHead = 0;
    this.queueBytes += items.reduce((n, i) => n + i.bytes, 0);
  }

  private drop(record: Record<string, unknown>): void {
    const time = typeof record.time === 'string' ? record.time : new Date().toISOString();
    if (this.dropped.count === 0) this.dropped.first = time;
    this.dropped.count++;
    this.dropped.total++;
    this.dropped.last = time;
    if (!this.overflowing) {
      this.overflowing = true;
      this.opts.events.overflow({ backlogBytes: this.backlogBytes });
    }
  }

  /** Once there is room again, the stream itself records how many lines it had to drop. */
  private reportDrops(): void {
    if (this.dropped.count === 0 || this.backlogBytes > this.opts.maxBacklogBytes / 2) return;
    const { count, first, last } = this.dropped;
    this.dropped.count = 0;
    this.overflowing = false;
    this.write({ time: new Date().toISOString(), event: 'audit.lines_dropped', level: 'error', stream: this.chain, count, firstTime: first, lastTime: last });
  }

  private idle(): boolean {
    return this.queuedCount() === 0 && this.inflightBytes === 0;
  }

  private settleWaiters(): void {
    if (!this.idle() || this.waiters.length === 0) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w(true);
  }

  // -- the rotating file stream ---------------------------------------------------------------

  private openTransport(): void {
    const dir = this.opts.dir;
    // The file the library opens now; its 'new' event for it arrives a tick later.
    const first: Track = this.newTrack(join(dir, `${this.chain}-${new Date().toISOString().slice(0, 10)}.log`));
    this.skipFirstNew = first.path;
    let transport: RotatingTransport;
    try {
      transport = this.createTransport();
    } catch (err) {
      this.tracks = this.tracks.filter((t) => t !== first);
      this.current = undefined;
      throw err;
    }
    this.attach(transport);
  }

  private createTransport(): RotatingTransport {
    return new DailyRotateFile({
      dirname: this.opts.dir,
      filename: filePattern(this.opts.stream, this.opts.instance),
      datePattern: 'YYYY-MM-DD',
      utc: true,
      // Gzip and retention are done here (see the class comment and sweepRetention).
      zippedArchive: false,
      eol: '\n',
      options: { flags: 'a', mode: LOG_FILE_MODE, fs: this.observerFs },
    } as DailyRotateFile.DailyRotateFileTransportOptions) as RotatingTransport;
  }

  private attach(transport: RotatingTransport): void {
    const stream = transport.logStream;
    // Unheard, an error of the file stream would be thrown and end the process.
    stream.on('error', (err: Error) => {
      if (this.transport === transport) this.fail(err);
    });
    transport.on('new', (file: string) => {
      if (this.transport !== transport) return;
      if (this.skipFirstNew === file) {
        this.skipFirstNew = undefined;
      } else {
        this.newTrack(file);
      }
    });
    transport.on('rotate', (oldFile: string, newFile: string) => {
      for (const t of this.tracks) if (t.path === oldFile) t.rotatedAway = true;
      // Reported after the hand-off that rotated, never from inside it.
      setImmediate(() => this.opts.events.rotated(basename(oldFile), basename(newFile)));
      this.maybeCompress();
      this.queueRetention();
    });
    this.transport = transport;
  }

  private newTrack(path: string): Track {
    const track: Track = { path, pending: [], partial: 0, closed: false, failed: false, rotatedAway: false };
    this.tracks.push(track);
    this.current = track;
    return track;
  }

  private onOpened(path: string, fd: number): void {
    const track = this.tracks.find((t) => t.path === path && t.fd === undefined && !t.closed);
    if (!track) return;
    track.fd = fd;
    this.byFd.set(fd, track);
    // An open file proves nothing: a full disk opens files and refuses their writes. Recovery
    // waits for a line written (onWritten), however long that takes (issue 18, item 6).
  }

  private onOpenFailed(path: string, err: Error): void {
    const track = this.tracks.find((t) => t.path === path && t.fd === undefined && !t.closed);
    if (track) {
      track.failed = true;
      track.closed = true;
    }
    this.fail(err);
  }

  private onWritten(fd: number, bytes: number): void {
    const track = this.byFd.get(fd);
    if (!track) return;
    const file = basename(track.path);
    let n = bytes;
    const before = this.written;
    while (n > 0 && track.pending.length > 0) {
      const head = track.pending[0] as Pending;
      const need = head.bytes - track.partial;
      if (n < need) {
        track.partial += n;
        n = 0;
        break;
      }
      n -= need;
      track.partial = 0;
      track.pending.shift();
      this.inflightBytes -= head.bytes;
      this.written++;
      const h = this.heads.get(file);
      if (h) {
        h.lastSeq = head.seq;
        h.lastHash = head.hash;
      } else this.heads.set(file, { firstSeq: head.seq, lastSeq: head.seq, lastHash: head.hash });
      this.dirtyHeads.add(file);
    }
    if (this.state === 'probing' && this.written > before) this.markRecovered();
    if (this.inflightBytes < WRITE_HIGH_WATER_BYTES / 2 && this.queuedCount() > 0) this.pump();
    else {
      this.reportDrops();
      this.settleWaiters();
    }
  }

  private onWriteFailed(fd: number, err: Error): void {
    const track = this.byFd.get(fd);
    if (track) track.failed = true;
    this.fail(err);
  }

  private onClosed(fd: number): void {
    const track = this.byFd.get(fd);
    this.byFd.delete(fd);
    if (!track) return;
    track.closed = true;
    this.maybeCompress();
  }

  /** Gzips rotated-away files once closed with every line on disk; oldest first, one at a time. */
  private maybeCompress(): void {
    const ready = this.tracks.filter((t) => t.rotatedAway && t.closed && !t.failed && t.pending.length === 0);
    if (ready.length === 0) return;
    this.tracks = this.tracks.filter((t) => !ready.includes(t));
    for (const t of ready) {
      // A file reopened after a refusal has more than one track; compress when the last is done.
      if (this.tracks.some((o) => o.path === t.path)) continue;
      this.compressing = this.compressing.then(() =>
        gzipClosedFile(t.path).then(
          (gz) => this.opts.events.compressed(basename(gz)),
          (err) => this.opts.events.warning(`cannot gzip ${basename(t.path)}; retried at the next start`, err),
        ),
      );
    }
  }

  // -- failure and recovery -------------------------------------------------------------------

  private fail(err: Error): void {
    this.lastError = err;
    if (this.state === 'closed' || this.state === 'degraded') return;
    const wasOk = this.state === 'ok';
    this.state = 'degraded';
    const transport = this.transport;
    this.transport = undefined;
    if (transport) {
      try {
        transport.close();
      } catch {
        // the stream is already destroyed; nothing to end
      }
    }
    if (wasOk) {
      this.degradedAt = Date.now();
      this.retryDelay = this.opts.retryFirstMs ?? RETRY_FIRST_MS;
      this.opts.events.degraded(err);
    } else {
      this.retryDelay = Math.min(this.retryDelay * 2, this.opts.retryMaxMs ?? RETRY_MAX_MS);
    }
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this.flushAll) {
      // Closing: no retries, and whoever waits for a flush learns now that it did not happen.
      const waiters = this.waiters;
      this.waiters = [];
      for (const w of waiters) w(false);
      return;
    }
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void this.recover(), this.retryDelay);
    this.retryTimer.unref();
  }

  /**
   * Takes back every line the kernel did not confirm (in order, chain fields kept), cuts the
   * fragment a half-done write left, and opens the file again.
   */
  private async recover(): Promise<void> {
    if (this.state !== 'degraded') return;
    // A stream still closing may yet confirm lines: taking them back now would write them twice.
    if (this.tracks.some((t) => !t.closed) && this.closeWaits++ < MAX_CLOSE_WAITS && !this.flushAll) {
      this.scheduleRetry();
      return;
    }
    this.closeWaits = 0;
    const lost: Pending[] = [];
    for (const t of this.tracks) {
      if (t.partial > 0) this.tornFiles.add(t.path);
      lost.push(...t.pending);
      this.inflightBytes -= t.pending.reduce((n, p) => n + p.bytes, 0);
      t.pending.length = 0;
      t.partial = 0;
      t.failed = true;
    }
    for (const t of this.tracks) if (t.fd !== undefined) this.byFd.delete(t.fd);
    this.tracks = [];
    this.current = undefined;
    this.requeueFront(lost);
    try {
      for (const path of this.tornFiles) {
        await cutTornTail(path);
        this.tornFiles.delete(path);
      }
      await this.open();
    } catch (err) {
      this.lastError = err as Error;
      this.state = 'degraded';
      this.retryDelay = Math.min(this.retryDelay * 2, this.opts.retryMaxMs ?? RETRY_MAX_MS);
      this.scheduleRetry();
      return;
    }
    this.state = 'probing';
    this.pump();
  }

  private markRecovered(): void {
    this.state = 'ok';
    this.opts.events.recovered({ downMs: Date.now() - this.degradedAt, heldLines: this.queuedCount(), error: this.lastError?.message ?? '' });
    this.maybeCompress();
  }
}
