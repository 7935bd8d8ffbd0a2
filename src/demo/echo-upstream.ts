import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';

/** What a stand-in upstream saw: tests assert on it, the demo shows it. */
export interface SeenRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: string;
  complete: boolean;
}

export interface EchoUpstream {
  readonly server: http.Server;
  readonly port: number;
  readonly url: string;
  /** Every request that reached this upstream (complete or not), in order. */
  readonly seen: SeenRequest[];
  close(): Promise<void>;
}

/**
 * A stand-in upstream that answers every request with JSON of what it received: method, path,
 * headers and body. Websocket upgrades are accepted and echo each message back.
 */
export async function startEchoUpstream(name: string, port = 0, host = '127.0.0.1'): Promise<EchoUpstream> {
  const seen: SeenRequest[] = [];
  const server = http.createServer((req, res) => {
    const entry: SeenRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body: '', complete: false };
    seen.push(entry);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      entry.body = Buffer.concat(chunks).toString('utf8');
      entry.complete = true;
      const body = JSON.stringify({ upstream: name, method: entry.method, path: entry.url, headers: entry.headers, body: entry.body }, null, 2);
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body: '', complete: true });
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.send(JSON.stringify({ upstream: name, path: req.url, headers: req.headers }));
      ws.on('message', (data) => ws.send(data.toString()));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const actual = (server.address() as AddressInfo).port;
  return {
    server,
    port: actual,
    url: `http://${host}:${actual}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
