import type { Principal } from '../context.js';
import { WS_CLOSE, type CloseReason } from '../proxy/ws-session.js';
import type { RevocationList } from './revocation.js';

/** A websocket the gateway can end with a close frame (a WsSession). */
export interface LiveSocket {
  close(reason: CloseReason): void;
  onGone(listener: () => void): void;
}

/** How often open websockets' accounts are checked again (the account status cache is 5 s too). */
export const ACCOUNT_RECHECK_MS = 5_000;

export type AccountStatus = (subject: string) => Promise<'ok' | 'disabled' | 'unknown'>;

interface Tracked {
  readonly jti: string;
  readonly subject: string;
}

/**
 * Open websockets and the credentials they were opened with: each is closed, with a close frame
 * saying why (WS_CLOSE), when its token expires, at once when the token is revoked on any
 * instance, and within about two ACCOUNT_RECHECK_MS when its account is disabled or removed (an
 * HTTP request would be refused then; a websocket opened before must not outlive that by the
 * token's whole lifetime). When
 * the account store cannot answer, open sockets stay open: new requests are refused meanwhile.
 */
export class LiveSockets {
  private readonly byToken = new Map<string, Set<LiveSocket>>();
  private readonly sockets = new Map<LiveSocket, Tracked>();
  private readonly timer: NodeJS.Timeout | undefined;
  private checking = false;

  constructor(
    revocations: RevocationList,
    private readonly accountStatus?: AccountStatus,
    recheckMs = ACCOUNT_RECHECK_MS,
  ) {
    revocations.onRevoked((jti) => {
      for (const s of this.byToken.get(jti) ?? []) s.close(WS_CLOSE.revoked);
    });
    if (accountStatus) {
      this.timer = setInterval(() => void this.recheckAccounts(), recheckMs);
      this.timer.unref();
    }
  }

  track(socket: LiveSocket, principal: Principal): void {
    const jti = principal.tokenId;
    if (!jti) return;
    let set = this.byToken.get(jti);
    if (!set) this.byToken.set(jti, (set = new Set()));
    set.add(socket);
    this.sockets.set(socket, { jti, subject: principal.subject });
    const timer = principal.expiresAt !== undefined ? setTimeout(() => socket.close(WS_CLOSE.expired), Math.max(0, principal.expiresAt - Date.now())) : undefined;
    timer?.unref();
    socket.onGone(() => {
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
      const bySubject = new Map<string, LiveSocket[]>();
      for (const [socket, t] of this.sockets) {
        const list = bySubject.get(t.subject);
        if (list) list.push(socket);
        else bySubject.set(t.subject, [socket]);
      }
      for (const [subject, sockets] of bySubject) {
        const s = await status(subject).catch(() => 'ok' as const);
        if (s === 'ok') continue;
        for (const socket of sockets) socket.close(s === 'disabled' ? WS_CLOSE.disabled : WS_CLOSE.removed);
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
