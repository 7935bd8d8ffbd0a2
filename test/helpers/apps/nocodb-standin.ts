/**
 * A stand-in for NocoDB 0.301.3 (npm `nocodb`), which cannot be installed here (its package
 * needs pnpm, a non-registry tarball and a native sqlite build). It reproduces what NocoDB does
 * that a gateway in front of it meets, read from NocoDB's sources (nocodb/nocodb):
 *
 * - Site URL from the request (packages/nocodb/src/middlewares/global/global.middleware.ts):
 *   `ncSiteUrl = NC_PUBLIC_URL || req.protocol + '://' + req.get('host')`, with Express's
 *   `trust proxy` on (src/run/docker.ts), so the scheme is X-Forwarded-Proto's and the host is
 *   the Host header. The GUI gets it from `GET /api/v1/meta/nocodb/info` and builds its socket.io
 *   URL from it (packages/nc-gui/plugins/socket.ts: `io(new URL(ncSiteUrl, location).href,
 *   { extraHeaders: { 'xc-auth': token }, path })`), so a Host naming 127.0.0.1 sends the
 *   browser around the proxy.
 * - socket.io served by the real `socket.io` server: polling first, then the websocket upgrade;
 *   the handshake is authenticated by the `xc-auth` header.
 * - The long-poll `GET /api/v1/notifications/poll` (src/controllers/notifications.controller.ts):
 *   held for POLL_INTERVAL (30 s; `pollMs` here so tests stay short), then `{"status":"refresh"}`
 *   with `Cache-Control: no-cache, must-revalidate`; the GUI reopens it at once, all the time.
 * - Its own sign-in: `POST /api/v1/auth/user/signin` answers `{ token }` and sets the
 *   `refresh_token` cookie as src/services/users/helpers.ts setTokenCookie does (httpOnly,
 *   7 days, Path=/ by Express's default, `Domain=NC_BASE_HOST_NAME` when that is set);
 *   `POST /api/v1/auth/token/refresh` trades that cookie for a new token (and a new cookie);
 *   `POST /api/v1/auth/user/signout` clears it. The GUI keeps the token in localStorage under
 *   `nocodb-gui-v2` (nc-gui composables/useGlobal) and sends it as `xc-auth`.
 * - `/` redirects to `/dashboard` (src/Noco.ts), where the GUI lives.
 *
 * Everything it received is kept in `requests`, `sockets` and `polls` for the tests to assert on.
 */
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Server as SocketServer } from 'socket.io';

export const NOCODB_RELEASE = '0.301.3';
/** The GUI's localStorage key. */
export const NOCODB_STORAGE_KEY = 'nocodb-gui-v2';
export const NOCODB_REFRESH_COOKIE = 'refresh_token';
const REFRESH_COOKIE_DAYS = 7;
const POLL_INTERVAL_MS = 30_000;

export interface NocodbOptions {
  /** How long the notifications long-poll is held (NocoDB: 30 s). */
  pollMs?: number;
  /** NC_PUBLIC_URL: the site URL, instead of one built from the request. */
  publicUrl?: string;
  /** NC_BASE_HOST_NAME: the refresh_token cookie's Domain. */
  baseHostName?: string;
  /** email → password of NocoDB's own users. */
  users?: Record<string, string>;
}

export interface NocodbRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly at: number;
}

export interface NocodbSocket {
  readonly user: string;
  readonly initialTransport: string;
  upgradedTo?: string;
  readonly headers: http.IncomingHttpHeaders;
  disconnectReason?: string;
}

export interface NocodbPoll {
  readonly user: string;
  readonly startedAt: number;
  /** The X-Request-Id it came with (a gateway sets it), to join the gateway's log. */
  readonly requestId: string | undefined;
  /** 'answered' after pollMs, 'aborted' when the client (or the gateway) went away first. */
  outcome: 'open' | 'answered' | 'aborted';
  endedAt?: number;
}

export interface NocodbStandIn {
  readonly url: string;
  readonly port: number;
  readonly requests: NocodbRequest[];
  readonly sockets: NocodbSocket[];
  readonly polls: NocodbPoll[];
  /** refresh_token value → user, for every cookie it ever issued. */
  readonly refreshTokens: Map<string, string>;
  close(): Promise<void>;
}

function cookieOf(req: http.IncomingMessage, name: string): string | undefined {
  for (const part of String(req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return decodeURIComponent(part.slice(eq + 1).trim());
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

function json(res: http.ServerResponse, status: number, body: unknown, headers: http.OutgoingHttpHeaders = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** The GUI's shell: NocoDB's Nuxt app, reduced to what touches the network. */
function dashboardHtml(): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>NocoDB</title>
<script src="/socket.io/socket.io.min.js"></script></head>
<body>
<h1>NocoDB</h1>
<form id="signin" hidden>
  <input id="email" type="email"><input id="password" type="password">
  <button id="signin-button" type="submit">Sign in</button>
</form>
<section id="app" hidden>
  <p>Signed in as <span id="user"></span></p>
  <p>Site URL <span id="site-url"></span></p>
  <p>Realtime <span id="socket-status">disconnected</span> <span id="transports"></span></p>
  <p>Notifications polls <span id="polls">0</span></p>
</section>
<script>
(() => {
  const KEY = ${JSON.stringify(NOCODB_STORAGE_KEY)};
  const load = () => { try { return JSON.parse(localStorage.getItem(KEY) || '{}'); } catch { return {}; } };
  const save = (s) => localStorage.setItem(KEY, JSON.stringify(s));
  const nc = (window.nc = { transports: [], polls: 0, pollErrors: [], refreshes: 0, subscribed: null, socketErrors: [] });
  const $ = (id) => document.getElementById(id);

  async function refresh() {
    // nc-gui's axios interceptor: on 401, trade the refresh_token cookie for a new token.
    const r = await fetch('/api/v1/auth/token/refresh', { method: 'POST', credentials: 'same-origin' });
    if (!r.ok) { save({}); return false; }
    nc.refreshes++;
    save({ ...load(), token: (await r.json()).token });
    return true;
  }
  async function api(path, init = {}, retried = false) {
    const token = load().token;
    const r = await fetch(path, { credentials: 'same-origin', ...init, headers: { ...(init.headers || {}), ...(token ? { 'xc-auth': token } : {}) } });
    if (r.status === 401 && !retried && (await refresh())) return api(path, init, true);
    return r;
  }
  async function pollLoop() {
    for (;;) {
      let r;
      try { r = await api('/api/v1/notifications/poll'); } catch (e) { nc.pollErrors.push(String(e)); await new Promise((ok) => setTimeout(ok, 1000)); continue; }
      if (!r.ok) { nc.pollErrors.push(r.status); await new Promise((ok) => setTimeout(ok, 1000)); continue; }
      await r.json();
      nc.polls++;
      $('polls').textContent = String(nc.polls);
    }
  }
  function connect(siteUrl, token) {
    const url = new URL(siteUrl, window.location.href.split(/[?#]/)[0]);
    const path = url.pathname.endsWith('/') ? url.pathname + 'socket.io' : url.pathname + '/socket.io';
    const socket = io(url.href, { extraHeaders: { 'xc-auth': token }, path });
    nc.socket = socket;
    socket.on('connect', () => {
      const engine = socket.io.engine;
      nc.transports.push(engine.transport.name);
      engine.once('upgrade', (t) => { nc.transports.push(t.name); $('transports').textContent = nc.transports.join(' → '); });
      $('socket-status').textContent = 'connected';
      $('transports').textContent = nc.transports.join(' → ');
      socket.emit('subscribe', JSON.stringify({ workspace_id: 'w1', base_id: 'b1' }), (ack) => { nc.subscribed = ack; });
    });
    socket.on('connect_error', (e) => { nc.socketErrors.push(e.message); $('socket-status').textContent = 'error'; });
    socket.on('disconnect', (reason) => { nc.disconnects = (nc.disconnects || []).concat(reason); $('socket-status').textContent = 'disconnected'; });
  }
  async function start() {
    const me = await api('/api/v1/auth/user/me');
    const user = me.ok ? await me.json() : {};
    if (!user.email) { save({}); $('signin').hidden = false; return; }
    $('user').textContent = user.email;
    const info = await (await api('/api/v1/meta/nocodb/info')).json();
    nc.siteUrl = info.ncSiteUrl;
    $('site-url').textContent = info.ncSiteUrl;
    $('app').hidden = false;
    connect(info.ncSiteUrl, load().token);
    pollLoop();
  }
  $('signin').addEventListener('submit', async (e) => {
    e.preventDefault();
    const r = await fetch('/api/v1/auth/user/signin', { method: 'POST', credentials: 'same-origin', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: $('email').value, password: $('password').value }) });
    if (!r.ok) { nc.signinError = r.status; return; }
    save({ token: (await r.json()).token });
    $('signin').hidden = true;
    start();
  });
  nc.ready = start();
})();
</script>
</body></html>`;
}

export async function startNocodbStandIn(opts: NocodbOptions = {}): Promise<NocodbStandIn> {
  const pollMs = opts.pollMs ?? POLL_INTERVAL_MS;
  const users = opts.users ?? {};
  const requests: NocodbRequest[] = [];
  const sockets: NocodbSocket[] = [];
  const polls: NocodbPoll[] = [];
  const tokens = new Map<string, string>();
  const refreshTokens = new Map<string, string>();
  const liveRefresh = new Set<string>();
  const timers = new Set<NodeJS.Timeout>();

  const siteUrl = (req: http.IncomingMessage): string => {
    if (opts.publicUrl) return opts.publicUrl.replace(/\/+$/, '');
    // Express with `trust proxy`: req.protocol is the first X-Forwarded-Proto, else the socket's.
    const proto = String(req.headers['x-forwarded-proto'] ?? 'http').split(',')[0]?.trim() || 'http';
    return `${proto}://${req.headers.host ?? ''}`;
  };
  const userOf = (req: http.IncomingMessage): string | undefined => {
    const token = req.headers['xc-auth'];
    return typeof token === 'string' ? tokens.get(token) : undefined;
  };
  const issueRefresh = (user: string): string => {
    const value = randomBytes(40).toString('hex');
    refreshTokens.set(value, user);
    liveRefresh.add(value);
    const expires = new Date(Date.now() + REFRESH_COOKIE_DAYS * 86_400_000).toUTCString();
    const domain = opts.baseHostName ? `; Domain=${opts.baseHostName}` : '';
    return `${NOCODB_REFRESH_COOKIE}=${value}${domain}; Path=/; Expires=${expires}; HttpOnly`;
  };
  const issueToken = (user: string): string => {
    const token = randomBytes(24).toString('base64url');
    tokens.set(token, user);
    return token;
  };

  const handler = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (path.startsWith('/socket.io/')) return; // socket.io's own listener answers
    if (req.method === 'GET' && path === '/') {
      res.writeHead(302, { location: '/dashboard', 'content-length': 0 });
      res.end();
      return;
    }
    if (req.method === 'GET' && (path === '/dashboard' || path.startsWith('/dashboard/'))) {
      const html = dashboardHtml();
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(html), 'x-powered-by': 'Express' });
      res.end(html);
      return;
    }
    if (req.method === 'GET' && path === '/api/v1/meta/nocodb/info') {
      json(res, 200, { authType: 'jwt', version: NOCODB_RELEASE, ncSiteUrl: siteUrl(req), ncMin: false });
      return;
    }
    if (req.method === 'GET' && path === '/api/v1/auth/user/me') {
      const user = userOf(req);
      json(res, 200, user ? { email: user, roles: { org_level_creator: true } } : { roles: { guest: true } });
      return;
    }
    if (req.method === 'POST' && path === '/api/v1/auth/user/signin') {
      const body = await readJson(req);
      const email = String(body.email ?? '');
      if (!(email in users) || users[email] !== body.password) {
        json(res, 400, { msg: 'Invalid credentials' });
        return;
      }
      json(res, 200, { token: issueToken(email) }, { 'set-cookie': issueRefresh(email) });
      return;
    }
    if (req.method === 'POST' && path === '/api/v1/auth/token/refresh') {
      const old = cookieOf(req, NOCODB_REFRESH_COOKIE);
      const user = old === undefined ? undefined : refreshTokens.get(old);
      if (!old || !user || !liveRefresh.has(old)) {
        json(res, 400, { msg: old ? 'Invalid refresh token' : 'Missing refresh token' });
        return;
      }
      liveRefresh.delete(old);
      json(res, 200, { token: issueToken(user) }, { 'set-cookie': issueRefresh(user) });
      return;
    }
    if (req.method === 'POST' && path === '/api/v1/auth/user/signout') {
      const old = cookieOf(req, NOCODB_REFRESH_COOKIE);
      if (old) liveRefresh.delete(old);
      json(res, 200, { msg: 'Signed out successfully' }, { 'set-cookie': `${NOCODB_REFRESH_COOKIE}=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT` });
      return;
    }
    if (req.method === 'GET' && path === '/api/v1/notifications/poll') {
      const user = userOf(req);
      if (!user) {
        json(res, 401, { msg: 'Authentication required' });
        return;
      }
      res.setHeader('cache-control', 'no-cache, must-revalidate');
      const rid = req.headers['x-request-id'];
      const poll: NocodbPoll = { user, startedAt: Date.now(), requestId: typeof rid === 'string' ? rid : undefined, outcome: 'open' };
      polls.push(poll);
      const timer = setTimeout(() => {
        timers.delete(timer);
        if (res.destroyed) return;
        poll.outcome = 'answered';
        poll.endedAt = Date.now();
        json(res, 200, { status: 'refresh' });
      }, pollMs);
      timers.add(timer);
      res.on('close', () => {
        if (poll.outcome === 'open') {
          poll.outcome = 'aborted';
          poll.endedAt = Date.now();
          clearTimeout(timer);
          timers.delete(timer);
        }
      });
      return;
    }
    json(res, 404, { msg: 'Not found' });
  };

  const server = http.createServer((req, res) => {
    void handler(req, res).catch(() => {
      if (!res.headersSent) json(res, 500, { msg: 'Internal error' });
    });
  });
  const io = new SocketServer(server, { serveClient: true, transports: ['polling', 'websocket'] });
  // Recorded before socket.io's listener sees it, socket.io's own requests included.
  server.prependListener('request', (req: http.IncomingMessage) => requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, at: Date.now() }));
  server.prependListener('upgrade', (req: http.IncomingMessage) => requests.push({ method: 'UPGRADE', url: req.url ?? '', headers: req.headers, at: Date.now() }));
  io.use((socket, next) => {
    const token = socket.handshake.headers['xc-auth'];
    const user = typeof token === 'string' ? tokens.get(token) : undefined;
    if (!user) {
      next(new Error('Unauthorized'));
      return;
    }
    (socket.data as { user?: string }).user = user;
    next();
  });
  io.on('connection', (socket) => {
    const entry: NocodbSocket = { user: (socket.data as { user: string }).user, initialTransport: socket.conn.transport.name, headers: socket.handshake.headers };
    sockets.push(entry);
    socket.conn.once('upgrade', (t: { name: string }) => (entry.upgradedTo = t.name));
    socket.on('disconnect', (reason) => (entry.disconnectReason = reason));
    socket.on('subscribe', (data: string, ack?: (r: unknown) => void) => {
      const { workspace_id: w, base_id: b } = JSON.parse(data) as { workspace_id: string; base_id: string };
      ack?.({ status: 'subscribed', channel: `${w}:${b}` });
    });
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    sockets,
    polls,
    refreshTokens,
    close: async () => {
      for (const t of timers) clearTimeout(t);
      io.disconnectSockets(true);
      await new Promise<void>((resolve) => {
        void io.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
