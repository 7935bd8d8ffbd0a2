import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { probePort } from '../../net/probe-port.js';

/** What `doctor --live` learned about its target before any check ran. */
export interface TargetReach {
  /** The name resolved (an address needs no resolving). */
  readonly resolved: boolean;
  /** Why not: the resolver's code (`ENOTFOUND`, `EAI_AGAIN`). */
  readonly resolveError?: string | undefined;
  readonly addresses: readonly string[];
  /** The target is this machine: loopback, or an address of one of its interfaces. */
  readonly local: boolean;
  /** A TCP connection to the HTTPS port succeeded. */
  readonly connected: boolean;
  /** Why not: `ECONNREFUSED`, `timeout`, `EHOSTUNREACH`… */
  readonly connectError?: string | undefined;
}

function isOwnAddress(address: string): boolean {
  if (/^127\./.test(address) || address === '::1' || address === '::ffff:127.0.0.1') return true;
  return Object.values(networkInterfaces()).some((list) => list?.some((i) => i.address === address));
}

/** Resolves the target and tries its HTTPS port once, so every later verdict can name the real cause. */
export async function reachTarget(host: string, port: number, timeoutMs: number): Promise<TargetReach> {
  let addresses: string[];
  if (isIP(host)) addresses = [host];
  else {
    try {
      addresses = (await lookup(host, { all: true })).map((a) => a.address);
    } catch (err) {
      return { resolved: false, resolveError: (err as NodeJS.ErrnoException).code ?? (err as Error).message, addresses: [], local: false, connected: false };
    }
  }
  const local = addresses.some(isOwnAddress);
  const r = await probePort(host, port, timeoutMs);
  const connectError = r.state === 'open' ? undefined : r.state === 'refused' ? 'ECONNREFUSED' : r.state === 'timeout' ? `no answer within ${timeoutMs} ms` : r.code;
  return { resolved: true, addresses, local, connected: r.state === 'open', connectError };
}
