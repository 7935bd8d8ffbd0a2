import type http from 'node:http';
import type { Duplex } from 'node:stream';

/**
 * The listeners are bound before the gateway behind them exists (see bindGateway): a second
 * instance must fail on EADDRINUSE before it opens the audit log. Node accepts connections as
 * soon as a server listens, and a request emitted with no 'request' listener is lost: it hangs
 * until the client gives up. So requests and upgrades that arrive in that short window wait
 * here and are handed over, in arrival order, once the pipeline is attached; they are logged
 * and answered like any other.
 */

/** Held at most; beyond it a connection is dropped, as a full listen backlog would. */
export const MAX_HELD = 512;

type UpgradeListener = (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void;

export interface Handlers {
  readonly request: http.RequestListener;
  /** Unset: held upgrades are dropped, and later ones get Node's default. */
  readonly upgrade?: UpgradeListener | undefined;
  /** Unset: held CONNECTs are dropped, and later ones get Node's default (the socket is closed). */
  readonly connect?: UpgradeListener | undefined;
}

export interface Held {
  /** Attaches the real handlers and hands them what waited. */
  serve(handlers: Handlers): void;
}

type Waiting = { kind: 'request'; req: http.IncomingMessage; res: http.ServerResponse } | { kind: 'upgrade' | 'connect'; req: http.IncomingMessage; socket: Duplex; head: Buffer };

export function holdUntilServed(server: http.Server, max = MAX_HELD): Held {
  const waiting: Waiting[] = [];
  const full = (socket: Duplex): boolean => {
    if (waiting.length < max) return false;
    socket.destroy();
    return true;
  };
  const onRequest: http.RequestListener = (req, res) => {
    if (!full(req.socket)) waiting.push({ kind: 'request', req, res });
  };
  const onUpgrade: UpgradeListener = (req, socket, head) => {
    if (!full(socket)) waiting.push({ kind: 'upgrade', req, socket, head });
  };
  const onConnect: UpgradeListener = (req, socket, head) => {
    if (!full(socket)) waiting.push({ kind: 'connect', req, socket, head });
  };
  server.on('request', onRequest);
  server.on('upgrade', onUpgrade);
  server.on('connect', onConnect);
  return {
    serve(handlers) {
      server.off('request', onRequest);
      server.off('upgrade', onUpgrade);
      server.off('connect', onConnect);
      server.on('request', handlers.request);
      if (handlers.upgrade) server.on('upgrade', handlers.upgrade);
      if (handlers.connect) server.on('connect', handlers.connect);
      for (const w of waiting.splice(0)) {
        if (w.kind === 'request') handlers.request(w.req, w.res);
        else {
          const handler = handlers[w.kind];
          if (handler) handler(w.req, w.socket, w.head);
          else w.socket.destroy();
        }
      }
    },
  };
}
