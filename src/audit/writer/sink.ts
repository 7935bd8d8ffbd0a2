import { mkdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { recordJson, seal, type ChainState } from './chain.js';
import { chainName, fileNameFor, type StreamName } from './files.js';
import { tapFs, type StreamFs } from './fs-tap.js';
import { DroppedLines } from './sink/dropped-lines.js';
import { FileTracks } from './sink/file-tracks.js';
import { FlushWaiters } from './sink/flush-waiters.js';
import { Housekeeping } from './sink/housekeeping.js';
import { LineQueue, type PendingLine } from './sink/line-queue.js';
import { RotatingFile } from './sink/rotating-file.js';
import { SinkHealth, type SinkState } from './sink/sink-health.js';
import { WrittenLines, type FileHead } from './sink/written-lines.js';
import type { SecurityEvent } from '../../log/events.js';

export type { FileHead } from './sink/written-lines.js';

/** Bytes handed to the file stream and not yet on disk before the sink holds lines back. */
export const WRITE_HIGH_WATER_BYTES = 1024 * 1024;
/** First and longest wait between attempts to write again after the disk refused. */
export const RETRY_FIRST_MS = 1_000;
export const RETRY_MAX_MS = 30_000;
/** Room a line takes beyond its record: the chain fields and the newline. */
const CHAIN_OVERHEAD_BYTES = 170;
const DIR_MODE = 0o750;

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
  /** Where the chain continues from (see resume.ts). */
  readonly chain: ChainState;
  readonly events: SinkEvents;
  readonly retryFirstMs?: number;
  readonly retryMaxMs?: number;
  /** Test seam: the file system calls of the write streams (a slow or failing disk). */
  readonly fs?: StreamFs;
}

export interface SinkStatus {
  readonly chain: string;
  readonly state: SinkState;
  readonly queuedLines: number;
  readonly backlogBytes: number;
  readonly writtenLines: number;
  readonly droppedLines: number;
  readonly lastError?: string;
}

/**
 * One log stream on disk: winston-daily-rotate-file does the daily files (UTC days, sink/rotating-file.ts);
 * this adds what it lacks for an audit log:
 * - every line is chained (chain.ts) at the moment it is handed to the file, in file order;
 * - memory is bounded: at most WRITE_HIGH_WATER_BYTES wait in the file stream (sink/file-tracks.ts),
 *   the rest in a queue (sink/line-queue.ts) of at most `maxBacklogBytes`; beyond that lines are
 *   dropped, counted, and a record of the drop is written into the stream itself when room returns;
 * - a refused write (disk full, directory not writable) never crashes the process: the lines
 *   the kernel did not take are queued again, in order, with their chain fields, and written
 *   when the disk accepts them (retried with backoff: sink/sink-health.ts);
 * - closed days are gzipped only once every byte is on disk (the library's own gzip reads the
 *   old file while its last writes are still in flight), and retention goes by the day in the
 *   file name (sink/housekeeping.ts).
 */
export class StreamSink {
  readonly chain: string;
  private readonly opts: SinkOptions;
  private chainState: ChainState;
  private readonly queue = new LineQueue();
  private readonly dropped = new DroppedLines();
  private readonly tracks = new FileTracks();
  private readonly written = new WrittenLines();
  private readonly waiters = new FlushWaiters();
  private readonly health: SinkHealth;
  private readonly file: RotatingFile;
  private readonly housekeeping: Housekeeping;
  /** Closing: everything queued goes to the file at once, and a refusal is not retried. */
  private closing = false;
  private pumping = false;

  constructor(opts: SinkOptions) {
    this.opts = opts;
    this.chain = chainName(opts.stream, opts.instance);
    this.chainState = opts.chain;
    this.health = new SinkHealth({ firstMs: opts.retryFirstMs ?? RETRY_FIRST_MS, maxMs: opts.retryMaxMs ?? RETRY_MAX_MS }, () => void this.recover());
    this.housekeeping = new Housekeeping({ dir: opts.dir, chain: this.chain, retentionDays: opts.retentionDays, events: opts.events });
    const fs = tapFs(
      {
        opened: (path, fd) => this.onOpened(path, fd),
        openFailed: (path, err) => this.onOpenFailed(path, err),
        written: (fd, bytes) => this.onWritten(fd, bytes),
        writeFailed: (fd, err) => this.onWriteFailed(fd, err),
        closed: (fd) => this.onClosed(fd),
      },
      opts.fs,
    );
    this.file = new RotatingFile(
      { dir: opts.dir, stream: opts.stream, instance: opts.instance, fs },
      { failed: (err) => this.fail(err), newFile: (path) => this.tracks.add(path), rotated: (oldFile, newFile) => this.onRotated(oldFile, newFile) },
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

  /** Queues one record (already redacted); it is chained and written in arrival order. */
  write(record: Record<string, unknown>): void {
    if (this.health.state === 'closed') return;
    const json = recordJson(record);
    const bytes = Buffer.byteLength(json) + CHAIN_OVERHEAD_BYTES;
    if (this.backlogBytes + bytes > this.opts.maxBacklogBytes) {
      this.drop(record);
      return;
    }
    this.queue.push(json, bytes);
    this.pump();
  }

  /** True when lines reach the disk: not failing, not probing, not dropping. */
  get healthy(): boolean {
    return this.health.state === 'ok' && !this.dropped.overflowing;
  }

  get backlogBytes(): number {
    return this.queue.bytes + this.tracks.inflightBytes;
  }

  status(): SinkStatus {
    const lastError = this.health.lastError;
    return {
      chain: this.chain,
      state: this.health.state,
      queuedLines: this.queue.length,
      backlogBytes: this.backlogBytes,
      writtenLines: this.written.count,
      droppedLines: this.dropped.total,
      ...(lastError ? { lastError: lastError.message } : {}),
    };
  }

  /** Heads of the files written since the last call (file name → first/last seq, last hash). */
  takeHeads(): Map<string, FileHead> {
    return this.written.takeHeads();
  }

  /** Resolves once every queued line is on disk, or after `timeoutMs` (false then). */
  flush(timeoutMs: number): Promise<boolean> {
    if (this.idle()) return Promise.resolve(true);
    return this.waiters.wait(timeoutMs);
  }

  /**
   * Writes everything still queued (one more attempt now if the disk was refusing), closes the
   * file, and returns the lines that could not be written within `timeoutMs`, for the caller
   * to put on another channel.
   */
  async close(timeoutMs: number): Promise<string[]> {
    if (this.health.state === 'closed') return [];
    this.closing = true;
    const deadline = Date.now() + timeoutMs;
    if (this.health.state === 'degraded') {
      this.health.cancelRetry();
      await this.recover();
    }
    this.pump();
    // A disk that still refuses gets no more waiting: what is left goes to the caller.
    if (this.health.state !== 'degraded') await this.flush(Math.max(0, deadline - Date.now()));
    this.health.cancelRetry();
    const unwritten = [...this.tracks.lines(), ...this.queue.lines()];
    this.health.close();
    await this.file.close(deadline);
    await this.housekeeping.done();
    return unwritten;
  }

  /** Creates the folder and opens today's file. Throws when that is impossible right now. */
  private async open(): Promise<void> {
    await mkdir(this.opts.dir, { recursive: true, mode: DIR_MODE });
    // The file the library opens now; its 'new' event for it arrives a tick later.
    const first = this.tracks.add(join(this.opts.dir, fileNameFor(this.chain, new Date().toISOString().slice(0, 10))));
    try {
      this.file.open(first);
    } catch (err) {
      this.tracks.discardCurrent();
      throw err;
    }
    // Retention runs in the same queue as compression, so it never removes a file being gzipped.
    this.housekeeping.queueRetention();
  }

  // -- writing -------------------------------------------------------------------------------

  private pump(): void {
    // Not re-entered: a line logged from inside a hand-off (a rotation event) waits in the queue,
    // or it would reach the file before the line being handed off, out of chain order.
    const state = this.health.state;
    if ((state !== 'ok' && state !== 'probing') || this.pumping) return;
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
    while (this.queue.length > 0 && (this.closing || this.tracks.inflightBytes < WRITE_HIGH_WATER_BYTES)) {
      const item = this.queue.take();
      const line = 'sealed' in item ? item.sealed : this.seal(item.json);
      if (!this.handOff(line)) return;
    }
  }

  /** Chains a record's JSON onto the line before it. */
  private seal(json: string): PendingLine {
    const sealed = seal(json, this.chainState);
    this.chainState = { seq: sealed.seq, hash: sealed.hash };
    return { line: sealed.line, bytes: Buffer.byteLength(sealed.line) + 1, seq: sealed.seq, hash: sealed.hash };
  }

  /** Gives one line to the rotating file stream; false when the stream cannot take it. */
  private handOff(line: PendingLine): boolean {
    let taken: boolean;
    try {
      taken = this.file.write(line.line);
    } catch (err) {
      // A rotation that cannot create the folder throws from inside write().
      this.queue.putBack([line]);
      this.fail(err as Error);
      return false;
    }
    if (!taken) {
      this.queue.putBack([line]);
      return false;
    }
    this.tracks.handedOff(line);
    return true;
  }

  private drop(record: Record<string, unknown>): void {
    const time = typeof record.time === 'string' ? record.time : new Date().toISOString();
    if (this.dropped.add(time)) this.opts.events.overflow({ backlogBytes: this.backlogBytes });
  }

  /** Once there is room again, the stream itself records how many lines it had to drop. */
  private reportDrops(): void {
    if (!this.dropped.unreported || this.backlogBytes > this.opts.maxBacklogBytes / 2) return;
    const { count, first, last } = this.dropped.take();
    this.write({ time: new Date().toISOString(), event: 'audit.lines_dropped' satisfies SecurityEvent, level: 'error', stream: this.chain, count, firstTime: first, lastTime: last });
  }

  private idle(): boolean {
    return this.queue.length === 0 && this.tracks.inflightBytes === 0;
  }

  private settleWaiters(): void {
    if (this.idle()) this.waiters.settle(true);
  }

  // -- what the file system reports (fs-tap.ts) -----------------------------------------------

  private onOpened(path: string, fd: number): void {
    this.tracks.opened(path, fd);
    // An open file proves nothing: a full disk opens files and refuses their writes. Recovery
    // waits for a line written (onWritten), however long that takes (issue 18, item 6).
  }

  private onOpenFailed(path: string, err: Error): void {
    this.tracks.openFailed(path);
    this.fail(err);
  }

  private onWritten(fd: number, bytes: number): void {
    const done = this.tracks.written(fd, bytes);
    if (!done) return;
    for (const line of done.lines) this.written.add(done.file, line);
    if (this.health.state === 'probing' && done.lines.length > 0) this.markRecovered();
    if (this.tracks.inflightBytes < WRITE_HIGH_WATER_BYTES / 2 && this.queue.length > 0) this.pump();
    else {
      this.reportDrops();
      this.settleWaiters();
    }
  }

  private onWriteFailed(fd: number, err: Error): void {
    this.tracks.writeFailed(fd);
    this.fail(err);
  }

  private onClosed(fd: number): void {
    if (this.tracks.closed(fd)) this.maybeCompress();
  }

  private onRotated(oldFile: string, newFile: string): void {
    this.tracks.rotatedAway(oldFile);
    // Reported after the hand-off that rotated, never from inside it.
    setImmediate(() => this.opts.events.rotated(basename(oldFile), basename(newFile)));
    this.maybeCompress();
    this.housekeeping.queueRetention();
  }

  /** Gzips rotated-away files once closed with every line on disk; oldest first, one at a time. */
  private maybeCompress(): void {
    for (const path of this.tracks.takeCompressible()) this.housekeeping.queueGzip(path);
  }

  // -- failure and recovery -------------------------------------------------------------------

  private fail(err: Error): void {
    const change = this.health.fail(err);
    if (!change) return;
    this.file.abandon();
    if (change === 'outage') this.opts.events.degraded(err);
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this.closing) {
      // Closing: no retries, and whoever waits for a flush learns now that it did not happen.
      this.waiters.settle(false);
      return;
    }
    this.health.scheduleRetry();
  }

  /**
   * Takes back every line the kernel did not confirm (in order, chain fields kept), cuts the
   * fragment a half-done write left, and opens the file again.
   */
  private async recover(): Promise<void> {
    if (this.health.state !== 'degraded') return;
    // A stream still closing may yet confirm lines: taking them back now would write them twice.
    if (this.tracks.anyOpen && this.health.mayWaitForClose() && !this.closing) {
      this.scheduleRetry();
      return;
    }
    this.health.stopWaitingForClose();
    this.queue.putBack(this.tracks.takeBack());
    try {
      await this.tracks.cutTornTails();
      await this.open();
    } catch (err) {
      this.health.reopenFailed(err as Error);
      this.scheduleRetry();
      return;
    }
    this.health.probing();
    this.pump();
  }

  private markRecovered(): void {
    const { downMs, error } = this.health.recovered();
    this.opts.events.recovered({ downMs, heldLines: this.queue.length, error });
    this.maybeCompress();
  }
}
