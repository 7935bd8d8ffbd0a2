import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { BrowserContext, Page } from 'playwright-core';
import { launchBrowser, openPage, type TestBrowser, signInAtGateway } from '../helpers/browser.js';
import { ACCESS_COOKIE, REFRESH_COOKIE } from '../../src/auth/cookies.js';
import type { EchoUpstream, SeenRequest } from '../../src/demo/echo-upstream.js';
import { addUser, startAuthGateway, uniq, type AuthTestGateway } from '../helpers/auth-gateway.js';
import { freePort } from '../helpers/ports.js';

// Issue #12 item 3 in a real browser: after the gateway logout (or another user's login) no
// application session of the previous user survives in the browser: NocoDB's refresh_token
// cookie and its localStorage token, Metabase's metabase.SESSION, on every session host.

const TEST_TIMEOUT_MS = 90_000;
const PASSWORD = 'browser test password 123';

/**
 * The applications' client-side sessions, as NocoDB 0.301 and Metabase keep them: `/app` sets
 * the app's own cookie (NocoDB `refresh_token`, Metabase `metabase.SESSION`, Path=/, HttpOnly)
 * and a token in localStorage by a script of the page. Every request is recorded with the
 * cookies it carried, so the test can assert what reached the application.
 */
async function startAppUpstream(): Promise<EchoUpstream> {
  const seen: SeenRequest[] = [];
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body: '', complete: true });
    req.resume();
    const user = String(req.headers['x-gateway-user'] ?? '');
    const metabase = String(req.headers['x-forwarded-host'] ?? req.headers.host ?? '').startsWith('metabase.');
    if (req.url === '/app') {
      const cookie = metabase ? `metabase.SESSION=mb-${user}; Path=/; HttpOnly; SameSite=Lax` : `refresh_token=nc-${user}; Path=/; HttpOnly`;
      const body = `<!doctype html><title>app</title><script>localStorage.setItem('app-token', ${JSON.stringify(user)})</script><p>app of ${user}</p>`;
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'set-cookie': cookie, 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    const body = `<!doctype html><title>page</title><p>${user}</p>`;
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

let browser: TestBrowser;
let gw: AuthTestGateway;
let upstream: EchoUpstream;
let nocodb: string;
let metabase: string;

before(async () => {
  upstream = await startAppUpstream();
  gw = await startAuthGateway({
    routes: `
  - name: nocodb
    host: nocodb.localhost
    upstream: UPSTREAM
    auth: session
    roles: [staff]
  - name: metabase
    host: metabase.localhost
    upstream: UPSTREAM
    auth: session
    roles: [staff]
`,
    env: { GATEWAY_DOMAIN: 'localhost', HTTPS_PORT: String(await freePort()) },
    upstream,
  });
  nocodb = `https://nocodb.localhost:${gw.port}`;
  metabase = `https://metabase.localhost:${gw.port}`;
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await gw?.close();
  await upstream?.close();
});

async function newUser(): Promise<string> {
  const name = uniq('e2e-clear');
  await addUser(gw.auth, name, PASSWORD, ['staff']);
  return name;
}

async function signIn(page: Page, user: string): Promise<void> {
  await signInAtGateway(page, user, PASSWORD);
}

/** Opens the app on `origin` (signing in when asked) and checks it left its session behind. */
async function useApp(page: Page, context: BrowserContext, origin: string, user: string): Promise<void> {
  await page.goto(`${origin}/app`);
  if (new URL(page.url()).pathname === '/auth/login') await signIn(page, user);
  assert.equal(page.url(), `${origin}/app`);
  assert.equal(await page.evaluate("localStorage.getItem('app-token')"), user, 'the app keeps its token in localStorage');
  const names = (await context.cookies(origin)).map((c) => c.name);
  assert.ok(names.includes(origin === metabase ? 'metabase.SESSION' : 'refresh_token'), `the app cookie is set: ${names.join(',')}`);
}

/** What the browser keeps for `origin`: its cookie names and the app's localStorage token. */
async function leftOn(page: Page, context: BrowserContext, origin: string): Promise<{ cookies: string[]; token: unknown }> {
  // The login page runs no script of its own; the debugger reads the origin's storage.
  if (!page.url().startsWith(origin)) await page.goto(`${origin}/auth/login`);
  return { cookies: (await context.cookies(origin)).map((c) => c.name).filter((n) => n !== '__Host-crmgw_csrf'), token: await page.evaluate("localStorage.getItem('app-token')") };
}

function seenBy(user: string): SeenRequest[] {
  return upstream.seen.filter((r) => r.headers['x-gateway-user'] === user);
}

test('logout clears the applications sessions on every session host; the next user brings none of them to the app', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const { page, context } = await openPage(browser, t);
  const a = await newUser();
  await useApp(page, context, nocodb, a);
  await useApp(page, context, metabase, a);

  await page.goto(`${nocodb}/auth/logout`);
  const visited: string[] = [];
  page.on('request', (r) => {
    if (r.isNavigationRequest()) visited.push(new URL(r.url()).host + new URL(r.url()).pathname);
  });
  await Promise.all([page.waitForURL(`${nocodb}/auth/login`), page.click('button[type=submit]')]);
  assert.deepEqual(visited, [`nocodb.localhost:${gw.port}/auth/logout`, `metabase.localhost:${gw.port}/auth/clear`, `nocodb.localhost:${gw.port}/auth/clear`, `nocodb.localhost:${gw.port}/auth/login`]);

  for (const origin of [nocodb, metabase]) {
    const left = await leftOn(page, context, origin);
    assert.deepEqual(left, { cookies: [], token: null }, `nothing left on ${origin}`);
  }

  // The next person signs in at the same browser: the app sees none of the previous user's cookies.
  const b = await newUser();
  await page.goto(`${nocodb}/grid`);
  await signIn(page, b);
  assert.equal(page.url(), `${nocodb}/grid`);
  const reached = seenBy(b);
  assert.ok(reached.length > 0, 'the next user reached the app');
  for (const r of reached) assert.doesNotMatch(String(r.headers.cookie ?? ''), new RegExp(`${a}|refresh_token|metabase\\.SESSION`), `no previous app cookie on ${r.url}`);
  assert.equal(await page.evaluate("localStorage.getItem('app-token')"), null);
});

test('a different user signing in without a logout: the host it signs in on is cleared of the previous user', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const { page, context } = await openPage(browser, t);
  const a = await newUser();
  await useApp(page, context, nocodb, a);

  const b = await newUser();
  await page.goto(`${nocodb}/auth/login?rd=/after`);
  await signIn(page, b);
  assert.equal(page.url(), `${nocodb}/after`);
  assert.equal(await page.evaluate("localStorage.getItem('app-token')"), null, 'the previous user token is gone from localStorage');
  const names = (await context.cookies(nocodb)).map((c) => c.name);
  assert.ok(!names.includes('refresh_token'), `no previous app cookie: ${names.join(',')}`);
  assert.ok(names.includes(ACCESS_COOKIE) && names.includes(REFRESH_COOKIE), 'the new session survives its own clearing');
  for (const r of seenBy(b)) assert.doesNotMatch(String(r.headers.cookie ?? ''), /refresh_token/, `no previous app cookie on ${r.url}`);
});
