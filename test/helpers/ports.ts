import { readFileSync } from 'node:fs';
import net from 'node:net';

/**
 * A loopback port free right now, for servers that cannot bind port 0 themselves (uvicorn's
 * CLI, child processes) or must know their public port in advance.
 *
 * Chosen below the kernel's ephemeral range: a port from that range (what `listen(0)` hands
 * out) can be taken, between this check and the child's bind, as the local port of any outgoing
 * connection on the machine (to Redis, PostgreSQL, an upstream), and the child then fails with
 * EADDRINUSE (seen once in CI: the startup-footprint gateway's ADMIN_PORT). Ports below the range
 * are never used for outgoing connections; two callers picking the same one at random while
 * both are alive is what the bind check below rules out. Where the range starts too low to
 * leave room, `listen(0)` as before.
 */
export async function freePort(): Promise<number> {
  const below = ephemeralStart();
  if (below > LOWEST + 2_000) {
    for (let i = 0; i < 50; i++) {
      const port = LOWEST + Math.floor(Math.random() * (below - LOWEST));
      if (await bindable(port)) return port;
    }
  }
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Above the well-known and commonly configured ports (8000, 8080, 8443, 9090, 9443…). */
const LOWEST = 20_000;

/** The first port of the kernel's ephemeral range (Linux); 0 where it cannot be read. */
function ephemeralStart(): number {
  try {
    const first = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(first) ? first : 0;
  } catch {
    return 0;
  }
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}
