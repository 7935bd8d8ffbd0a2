/**
 * A stand-in for Metabase (a JVM jar from outside the registries here, so it cannot run in
 * tests). It copies the current Metabase line as read from metabase/metabase's sources (master of
 * the v0.56/v0.57 era: `metabase.request.cookies`, `metabase.server.middleware.security` with
 * per-response nonces), the parts a gateway in front of it meets:
 *
 * - Its hashed Content-Security-Policy (security.clj `content-security-policy-header`):
 *   `default-src 'none'`, a `script-src` of `'self'`, a per-response nonce and the sha256 of each
 *   inline script of index.html, `style-src 'self' 'nonce-…'`, `frame-ancestors 'none'`, and so on,
 *   plus its other security headers (X-Frame-Options DENY, HSTS, nosniff, no-cache on the page).
 *   A second CSP from a proxy would intersect with it and block its scripts.
 * - `metabase.SESSION` (request/cookies.clj `set-session-cookies`): HttpOnly, Path=/,
 *   SameSite=Lax, `Secure` when the request came over HTTPS (X-Forwarded-Proto), a Max-Age only
 *   with "remember me"; with it `metabase.TIMEOUT=alive`. `DELETE /api/session` clears them with
 *   an Expires in 1970, Path=/.
 * - Streaming queries (`POST /api/dataset`, server/streaming_response.clj): 202 at once, a
 *   newline every second while the query runs (10 minutes is normal for long reports;
 *   `queryMs` and `keepaliveMs` here), then the JSON result; `X-Accel-Buffering: no`.
 * - The site URL (server/middleware/misc.clj `maybe-set-site-url`): unless MB_SITE_URL is set,
 *   the first API request sets it for good from Origin, else X-Forwarded-Host, else Host
 *   (`http://` prepended when no scheme), and the bootstrap settings carry it.
 */
import http from 'node:http';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';

export const METABASE_RELEASE = 'Metabase master, v0.56/v0.57 line (metabase.request.cookies; security.clj with nonces)';
export const METABASE_SESSION_COOKIE = 'metabase.SESSION';
export const METABASE_TIMEOUT_COOKIE = 'metabase.TIMEOUT';
/** max-session-age default: 20160 minutes. */
const MAX_SESSION_AGE_S = 20160 * 60;
const KEEPALIVE_MS = 1000;
const QUERY_MS = 600_000;

export interface MetabaseOptions {
  /** MB_SITE_URL. */
  siteUrl?: string;
  /** How long a streamed query runs before its result (Metabase: up to 10 minutes). */
  queryMs?: number;
  /** The keep-alive newline interval while a query runs (Metabase: 1 s). */
  keepaliveMs?: number;
  /** email → password of Metabase's own users. */
  users?: Record<string, string>;
}

export interface MetabaseRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly at: number;
}

export interface MetabaseQuery {
  readonly user: string;
  readonly startedAt: number;
  outcome: 'running' | 'completed' | 'aborted';
  keepalives: number;
}

export interface MetabaseStandIn {
  readonly url: string;
  readonly port: number;
  readonly requests: MetabaseRequest[];
  readonly queries: MetabaseQuery[];
  /** session id → user, for every session it created. */
  readonly sessions: Map<string, string>;
  /** The site URL it has settled on (MB_SITE_URL or the first API request's). */
  siteUrl(): string | undefined;
  /** The CSP's sha256 sources of the inline scripts, as Metabase computes them at startup. */
  readonly inlineScriptHashes: readonly string[];
  close(): Promise<void>;
}

/** index_bootstrap.js: sets the bootstrap data the app reads; its hash is in the CSP. */
const INLINE_BOOTSTRAP = `window.MetabaseBootstrap = JSON.parse(document.getElementById("_metabaseBootstrap").textContent);
window.MetabaseRoot = "/";`;

/** The app bundle (served from 'self'): Metabase's sign-in, then a long streamed question. */
const APP_JS = `(() => {
  const mb = (window.mb = { bootstrap: window.MetabaseBootstrap, result: null, error: null, keepalives: 0 });
  const $ = (id) => document.getElementById(id);
  async function current() {
    const r = await fetch('/api/user/current', { credentials: 'same-origin' });
    return r.ok ? r.json() : null;
  }
  async function runQuestion() {
    $('query-status').textContent = 'running';
    const r = await fetch('/api/dataset', { method: 'POST', credentials: 'same-origin', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ database: 1, type: 'native', native: { query: 'select * from deals' } }) });
    mb.queryStatus = r.status;
    const reader = r.body.getReader();
    const decoder = new TextDecoder();
    let text = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const piece = decoder.decode(value, { stream: true });
      mb.keepalives += (piece.match(/^\\n+/) || [''])[0].length;
      text += piece;
    }
    mb.result = JSON.parse(text);
    $('query-status').textContent = mb.result.status;
    $('rows').textContent = String(mb.result.row_count);
  }
  async function start() {
    const user = await current();
    if (!user) { $('login').hidden = false; return; }
    $('user').textContent = user.email;
    $('app').hidden = false;
  }
  $('login').addEventListener('submit', async (e) => {
    e.preventDefault();
    const r = await fetch('/api/session', { method: 'POST', credentials: 'same-origin', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: $('username').value, password: $('password').value, remember: false }) });
    if (!r.ok) { mb.error = r.status; return; }
    $('login').hidden = true;
    start();
  });
  $('run').addEventListener('click', () => { mb.running = runQuestion().catch((e) => { mb.error = String(e); }); });
  mb.ready = start();
})();`;

function sha256Source(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
}

function csp(nonce: string, hashes: readonly string[]): string {
  const directives: [string, string[]][] = [
    ['default-src', ["'none'"]],
    ['script-src', ["'self'", `'nonce-${nonce}'`, 'https://maps.google.com', 'https://accounts.google.com', ...hashes]],
    ['child-src', ["'self'", 'https://accounts.google.com']],
    ['style-src', ["'self'", `'nonce-${nonce}'`, 'https://accounts.google.com']],
    ['style-src-attr', ["'self'"]],
    ['frame-src', ["'self'", 'https://www.metabase.com/', 'https://metabase.com/']],
    ['font-src', ["'self'", 'data:']],
    ['img-src', ['*', "'self'", 'data:']],
    ['connect-src', ["'self'", 'https://accounts.google.com', 'metabase.us10.list-manage.com']],
    ['manifest-src', ["'self'"]],
    ['media-src', ['www.metabase.com']],
  ];
  return `${directives.map(([k, v]) => `${k} ${v.join(' ')}; `).join('')} frame-ancestors 'none';`;
}

function securityHeaders(nonce: string, hashes: readonly string[]): http.OutgoingHttpHeaders {
  return {
    'cache-control': 'max-age=0, no-cache, must-revalidate, proxy-revalidate',
    expires: 'Tue, 03 Jul 2001 06:00:00 GMT',
    'last-modified': new Date().toUTCString(),
    'strict-transport-security': 'max-age=31536000',
    'content-security-policy': csp(nonce, hashes),
    'x-frame-options': 'DENY',
    'x-xss-protection': '1; mode=block',
    'x-permitted-cross-domain-policies': 'none',
    'x-content-type-options': 'nosniff',
  };
}

/** request.util/https?: X-Forwarded-Proto (or Forwarded proto=) https. */
function isHttps(req: http.IncomingMessage): boolean {
  const xfp = String(req.headers['x-forwarded-proto'] ?? '').split(',')[0]?.trim().toLowerCase();
  if (xfp) return xfp === 'https';
  return /proto=https/i.test(String(req.headers.forwarded ?? ''));
}

function cookieOf(req: http.IncomingMessage, name: string): string | undefined {
  for (const part of String(req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function readJson(req: http.IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>);
      } catch {
        resolve({});
      }
    });
  });
}

export async function startMetabaseStandIn(opts: MetabaseOptions = {}): Promise<MetabaseStandIn> {
  const users = opts.users ?? {};
  const queryMs = opts.queryMs ?? QUERY_MS;
  const keepaliveMs = opts.keepaliveMs ?? KEEPALIVE_MS;
  const requests: MetabaseRequest[] = [];
  const queries: MetabaseQuery[] = [];
  const sessions = new Map<string, string>();
  const live = new Set<string>();
  const timers = new Set<NodeJS.Timeout>();
  const hashes = [sha256Source(INLINE_BOOTSTRAP)];
  let siteUrl = opts.siteUrl;

  const send = (res: http.ServerResponse, status: number, body: string, type: string, nonce: string, extra: http.OutgoingHttpHeaders = {}): void => {
    res.writeHead(status, { ...securityHeaders(nonce, hashes), 'content-type': type, 'content-length': Buffer.byteLength(body), ...extra });
    res.end(body);
  };
  const userOf = (req: http.IncomingMessage): string | undefined => {
    const id = cookieOf(req, METABASE_SESSION_COOKIE);
    return id && live.has(id) ? sessions.get(id) : undefined;
  };

  const handler = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, at: Date.now() });
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const nonce = randomBytes(8).toString('base64url').slice(0, 10);
    if (path.startsWith('/api/') && path !== '/api/health' && siteUrl === undefined) {
      const from = req.headers.origin ?? req.headers['x-forwarded-host'] ?? req.headers.host;
      if (typeof from === 'string' && from !== '') siteUrl = /^https?:\/\//.test(from) ? from : `http://${from}`;
    }
    if (req.method === 'GET' && (path === '/' || path.startsWith('/question') || path.startsWith('/dashboard'))) {
      const bootstrap = JSON.stringify({ 'site-url': siteUrl ?? null, version: { tag: 'v0.56' } }).replace(/</g, '\\u003c');
      const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Metabase</title>
<style nonce="${nonce}">body { font-family: Lato, sans-serif; }</style>
<script type="application/json" id="_metabaseBootstrap">${bootstrap}</script>
<script>${INLINE_BOOTSTRAP}</script>
</head><body>
<form id="login" hidden><input id="username"><input id="password" type="password"><button id="login-button" type="submit">Sign in</button></form>
<main id="app" hidden><p>Hello <span id="user"></span></p><button id="run" type="button">Run question</button>
<p>Query <span id="query-status">idle</span>, rows <span id="rows"></span></p></main>
<script src="/app/dist/app-main.js" defer></script>
</body></html>`;
      send(res, 200, html, 'text/html;charset=utf-8', nonce);
      return;
    }
    if (req.method === 'GET' && path === '/app/dist/app-main.js') {
      send(res, 200, APP_JS, 'application/javascript;charset=utf-8', nonce, { 'cache-control': 'public, max-age=31536000' });
      return;
    }
    if (path === '/api/health') {
      send(res, 200, '{"status":"ok"}', 'application/json;charset=utf-8', nonce);
      return;
    }
    if (req.method === 'GET' && path === '/api/session/properties') {
      send(res, 200, JSON.stringify({ 'site-url': siteUrl ?? null }), 'application/json;charset=utf-8', nonce);
      return;
    }
    if (req.method === 'POST' && path === '/api/session') {
      const body = await readJson(req);
      const email = String(body.username ?? '');
      if (!(email in users) || users[email] !== body.password) {
        send(res, 401, JSON.stringify({ errors: { password: 'did not match stored password' } }), 'application/json;charset=utf-8', nonce);
        return;
      }
      const id = randomUUID();
      sessions.set(id, email);
      live.add(id);
      const secure = isHttps(req) ? ';Secure' : '';
      const maxAge = body.remember === true ? `;Max-Age=${MAX_SESSION_AGE_S}` : '';
      send(res, 200, JSON.stringify({ id }), 'application/json;charset=utf-8', nonce, {
        'set-cookie': [`${METABASE_TIMEOUT_COOKIE}=alive;Path=/;SameSite=Lax${secure};Max-Age=${MAX_SESSION_AGE_S}`, `${METABASE_SESSION_COOKIE}=${id};HttpOnly;Path=/;SameSite=Lax${secure}${maxAge}`],
      });
      return;
    }
    if (req.method === 'DELETE' && path === '/api/session') {
      const id = cookieOf(req, METABASE_SESSION_COOKIE);
      if (id) live.delete(id);
      const gone = ';Expires=Thu, 1 Jan 1970 00:00:00 GMT;Path=/';
      res.writeHead(204, { ...securityHeaders(nonce, hashes), 'set-cookie': [`${METABASE_SESSION_COOKIE}=${gone}`, `metabase.EMBEDDED_SESSION=${gone}`, `${METABASE_TIMEOUT_COOKIE}=${gone}`] });
      res.end();
      return;
    }
    const user = userOf(req);
    if (path.startsWith('/api/') && !user) {
      send(res, 401, 'Unauthenticated', 'text/plain', nonce);
      return;
    }
    if (req.method === 'GET' && path === '/api/user/current') {
      send(res, 200, JSON.stringify({ id: 1, email: user, common_name: user }), 'application/json;charset=utf-8', nonce);
      return;
    }
    if (req.method === 'POST' && path === '/api/dataset') {
      await readJson(req);
      const query: MetabaseQuery = { user: user ?? '', startedAt: Date.now(), outcome: 'running', keepalives: 0 };
      queries.push(query);
      res.writeHead(202, { ...securityHeaders(nonce, hashes), 'content-type': 'application/json;charset=utf-8', 'x-accel-buffering': 'no' });
      res.flushHeaders();
      const tick = setInterval(() => {
        query.keepalives++;
        res.write('\n');
      }, keepaliveMs);
      const done = setTimeout(() => {
        clearInterval(tick);
        timers.delete(done);
        if (res.destroyed) return;
        query.outcome = 'completed';
        const rows = Array.from({ length: 50 }, (_, i) => [i + 1, `Deal ${i + 1}`, (i + 1) * 1000]);
        res.end(JSON.stringify({ data: { rows, cols: [{ name: 'ID' }, { name: 'NAME' }, { name: 'AMOUNT' }] }, row_count: rows.length, status: 'completed', running_time: queryMs }));
      }, queryMs);
      timers.add(done);
      res.on('close', () => {
        clearInterval(tick);
        if (query.outcome === 'running') {
          query.outcome = 'aborted';
          clearTimeout(done);
          timers.delete(done);
        }
      });
      return;
    }
    send(res, 404, 'Not found', 'text/plain', nonce);
  };

  const server = http.createServer((req, res) => {
    void handler(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    queries,
    sessions,
    siteUrl: () => siteUrl,
    inlineScriptHashes: hashes,
    close: async () => {
      for (const t of timers) clearTimeout(t);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
