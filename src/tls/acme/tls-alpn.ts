import type { Server } from 'node:https';
import type { Socket } from 'node:net';
import { createSecureContext, TLSSocket } from 'node:tls';
import type { Logger } from '../../log/logger.js';
import type { ChallengeStore } from './challenges.js';

/** RFC 8737 §4: the protocol a TLS-ALPN-01 validation offers, and the only one it offers. */
export const ACME_TLS_ALPN = 'acme-tls/1';
/** A ClientHello is one handshake record; 16 KB is the largest a record may be. */
const MAX_HELLO_BYTES = 16_384 + 5;

export interface ClientHelloFacts {
  serverName: string | undefined;
  alpn: string[];
}

/**
 * Reads SNI and ALPN from the first TLS record, when it holds a whole ClientHello. Undefined:
 * not one (or not whole yet); the connection then goes to the TLS server as it came.
 */
export function readClientHello(buf: Buffer): ClientHelloFacts | undefined {
  if (buf.length < 5 || buf[0] !== 0x16) return undefined;
  const end = 5 + buf.readUInt16BE(3);
  if (buf.length < end || buf[5] !== 0x01) return undefined;
  let at = 9 + 2 + 32; // handshake header, client_version, random
  const skip = (lenBytes: 1 | 2): void => {
    at += (lenBytes === 1 ? (buf[at] ?? 0) : buf.readUInt16BE(at)) + lenBytes;
  };
  try {
    skip(1); // session id
    skip(2); // cipher suites
    skip(1); // compression methods
    if (at + 2 > end) return { serverName: undefined, alpn: [] };
    const extEnd = at + 2 + buf.readUInt16BE(at);
    at += 2;
    const facts: ClientHelloFacts = { serverName: undefined, alpn: [] };
    while (at + 4 <= Math.min(extEnd, end)) {
      const type = buf.readUInt16BE(at);
      const len = buf.readUInt16BE(at + 2);
      const body = buf.subarray(at + 4, at + 4 + len);
      at += 4 + len;
      if (type === 0x0000 && body.length >= 5 && body[2] === 0x00) {
        facts.serverName = body.subarray(5, 5 + body.readUInt16BE(3)).toString('latin1').toLowerCase();
      } else if (type === 0x0010 && body.length >= 2) {
        for (let p = 2; p < body.length; p += 1 + (body[p] ?? 0)) facts.alpn.push(body.subarray(p + 1, p + 1 + (body[p] ?? 0)).toString('latin1'));
      }
    }
    return facts;
  } catch {
    return undefined;
  }
}

/**
 * TLS-ALPN-01 (RFC 8737) on the HTTPS listener. Node picks the certificate (SNI) before it sees
 * ALPN, and cannot swap it in its ALPN callback, so the first record of each connection is read
 * here: a ClientHello offering only `acme-tls/1` for a host with a pending challenge gets the
 * challenge certificate from a TLS socket of its own, which then closes; every other
 * connection is handed to the HTTPS server untouched (the bytes put back), so browsers never
 * see a challenge certificate. Returns the way to take the hook off.
 */
export function serveTlsAlpnChallenges(server: Server, store: ChallengeStore, log: Logger, timeoutMs: number): () => void {
  const tlsListener = server.listeners('connection').find((f) => f.name === 'tlsConnectionListener') as ((socket: Socket) => void) | undefined;
  if (!tlsListener) throw new Error('TLS-ALPN-01: the HTTPS server has no TLS connection listener to wrap (Node internals changed)');
  const handOver = (socket: Socket, seen: Buffer): void => {
    if (seen.length > 0) socket.unshift(seen);
    tlsListener.call(server, socket);
  };
  const peek = (socket: Socket): void => {
    // Until the TLS server takes the socket, nothing else listens for its 'error': a client's
    // reset (ECONNRESET) while the hello is read or the challenge looked up would be an
    // unhandled 'error' event, and end the process. Left on after the hand-over, where it only
    // destroys a connection that has already failed.
    socket.on('error', () => socket.destroy());
    // Chunks kept and joined once: a hello sent a byte at a time must not cost a copy per byte.
    const chunks: Buffer[] = [];
    let size = 0;
    let need: number | undefined;
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    timer.unref();
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      size += chunk.length;
      if (need === undefined && size >= 5) need = 5 + Buffer.concat(chunks, 5).readUInt16BE(3);
      const whole = need !== undefined && size >= need;
      if (!whole && size < MAX_HELLO_BYTES && chunks[0]?.[0] === 0x16) return;
      socket.off('data', onData);
      socket.pause();
      clearTimeout(timer);
      const seen = Buffer.concat(chunks, size);
      const hello = whole ? readClientHello(seen) : undefined;
      if (!hello || hello.alpn.length !== 1 || hello.alpn[0] !== ACME_TLS_ALPN || !hello.serverName) {
        handOver(socket, seen);
        return;
      }
      void answer(socket, seen, hello.serverName);
    };
    socket.on('data', onData);
  };
  /** The pending challenge for `host`; undefined when none, when the store fails, or when it takes longer than timeoutMs. */
  const lookup = async (host: string): Promise<Awaited<ReturnType<ChallengeStore['alpn']>>> => {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), timeoutMs);
      timer.unref();
    });
    try {
      return await Promise.race([store.alpn(host).catch(() => undefined), late]);
    } finally {
      clearTimeout(timer);
    }
  };
  const answer = async (socket: Socket, seen: Buffer, host: string): Promise<void> => {
    const pending = await lookup(host);
    // Reset or timed out while the store answered: nothing left to answer on.
    if (socket.destroyed) return;
    if (!pending) {
      log.security('acme.challenge_unknown', { type: 'tls-alpn-01', host, clientIp: socket.remoteAddress });
      socket.destroy();
      return;
    }
    socket.unshift(seen);
    const tls = new TLSSocket(socket, { isServer: true, secureContext: createSecureContext({ cert: pending.cert, key: pending.key }), ALPNProtocols: [ACME_TLS_ALPN] });
    tls.once('secure', () => {
      log.security('acme.challenge_answered', { type: 'tls-alpn-01', host, clientIp: socket.remoteAddress });
      tls.end();
    });
    tls.once('error', () => socket.destroy());
    tls.setTimeout(timeoutMs, () => tls.destroy());
  };
  server.removeListener('connection', tlsListener);
  server.prependListener('connection', peek);
  return () => {
    server.removeListener('connection', peek);
    server.prependListener('connection', tlsListener);
  };
}
