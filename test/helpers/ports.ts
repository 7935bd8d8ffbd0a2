import net from 'node:net';

/**
 * A loopback port free right now, for servers that cannot bind port 0 themselves (uvicorn's
 * CLI, child processes) or must know their public port in advance. Another process could take
 * it in between; unlikely on loopback, and the callers that care retry.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}
