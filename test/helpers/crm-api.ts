import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';

/** One request the stand-in CRM API read to the end. */
export interface CrmRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: http.IncomingHttpHeaders;
  /** Exactly the bytes received. */
  readonly body: Buffer;
}

/** How the stand-in answers its n-th request (0-based): a status, once `until` settles (if given). */
export type CrmBehaviour = (n: number, req: CrmRequest) => { status: number; until?: Promise<unknown> };

/**
 * A stand-in for the CRM API on a loopback port that stays the same across stop() and
 * start(), so a gateway configured with its URL sees it go down and come back.
 */
export class StandInCrm {
  readonly received: CrmRequest[] = [];
  behaviour: CrmBehaviour = () => ({ status: 200 });
  private server: http.Server | undefined;
  private constructor(public port: number) {}

  static async start(): Promise<StandInCrm> {
    const crm = new StandInCrm(0);
    await crm.start();
    return crm;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    if (this.server) return;
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const entry: CrmRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) };
        const n = this.received.length;
        this.received.push(entry);
        const { status, until } = this.behaviour(n, entry);
        const answer = (): void => {
          if (res.destroyed) return;
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end('{"ok":true}');
        };
        if (until) void until.then(answer, answer);
        else answer();
      });
    });
    server.listen(this.port, '127.0.0.1');
    await once(server, 'listening');
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /** Stops listening and cuts every open connection: the CRM API is down. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
}
