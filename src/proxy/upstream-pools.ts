import type { ConnectionOptions } from 'node:tls';
import { Pool, buildConnector } from 'undici';
import { normalizeIp } from '../net/ip.js';
import { upstreamTls, type UpstreamTlsConfig } from '../tls/upstream-tls.js';

/** Idle upstream connections are dropped before the usual 5 s keep-alive of upstream servers. */
const IDLE_CONNECTION_MS = 4_000;
/** As the http.Agent before it (maxSockets): a cap, not a pool size; connections open on demand. */
const MAX_CONNECTIONS_PER_UPSTREAM = 512;
/** Addresses remembered per upstream (DNS may hand out several, and change them). */
const MAX_ADDRESSES = 16;

/** One upstream origin: its keep-alive connections and the addresses they reached. */
export interface Upstream {
  readonly pool: Pool;
  /**
   * Every address a connection to this origin reached, normalized. A response's own socket is
   * not known to a pool's handler; a URL naming any of these names the upstream itself.
   */
  readonly addresses: ReadonlySet<string>;
}

/**
 * One undici Pool per upstream origin and TLS setting, owned by the forwarder that made it.
 * Timeouts are the forwarder's (the route's, on a precise timer), so undici's own are off;
 * HTTPS upstreams are verified (`rejectUnauthorized`, whatever NODE_TLS_REJECT_UNAUTHORIZED
 * says) with the route's `upstreamTls` (CA, client certificate), the name checked being its
 * `serverName` or the upstream URL's host (see upstreamTls), never the Host header sent.
 */
export class UpstreamPools {
  private readonly pools = new Map<string, Upstream>();

  /** `tls`: extra options for every HTTPS upstream (a private CA, in tests); a route's `upstreamTls` adds to them. */
  constructor(private readonly tls: ConnectionOptions = {}) {}

  for(target: URL, routeTls?: UpstreamTlsConfig): Upstream {
    const tls = target.protocol === 'https:' ? upstreamTls(target, routeTls, this.tls) : undefined;
    const poolKey = tls ? `${target.origin} ${tls.key}` : target.origin;
    let upstream = this.pools.get(poolKey);
    if (!upstream) {
      const addresses = new Set<string>();
      const connectTo = buildConnector(tls ? tls.options : { ...this.tls, rejectUnauthorized: true });
      const pool = new Pool(target.origin, {
        connections: MAX_CONNECTIONS_PER_UPSTREAM,
        pipelining: 1,
        keepAliveTimeout: IDLE_CONNECTION_MS,
        headersTimeout: 0,
        bodyTimeout: 0,
        connect: (opts, callback) => {
          // undici would send (and check) the request's Host as the server name; the options' name stands.
          connectTo({ ...opts, servername: undefined }, (err, socket) => {
            const address = normalizeIp(socket?.remoteAddress)?.address;
            if (address && !addresses.has(address)) {
              if (addresses.size >= MAX_ADDRESSES) addresses.clear();
              addresses.add(address);
            }
            if (err) callback(err, null);
            else callback(null, socket as NonNullable<typeof socket>);
          });
        },
      });
      upstream = { pool, addresses };
      this.pools.set(poolKey, upstream);
    }
    return upstream;
  }

  /** Drops every connection at once, requests in flight included (shutdown has drained them). */
  destroy(): void {
    for (const { pool } of this.pools.values()) pool.destroy().catch(() => undefined);
    this.pools.clear();
  }
}
