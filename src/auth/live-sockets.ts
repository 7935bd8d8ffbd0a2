import type { Duplex } from 'node:stream';
import type { Principal } from '../context.js';
import type { RevocationList } from './revocation.js';

/**
 * Destroys a client socket with an error: http-proxy ends the upstream half of a websocket only
 * on the client socket's 'error' (a plain destroy() left the upstream connection open).
 */
function cut(socket: Duplex, reason: string): void {
  // The forwarder listens for 'error' on every proxied socket; never let this one go unhandled.
  if (socket.listenerCount('error') === 0) socket.on('error', () => undefined);
  socket.destroy(new Error(reason));
}

/** How often open websockets' accounts are checked again (the account status cache is 5 s too). */
export const ACCOUNT_RECHECK_MS = 5_000;

export type AccountStatus = (subject: string) => Promise<'ok' | 'disabled' | 'unknown'>;

interface Tracked {
  readonly jti: string;
  readonly subject: string;
}

/**
 * Open websockets and the credentials they were opened with: each is closed when its token
 * expires, at once when the token is revoked on any instance, and within about two
 * ACCOUNT_RECHECK_MS when its account is disabled or removed (an HTTP request would be refused
 * then; a websocket opened before must not outlive that by the token's whole lifetime). When
 * the account store cannot answer, open sockets stay open: new requests are refused meanwhile.
 */
export class LiveSockets {
  private readonly byToken = new Map<string, Set<Duplex>>();
  private readonly sockets = new Map<Duplex, Tracked>();
  private readonly timer: NodeJS.Timeout | undefined;
  private checking = false;

  constructor(
    revocations: RevocationList,
    private readonly accountStatus?: AccountStatus,
    recheckMs = ACCOUNT_RECHECK_MS,
  ) {
    revocations.onRevoked((jti) => {
      for (const s of this.byToken.get(jti) ?? []) cut(s, 'websocket token revoked');
    });
    if (accountStatus) {
      this.timer = setInterval(() => void this.recheckAccounts(), recheckMs);
      this.timer.unref();
    }
  }

  track(socket: Duplex, principal: Principal): void {
    const jti = principal.tokenId;
    if (!jti) return;
    let set = this.byToken.get(jti);
    if (!set) this.byToken.set(jti, (set = new Set()));
    set.add(socket);
    this.sockets.set(socket, { jti, subject: principal.subject });
    const timer = principal.expiresAt !== undefined ? setTimeout(() => cut(socket, 'websocket token expired'), Math.max(0, principal.expiresAt - Date.now())) : undefined;
    timer?.unref();
    socket.once('close', () => {
      clearTimeout(timer);
      set.delete(socket);
      this.sockets.delete(socket);
      if (set.size === 0) this.byToken.delete(jti);
    });
  }

  /** Closes the websockets of accounts that are disabled or gone; one lookup per account. */
  async recheckAccounts(): Promise<void> {
    const status = this.accountStatus;
    if (!status || this.checking || this.sockets.size === 0) return;
    this.checking = true;
    try {
      const bySubject = new Map<string, Duplex[]>();
      for (const [socket, t] of this.sockets) {
        const list = bySubject.get(t.subject);
        if (list) list.push(socket);
        else bySubject.set(t.subject, [socket]);
      }
      for (const [subject, sockets] of bySubject) {
        const s = await status(subject).catch(() => 'ok' as const);
        if (s === 'ok') continue;
        for (const socket of sockets) cut(socket, `websocket account ${s}`);
      }
    } finally {
      this.checking = false;
    }
  }

  get size(): number {
    return this.sockets.size;
  }

  close(): void {
    clearInterval(this.timer);
  }
}
