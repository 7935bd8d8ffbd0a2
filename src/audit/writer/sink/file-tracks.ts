import { basename } from 'node:path';
import { cutTornTail } from '../tail.js';
import type { PendingLine } from './line-queue.js';

/** One open file of the sink: lines handed to it, in order, until the kernel has them all. */
interface Track {
  readonly path: string;
  fd?: number;
  readonly pending: PendingLine[];
  /** Bytes of pending[0] already written (a write that stopped mid-line). */
  partial: number;
  closed: boolean;
  failed: boolean;
  rotatedAway: boolean;
}

/**
 * The files the sink has handed lines to, and how far the kernel has taken each, byte by byte
 * (from the fs-tap.ts observer). New lines go to the newest track. A file reopened after a
 * refusal has more than one track.
 */
export class FileTracks {
  private tracks: Track[] = [];
  private current: Track | undefined;
  private readonly byFd = new Map<number, Track>();
  /** Bytes handed to the file stream and not yet on disk. */
  private inflight = 0;
  /** Files a write stopped in mid-line: cut back to their last whole line before the next open. */
  private readonly tornFiles = new Set<string>();

  get inflightBytes(): number {
    return this.inflight;
  }

  /** True while a stream may still confirm lines (a track not closed yet). */
  get anyOpen(): boolean {
    return this.tracks.some((t) => !t.closed);
  }

  /** Starts the track of a file the stream opens; new lines go to it. Returns its path. */
  add(path: string): string {
    const track: Track = { path, pending: [], partial: 0, closed: false, failed: false, rotatedAway: false };
    this.tracks.push(track);
    this.current = track;
    return track.path;
  }

  /** Forgets the newest track: its stream could not be created. */
  discardCurrent(): void {
    this.tracks = this.tracks.filter((t) => t !== this.current);
    this.current = undefined;
  }

  /** A line handed to the stream, which writes it to the newest file. */
  handedOff(line: PendingLine): void {
    (this.current as Track).pending.push(line);
    this.inflight += line.bytes;
  }

  opened(path: string, fd: number): void {
    const track = this.unopened(path);
    if (!track) return;
    track.fd = fd;
    this.byFd.set(fd, track);
  }

  openFailed(path: string): void {
    const track = this.unopened(path);
    if (track) {
      track.failed = true;
      track.closed = true;
    }
  }

  /** `bytes` of `fd` reached the kernel: the lines they complete, and their file's name (undefined: not our fd). */
  written(fd: number, bytes: number): { file: string; lines: PendingLine[] } | undefined {
    const track = this.byFd.get(fd);
    if (!track) return undefined;
    const lines: PendingLine[] = [];
    let n = bytes;
    while (n > 0 && track.pending.length > 0) {
      const head = track.pending[0] as PendingLine;
      const need = head.bytes - track.partial;
      if (n < need) {
        track.partial += n;
        break;
      }
      n -= need;
      track.partial = 0;
      track.pending.shift();
      this.inflight -= head.bytes;
      lines.push(head);
    }
    return { file: basename(track.path), lines };
  }

  writeFailed(fd: number): void {
    const track = this.byFd.get(fd);
    if (track) track.failed = true;
  }

  /** The stream closed `fd`; false when it was not ours. */
  closed(fd: number): boolean {
    const track = this.byFd.get(fd);
    this.byFd.delete(fd);
    if (!track) return false;
    track.closed = true;
    return true;
  }

  rotatedAway(path: string): void {
    for (const t of this.tracks) if (t.path === path) t.rotatedAway = true;
  }

  /** Files ready to gzip (rotated away, closed with every line on disk), oldest first; their tracks are forgotten. */
  takeCompressible(): string[] {
    const ready = this.tracks.filter((t) => t.rotatedAway && t.closed && !t.failed && t.pending.length === 0);
    if (ready.length === 0) return [];
    this.tracks = this.tracks.filter((t) => !ready.includes(t));
    // A file reopened after a refusal has more than one track; compress when the last is done.
    return ready.filter((t) => !this.tracks.some((o) => o.path === t.path)).map((t) => t.path);
  }

  /** Takes back every line the kernel did not confirm, in order, and forgets every track. */
  takeBack(): PendingLine[] {
    const lost: PendingLine[] = [];
    for (const t of this.tracks) {
      if (t.partial > 0) this.tornFiles.add(t.path);
      lost.push(...t.pending);
      this.inflight -= t.pending.reduce((n, p) => n + p.bytes, 0);
      t.pending.length = 0;
      t.partial = 0;
      t.failed = true;
    }
    for (const t of this.tracks) if (t.fd !== undefined) this.byFd.delete(t.fd);
    this.tracks = [];
    this.current = undefined;
    return lost;
  }

  /** Cuts the fragments half-done writes left (a file that cannot be cut yet stays listed). */
  async cutTornTails(): Promise<void> {
    for (const path of this.tornFiles) {
      await cutTornTail(path);
      this.tornFiles.delete(path);
    }
  }

  /** The text of every line handed on and not confirmed, oldest first. */
  lines(): string[] {
    return this.tracks.flatMap((t) => t.pending.map((p) => p.line));
  }

  private unopened(path: string): Track | undefined {
    return this.tracks.find((t) => t.path === path && t.fd === undefined && !t.closed);
  }
}
