/** A line chained and handed on: its text, its bytes on disk (with the newline), its place in the chain. */
export interface PendingLine {
  readonly line: string;
  readonly bytes: number;
  readonly seq: number;
  readonly hash: string;
}

/**
 * A queued line: a record's JSON, chained only when it leaves the queue (so chain order is file
 * order), or a line taken back after a refused write, which keeps its chain fields.
 */
export type QueuedLine = { readonly json: string; readonly bytes: number } | { readonly sealed: PendingLine; readonly bytes: number };

/** Lines waiting for the file, oldest first, and the bytes they hold. */
export class LineQueue {
  /** Oldest at `head` (an index, so taking one is O(1)). */
  private items: QueuedLine[] = [];
  private head = 0;
  private queuedBytes = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  get bytes(): number {
    return this.queuedBytes;
  }

  push(json: string, bytes: number): void {
    this.items.push({ json, bytes });
    this.queuedBytes += bytes;
  }

  /** Takes the oldest line; call only when `length` > 0. */
  take(): QueuedLine {
    const item = this.items[this.head++] as QueuedLine;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head > 4096 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    this.queuedBytes -= item.bytes;
    return item;
  }

  /** Puts chained lines back in front, in their order: they were handed on before anything still queued. */
  putBack(lines: readonly PendingLine[]): void {
    if (lines.length === 0) return;
    const items: QueuedLine[] = lines.map((p) => ({ sealed: p, bytes: p.bytes }));
    this.items = [...items, ...this.items.slice(this.head)];
    this.head = 0;
    this.queuedBytes += items.reduce((n, i) => n + i.bytes, 0);
  }

  /** The text of every queued line, oldest first (a taken-back line with its chain fields). */
  lines(): string[] {
    return this.items.slice(this.head).map((q) => ('sealed' in q ? q.sealed.line : q.json));
  }
}
