import http from 'node:http';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';

/** One request as the static upstream saw it and answered it. */
export interface StaticHit {
  path: string;
  status: number;
  ifNoneMatch: string | undefined;
  ifModifiedSince: string | undefined;
  /** Body bytes the upstream sent (0 for a 304). */
  bytes: number;
}

interface Asset {
  type: string;
  body: Buffer;
  /** Cache-Control as a web app's static server sends it. */
  cacheControl: string;
  etag?: string;
  lastModified?: string;
  vary?: string;
}

export interface StaticUpstream {
  readonly url: string;
  readonly hits: StaticHit[];
  /** Total body bytes of one full (cold) page load: the page and every asset. */
  readonly pageBytes: number;
  close(): Promise<void>;
}

const LAST_MODIFIED = new Date('2026-01-01T00:00:00Z').toUTCString();

function filler(kb: number, line: string): Buffer {
  return Buffer.from(line.repeat(Math.ceil((kb * 1024) / line.length)).slice(0, kb * 1024));
}

function etagOf(body: Buffer): string {
  return `"${createHash('sha256').update(body).digest('base64url').slice(0, 16)}"`;
}

/**
 * The caching shapes of a single-page app such as NocoDB's (a Vue build behind its own static
 * server): a `no-cache` HTML shell with an ETag, a long-lived fingerprinted bundle, a
 * revalidated stylesheet, an image with only Last-Modified, and a JSON call with ETag and
 * Vary. Conditional requests are answered 304 per RFC 9110 §13.1 (If-None-Match wins over
 * If-Modified-Since).
 */
function assets(): Map<string, Asset> {
  const js = filler(300, '/* bundle */ export const x = 1;\n');
  const css = filler(60, 'body { margin: 0 }\n');
  const svg = Buffer.concat([Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><!--'), filler(20, 'x'), Buffer.from('--></svg>')]);
  const json = Buffer.from(JSON.stringify({ rows: Array.from({ length: 400 }, (_, i) => ({ id: i, name: `row ${i}`, note: 'n'.repeat(80) })) }));
  const html = Buffer.from(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Static app</title>
<link rel="stylesheet" href="/app/app.css"><script type="module" src="/app/app.3f2a.js"></script></head>
<body><h1>Static app</h1><img src="/app/logo.svg" alt="logo"><p id="rows"></p>
<script>fetch('/app/api/rows').then((r) => r.json()).then((d) => { document.getElementById('rows').textContent = String(d.rows.length); });</script>
</body></html>`);
  return new Map<string, Asset>([
    ['/app/', { type: 'text/html; charset=utf-8', body: html, cacheControl: 'no-cache', etag: etagOf(html) }],
    ['/app/app.3f2a.js', { type: 'text/javascript', body: js, cacheControl: 'public, max-age=31536000, immutable', etag: etagOf(js) }],
    ['/app/app.css', { type: 'text/css', body: css, cacheControl: 'no-cache', etag: etagOf(css) }],
    ['/app/logo.svg', { type: 'image/svg+xml', body: svg, cacheControl: 'public, max-age=0, must-revalidate', lastModified: LAST_MODIFIED }],
    ['/app/api/rows', { type: 'application/json', body: json, cacheControl: 'private, no-cache', etag: etagOf(json), vary: 'Accept-Encoding' }],
  ]);
}

function notModified(req: http.IncomingMessage, a: Asset): boolean {
  const inm = req.headers['if-none-match'];
  if (inm !== undefined) return a.etag !== undefined && inm.split(',').some((t) => t.trim().replace(/^W\//, '') === a.etag);
  const ims = req.headers['if-modified-since'];
  return ims !== undefined && a.lastModified !== undefined && Date.parse(ims) >= Date.parse(a.lastModified);
}

/** A real HTTP server with the assets above, recording every request it answers. */
export async function startStaticUpstream(): Promise<StaticUpstream> {
  const files = assets();
  const hits: StaticHit[] = [];
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const a = files.get(path);
    const hit: StaticHit = { path, status: 404, ifNoneMatch: req.headers['if-none-match'], ifModifiedSince: req.headers['if-modified-since'], bytes: 0 };
    hits.push(hit);
    if (!a) {
      res.writeHead(404, { 'content-type': 'text/plain', 'content-length': 9 });
      res.end('not found');
      return;
    }
    const validators: Record<string, string> = { 'cache-control': a.cacheControl };
    if (a.etag) validators.etag = a.etag;
    if (a.lastModified) validators['last-modified'] = a.lastModified;
    if (a.vary) validators.vary = a.vary;
    if (notModified(req, a)) {
      hit.status = 304;
      res.writeHead(304, validators);
      res.end();
      return;
    }
    hit.status = 200;
    hit.bytes = a.body.length;
    res.writeHead(200, { ...validators, 'content-type': a.type, 'content-length': a.body.length });
    res.end(req.method === 'HEAD' ? undefined : a.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits,
    pageBytes: [...files.values()].reduce((n, a) => n + a.body.length, 0),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
