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

/**
 * Open websockets and the credentials they were opened with: each is closed when its token
 * expires, or at once when the token is revoked on any instance.
 */
export class LiveSockets {
  private readonly byToken = new Map<string, Set<Duplex>>();

  constructor(revocations: RevocationList) {
    revocations.onRevoked((jti) => {
      for (const s of this.byToken.get(jti) ?? []) cut(s, 'websocket token revoked');
    });
  }

  track(socket: Duplex, principal: Principal): void {
    const jti = principal.tokenId;
    if (!jti) return;
    let set = this.byToken.get(jti);
    if (!set) this.byToken.set(jti, (set = new Set()));
    set.add(socket);
    const timer = principal.expiresAt !== undefined ? setTimeout(() => cut(socket, 'websocket token expired'), Math.max(0, principal.expiresAt - Date.now())) : undefined;
    timer?.unref();
    socket.once('close', () => {
      clearTimeout(timer);
      set.delete(socket);
      if (set.size === 0) this.byToken.delete(jti);
    });
  }

  get size(): number {
    let n = 0;
    for (const s of this.byToken.values()) n += s.size;
    return n;
  }
}
