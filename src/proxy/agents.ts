import http from 'node:http';
import https from 'node:https';

/** Idle upstream sockets are dropped before the usual 5 s keep-alive of upstream servers. */
const IDLE_SOCKET_MS = 4_000;
const MAX_SOCKETS_PER_UPSTREAM = 512;

/**
 * One keep-alive node:http agent per upstream origin, for the webhook's deliveries (plain
 * requests go through the forwarder's undici pools, websockets open their own connection).
 */
export class UpstreamAgents {
  private readonly agents = new Map<string, http.Agent>();

  for(target: URL): http.Agent {
    let agent = this.agents.get(target.origin);
    if (!agent) {
      const opts = { keepAlive: true, timeout: IDLE_SOCKET_MS, maxSockets: MAX_SOCKETS_PER_UPSTREAM, scheduling: 'lifo' as const };
      agent = target.protocol === 'https:' ? new https.Agent(opts) : new http.Agent(opts);
      this.agents.set(target.origin, agent);
    }
    return agent;
  }

  destroy(): void {
    for (const a of this.agents.values()) a.destroy();
    this.agents.clear();
  }
}
