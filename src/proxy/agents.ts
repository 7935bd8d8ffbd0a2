import http from 'node:http';
import https from 'node:https';
import type { ConnectionOptions } from 'node:tls';
import { upstreamTls, type UpstreamTlsConfig } from '../tls/upstream-tls.js';

/** Idle upstream sockets are dropped before the usual 5 s keep-alive of upstream servers. */
const IDLE_SOCKET_MS = 4_000;
const MAX_SOCKETS_PER_UPSTREAM = 512;

/**
 * One keep-alive node:http agent per upstream origin and TLS setting, for the webhook's
 * deliveries (plain requests go through the forwarder's undici pools, websockets through
 * websocketAgent). An https upstream is checked as the forwarder checks it (upstreamTls).
 */
export class UpstreamAgents {
  private readonly agents = new Map<string, http.Agent>();

  for(target: URL, routeTls?: UpstreamTlsConfig): http.Agent {
    const tls = target.protocol === 'https:' ? upstreamTls(target, routeTls) : undefined;
    const key = tls ? `${target.origin} ${tls.key}` : target.origin;
    let agent = this.agents.get(key);
    if (!agent) {
      const opts = { keepAlive: true, timeout: IDLE_SOCKET_MS, maxSockets: MAX_SOCKETS_PER_UPSTREAM, scheduling: 'lifo' as const };
      agent = tls ? new https.Agent({ ...opts, ...tls.options }) : new http.Agent(opts);
      this.agents.set(key, agent);
    }
    return agent;
  }

  destroy(): void {
    for (const a of this.agents.values()) a.destroy();
    this.agents.clear();
  }
}

/**
 * The agent of a websocket handshake to an https upstream: no keep-alive (the socket leaves
 * the agent at the 101), but the route's CA, client certificate and server name. An agent's
 * own options win over a request's in node:https, so the name checked is never the Host
 * header http-proxy sends. `false` (no agent) for a plain-http upstream.
 */
export function websocketAgent(target: URL, routeTls: UpstreamTlsConfig | undefined, base: ConnectionOptions = {}): https.Agent | false {
  if (target.protocol !== 'https:') return false;
  return new https.Agent({ keepAlive: false, ...upstreamTls(target, routeTls, base).options });
}
