import net from 'node:net';

/**
 * What a TCP connection attempt met: `open`; `refused` (the host answered, nothing listens);
 * `timeout` (no answer: a dropping firewall, or no host at all); `error` with its code (the
 * name did not resolve, no route, …): a port is only known closed when the host answered.
 */
export type PortState = { state: 'open' } | { state: 'refused' } | { state: 'timeout' } | { state: 'error'; code: string };

export function probePort(host: string, port: number, timeoutMs: number): Promise<PortState> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const finish = (r: PortState): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish({ state: 'timeout' }), timeoutMs);
    socket.once('connect', () => finish({ state: 'open' }));
    socket.once('error', (err: NodeJS.ErrnoException) => finish(err.code === 'ECONNREFUSED' ? { state: 'refused' } : { state: 'error', code: err.code ?? err.message }));
  });
}
