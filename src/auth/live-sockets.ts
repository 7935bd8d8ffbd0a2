import type { Principal } from '../context.js';
import { WS_CLOSE, type CloseReason } from '../proxy/ws-session.js';
import type { RevocationList } from './revocation.js';
import { sessionRevocationKey } from './sessions/staff-sessions.js';

/** What LiveSockets follows: revocations, and account state and changes (an AuthService). */
export interface SocketAuthority {
  readonly revocations: RevocationList;
  readonly accountStatus?: AccountStatus;
  onAccountChanged?(listener: (subject: string) => void): void;
}

/** A websocket the gateway can end with a close frame (a WsSession). */
export interface LiveSocket {
  close(reason: CloseReason): void;
  onGone(listener: () => void): void;
}

/**
 * How often open websockets' accounts are checked again anyway. A change announced (see
 * AccountStates) is checked at once; this catches what no announcement told of (an account
 * edited behind the gateway's back, or changed while the subscription was down).
 */
export const ACCOUNT_RECHECK_MS = 5_000;

export type AccountStatus = (subject: string) => Promise<'ok' | 'disabled' | 'unknown'>;

interface Tracked {
  readonly jti: string;
  readonly subject: string;
}

/**
 * Open websockets and the credentials they were opened with: each is closed, with a close frame
 * saying why (WS_CLOSE), when its token expires, at once when the token is revoked on any
 * instance, and when its account is disabled or removed: at once when the change is announced
 * (Redis, subscription live), else within about two ACCOUNT_RECHECK_MS (an HTTP request would be
 * refused then; a websocket opened before must not outlive that by the token's whole lifetime).
 * When the account store cannot answer, open sockets stay open: new requests are refused meanwhile.
 */
export class LiveSockets {
  private readonly byToken = new Map<string, Set<LiveSocket>>();
  private readonly sockets = new Map<LiveSocket, Tracked>();
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly accountStatus: AccountStatus | undefined;
  private checking = false;

  constructor(authority: SocketAuthority, recheckMs = ACCOUNT_RECHECK_MS) {
    const accountStatus = authority.accountStatus;
    this.accountStatus = accountStatus;
    authority.revocations.onRevoked((jti) => {
      for (const s of this.byToken.get(jti) ?? []) s.close(WS_CLOSE.revoked);
    });
    if (accountStatus) {
      authority.onAccountChanged?.((subject) => void this.recheckAccount(subject));
      this.timer = setInterval(() => void this.recheckAccounts(), recheckMs);
      this.timer.unref();
    }
  }

  track(socket: LiveSocket, principal: Principal): void {
    const jti = principal.tokenId;
    if (!jti) return;
    // A staff session's end is a revocation of its own (`sid:<id>`): its sockets close with it.
    const keys = [jti, ...(principal.sessionId ? [sessionRevocationKey(principal.sessionId)] : [])];
    for (const key of keys) {
      let set = this.byToken.get(key);
      if (!set) this.byToken.set(key, (set = new Set()));
      set.add(socket);
    }
    this.sockets.set(socket, { jti, subject: principal.subject });
    const timer = principal.expiresAt !== undefined ? setTimeout(() => socket.close(WS_CLOSE.expired), Math.max(0, principal.expiresAt - Date.now())) : undefined;
    timer?.unref();
    socket.onGone(() => {
      clearTimeout(timer);
      this.sockets.delete(socket);
      for (const key of keys) {
        const set = this.byToken.get(key);
        set?.delete(socket);
        if (set?.size === 0) this.byToken.delete(key);
      }
    });
  }

  /** Closes the websockets of one account if it is disabled or gone (just announced as changed). */
  async recheckAccount(subject: string): Promise<void> {
    const status = this.accountStatus;
    if (!status) return;
    const sockets = [...this.sockets].filter(([, t]) => t.subject === subject).map(([s]) => s);
    if (sockets.length === 0) return;
    const s = await status(subject).catch(() => 'ok' as const);
    if (s === 'ok') return;
    for (const socket of sockets) socket.close(s === 'disabled' ? WS_CLOSE.disabled : WS_CLOSE.removed);
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
