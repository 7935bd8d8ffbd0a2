import type { IncomingMessage } from 'node:http';
import { normalizeIp, type IpSet, type ParsedIp } from './ip.js';

export interface ClientAddress {
  /** The address the gateway acts on: rate limits, allowlists and logs all use this one. */
  client: ParsedIp;
  /** The TCP peer. */
  peer: ParsedIp;
  /** Whether the peer is a trusted proxy, so its forwarding headers were read. */
  peerTrusted: boolean;
}

const UNKNOWN: ParsedIp = { address: '0.0.0.0', family: 'ipv4' };

/**
 * The one client-IP resolver. The socket peer is the client unless it is a trusted proxy;
 * then X-Forwarded-For is walked from the right, skipping trusted hops, and the first
 * untrusted address is the client. A malformed hop stops the walk at the last good one, so a
 * client cannot inject an address by sending garbage.
 */
export function createClientIpResolver(trusted: IpSet): (req: IncomingMessage) => ClientAddress {
  return (req) => {
    const peer = normalizeIp(req.socket.remoteAddress) ?? UNKNOWN;
    if (trusted.size === 0 || !trusted.has(peer)) return { client: peer, peer, peerTrusted: false };
    const header = req.headers['x-forwarded-for'];
    const hops = (Array.isArray(header) ? header.join(',') : header ?? '')
      .split(',')
      .map((h) => h.trim())
      .filter((h) => h !== '');
    let client = peer;
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = normalizeIp(withoutPort(hops[i] ?? ''));
      if (!hop) break;
      client = hop;
      if (!trusted.has(hop)) break;
    }
    return { client, peer, peerTrusted: true };
  };
}

/** Some proxies append `ip:port` or `[v6]:port`; the port is not part of the client's identity. */
export function withoutPort(hop: string): string {
  const v6 = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(hop);
  if (v6?.[1]) return v6[2] === undefined || Number(v6[2]) <= 65_535 ? v6[1] : hop;
  const v4 = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(hop);
  return v4?.[1] && Number(v4[2]) <= 65_535 ? v4[1] : hop;
}
