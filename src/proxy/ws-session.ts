import type { Duplex } from 'node:stream';
import { FrameGate, closeFrame } from './ws-frames.js';

/** How long the client has to answer the gateway's close frame before its connection is ended. */
export const WS_CLOSE_GRACE_MS = 1_000;
/** After this, both connections are destroyed whatever state they are in (RFC 6455 §7.1.1). */
export const WS_CLOSE_TIMEOUT_MS = 5_000;

/**
 * Why the gateway closes a websocket. 1008 (policy violation) is the registered code for "the
 * credentials no longer allow this", so every client library reads it as a refusal rather than
 * a network failure (1006); the reason is the stable error code of docs/errors.md, the same
 * one the reconnect's 401 carries, so client code switches on one vocabulary. 1001 (going away)
 * is the registered code for a server that stops: a client should reconnect, to another instance.
 */
export const WS_CLOSE = {
  expired: { code: 1008, reason: 'AUTH_EXPIRED' },
  revoked: { code: 1008, reason: 'AUTH_REVOKED' },
  disabled: { code: 1008, reason: 'AUTH_DISABLED' },
  removed: { code: 1008, reason: 'AUTH_INVALID' },
  shutdown: { code: 1001, reason: 'SHUTTING_DOWN' },
  // Blocks (src/containment/): a blocked party is refused like bad credentials; a route under
  // maintenance is 1013 "try again later", the registered code for a temporary overload or pause.
  blocked: { code: 1008, reason: 'CLIENT_BLOCKED' },
  accountBlocked: { code: 1008, reason: 'ACCOUNT_BLOCKED' },
  maintenance: { code: 1013, reason: 'ROUTE_MAINTENANCE' },
} as const satisfies Record<string, { code: number; reason: string }>;

export type CloseReason = (typeof WS_CLOSE)[keyof typeof WS_CLOSE];

export interface WsSessionOptions {
  graceMs?: number;
  timeoutMs?: number;
}

const CLOSE_OPCODE = 0x8;

/**
 * One proxied websocket, able to end itself with a close frame. http-proxy pipes the two
 * sockets byte for byte; once it has, `accept()` puts a FrameGate in each direction, so a close
 * frame goes in only between two frames: the client reads every frame the upstream sent before
 * it, whole, then the close code and reason. The upstream gets a (masked) close frame too when
 * the client is between frames; when not, its connection is ended, because more client bytes
 * must not reach it once the credentials are void. The client's own close reply (or the grace)
 * ends both connections; the timeout destroys them.
 */
export class WsSession {
  private upstream: Duplex | undefined;
  private down: FrameGate | undefined;
  private up: FrameGate | undefined;
  private pending: CloseReason | undefined;
  private reason: CloseReason | undefined;
  private accepted = false;
  private closing = false;
  private gone = false;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly graceMs: number;
  private readonly timeoutMs: number;

  constructor(
    private readonly client: Duplex,
    options: WsSessionOptions = {},
  ) {
    this.graceMs = options.graceMs ?? WS_CLOSE_GRACE_MS;
    this.timeoutMs = options.timeoutMs ?? WS_CLOSE_TIMEOUT_MS;
    client.once('close', () => {
      this.gone = true;
      for (const t of this.timers) clearTimeout(t);
      // A client connection destroyed without an error left http-proxy's upstream half open.
      const upstream = this.upstream;
      if (upstream && !upstream.destroyed) {
        upstream.end();
        // Cleared as soon as the upstream closes: a pending timer kept each finished tunnel (its
        // sockets and gates) in memory for the whole timeout (leak-websocket: +5.7 MB per 1000).
        const timer = setTimeout(() => upstream.destroy(), this.timeoutMs).unref();
        upstream.once('close', () => clearTimeout(timer));
      }
    });
  }

  /** Calls `listener` once the client connection is gone. */
  onGone(listener: () => void): void {
    if (this.gone) listener();
    else this.client.once('close', listener);
  }

  /** Why the gateway closed this websocket, when it did. */
  get closedWith(): CloseReason | undefined {
    return this.closing ? this.reason : this.pending;
  }

  /** True once the upstream accepted: the client reads websocket frames, never an HTTP answer. */
  get upgraded(): boolean {
    return this.accepted;
  }

  /**
   * The upstream answered 101 (called before http-proxy writes it on and pipes the sockets).
   * http-proxy 1.18 (pinned) pipes upstream→client, then client→upstream; the second pipe()
   * emits 'pipe' on the upstream socket, so both exist then and no byte has flowed yet (a pipe
   * starts the flow on the next tick): splice a gate into each direction there.
   */
  accept(upstream: Duplex): void {
    this.accepted = true;
    upstream.once('pipe', () => this.splice(upstream));
  }

  private splice(upstream: Duplex): void {
    if (this.gone) {
      upstream.destroy();
      return;
    }
    this.upstream = upstream;
    const down = new FrameGate();
    const up = new FrameGate((opcode) => {
      if (opcode === CLOSE_OPCODE && this.closing) this.clientReplied();
    });
    this.down = down;
    this.up = up;
    upstream.unpipe(this.client);
    this.client.unpipe(upstream);
    upstream.pipe(down).pipe(this.client);
    this.client.pipe(up).pipe(upstream);
    if (this.pending) this.close(this.pending);
  }

  /** Closes with a close frame saying why; before the upstream accepted, as soon as it does. */
  close(reason: CloseReason): void {
    if (this.gone || this.closing) return;
    const { upstream, down, up } = this;
    if (!upstream || !down || !up) {
      this.pending ??= reason;
      return;
    }
    this.closing = true;
    this.reason = reason;
    down.finish(closeFrame(reason.code, reason.reason, false), true);
    if (!up.finish(closeFrame(reason.code, reason.reason, true), false)) upstream.end();
    this.later(this.graceMs, () => {
      if (down.done) this.endBoth();
    });
    this.later(this.timeoutMs, () => {
      this.client.destroy();
      upstream.destroy();
    });
  }

  /** The client answered the close: the server ends the TCP connection first (RFC 6455 §7.1.1). */
  private clientReplied(): void {
    // Our close frame may still wait behind a long frame: the client is closing anyway.
    this.down?.finish(undefined, false);
    this.endBoth();
  }

  private endBoth(): void {
    this.client.end();
    this.upstream?.end();
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(fn, ms);
    t.unref();
    this.timers.push(t);
  }
}
