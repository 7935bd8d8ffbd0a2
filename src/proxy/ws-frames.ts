import { randomBytes } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/** RFC 6455 §5.5: a control frame's payload is at most 125 bytes, 2 of them the close code. */
const MAX_REASON_BYTES = 123;
const OPCODE_CLOSE = 0x8;

/**
 * A close frame (RFC 6455 §5.5.1). Frames to the client are unmasked; frames to the upstream
 * travel in the client-to-server direction and must be masked (§5.3), or the upstream fails
 * the connection with 1002.
 */
export function closeFrame(code: number, reason: string, masked: boolean): Buffer {
  let text = Buffer.from(reason, 'utf8');
  if (text.length > MAX_REASON_BYTES) text = text.subarray(0, MAX_REASON_BYTES);
  const payload = Buffer.alloc(2 + text.length);
  payload.writeUInt16BE(code, 0);
  text.copy(payload, 2);
  const head = Buffer.from([0x80 | OPCODE_CLOSE, (masked ? 0x80 : 0) | payload.length]);
  if (!masked) return Buffer.concat([head, payload]);
  const mask = randomBytes(4);
  for (let i = 0; i < payload.length; i++) payload[i] = (payload[i] as number) ^ (mask[i % 4] as number);
  return Buffer.concat([head, mask, payload]);
}

/** How long a frame header is, once its first two bytes are known. */
function headerLength(b1: number): number {
  const len7 = b1 & 0x7f;
  return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (b1 & 0x80 ? 4 : 0);
}

function payloadLength(head: Buffer): number {
  const len7 = (head[1] as number) & 0x7f;
  if (len7 === 126) return head.readUInt16BE(2);
  // A 64-bit length beyond 2^53 cannot be sent in practice; Number() keeps the count monotone.
  if (len7 === 127) return Number(head.readBigUInt64BE(2));
  return len7;
}

/**
 * Passes one direction of a websocket through unchanged while following its frame boundaries
 * (headers only; payloads are never copied), so that the gateway can end the stream with a
 * frame of its own without cutting a frame in half. `finish()` sends that frame at the next
 * boundary and drops everything after it; the bytes are still parsed, so the peer's own close
 * frame is seen (`onFrame`) even then.
 */
export class FrameGate extends Transform {
  private readonly head = Buffer.alloc(14);
  private headLen = 0;
  private remaining = 0;
  private final: Buffer | undefined;
  private finished = false;

  constructor(private readonly onFrame?: (opcode: number) => void) {
    super();
  }

  /** True between two frames (nothing of a frame started and not ended). */
  get atBoundary(): boolean {
    return this.remaining === 0 && this.headLen === 0;
  }

  /** Whether `finish()` was called and its frame (if any) has been sent or given up on. */
  get done(): boolean {
    return this.finished;
  }

  /**
   * Ends this direction with `frame`: now when between frames, else (`wait`) after the frame in
   * flight. Without `wait`, a frame in flight is cut instead: its remaining bytes stop here and
   * `frame` is not sent (the peer could not parse it after half a frame). Returns whether
   * `frame` was or will be sent. A second call can only give up a frame still waiting.
   */
  finish(frame: Buffer | undefined, wait: boolean): boolean {
    if (this.finished) return false;
    if (this.atBoundary) {
      if (frame) this.push(frame);
      this.final = undefined;
      this.finished = true;
      return true;
    }
    if (!wait) {
      this.final = undefined;
      this.finished = true;
      return false;
    }
    this.final ??= frame ?? Buffer.alloc(0);
    return true;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.finished) {
      this.scan(chunk, 0, false);
      cb();
      return;
    }
    if (this.final === undefined) {
      this.scan(chunk, 0, false);
      cb(null, chunk);
      return;
    }
    // A frame of ours is waiting: pass the rest of the frame in flight, then it, then nothing.
    const end = this.scan(chunk, 0, true);
    if (end > 0) this.push(chunk.subarray(0, end));
    if (this.atBoundary) {
      if (this.final.length > 0) this.push(this.final);
      this.final = undefined;
      this.finished = true;
      this.scan(chunk, end, false);
    }
    cb();
  }

  /** Follows frame headers from `from`; with `stop`, returns at the first boundary reached. */
  private scan(chunk: Buffer, from: number, stop: boolean): number {
    let i = from;
    for (;;) {
      if (stop && this.atBoundary) return i;
      if (i >= chunk.length) return i;
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, chunk.length - i);
        this.remaining -= n;
        i += n;
        continue;
      }
      this.head[this.headLen++] = chunk[i++] as number;
      if (this.headLen < 2 || this.headLen < headerLength(this.head[1] as number)) continue;
      this.remaining = payloadLength(this.head);
      this.headLen = 0;
      this.onFrame?.((this.head[0] as number) & 0x0f);
    }
  }
}
