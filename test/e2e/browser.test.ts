import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { BrowserContext, ConsoleMessage, Page } from 'playwright-core';
import { startTestGateway, type TestGateway } from '../helpers/harness.js';
import { launchBrowser, openPage as openBrowserPage, type TestBrowser } from '../helpers/browser.js';

const TEST_TIMEOUT_MS = 60_000;
const SCREENSHOT = join(tmpdir(), 'crm-gateway-e2e-error-page.png');

/**
 * A stand-in for a second web app on another origin: serves a tiny HTML page. It is reached
 * through the gateway on other.localhost (listed in the API route's CORS origins) and
 * evil.localhost (not listed).
 */
async function startPageUpstream(): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const body = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Another app</title></head><body><h1>Another app</h1><p>${req.headers.host ?? ''}</p></body></html>`;
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

let browser: TestBrowser;
let gw: TestGateway;
let pages: { url: string; close(): Promise<void> };
let origin: string;

before(async () => {
  pages = await startPageUpstream();
  gw = await startTestGateway(
    `
  - name: api-public
    host: api.localhost
    path: /public
    upstream: UPSTREAM
    auth: none
    cors: { origins: [other.localhost], credentials: true }
  - name: other-app
    host: other.localhost
    upstream: ${pages.url}
    auth: none
  - name: evil-app
    host: evil.localhost
    upstream: ${pages.url}
    auth: none
`,
    { GATEWAY_DOMAIN: 'localhost' },
  );
  origin = `https://api.localhost:${gw.port}`;
  // No --host-resolver-rules: Chromium resolves *.localhost to loopback by itself.
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await gw?.close();
  await pages?.close();
});

/** A fresh context and page; console messages and CSP violations are collected. */
async function openPage(t: { after(fn: () => Promise<void>): void }): Promise<{ page: Page; console: ConsoleMessage[]; context: BrowserContext }> {
  const { page, context } = await openBrowserPage(browser, t);
  const messages: ConsoleMessage[] = [];
  page.on('console', (m) => messages.push(m));
  return { page, console: messages, context };
}

interface EchoBody {
  upstream: string;
  method: string;
  path: string;
  headers: Record<string, string>;
}

test('a public route through the gateway: the page shows the echo with the path and X-Forwarded-Proto, with HSTS', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const { page } = await openPage(t);
  const response = await page.goto(`${origin}/public/hello?from=browser`);
  assert.ok(response);
  assert.equal(response.status(), 200);
  assert.equal((await response.serverAddr())?.ipAddress, '127.0.0.1', 'api.localhost resolved to loopback by Chromium itself');
  const headers = response.headers();
  assert.match(headers['strict-transport-security'] ?? '', /^max-age=31536000; includeSubDomains/);
  assert.equal(headers['x-content-type-options'], 'nosniff');

  // What a person sees: Chromium renders the JSON as text.
  const shown = await page.locator('body pre').first().textContent();
  const echo = JSON.parse(shown ?? '') as EchoBody;
  assert.equal(echo.path, '/public/hello?from=browser');
  assert.equal(echo.headers['x-forwarded-proto'], 'https');
  assert.equal(echo.headers['x-request-id'], headers['x-request-id']);
  assert.match(echo.headers.accept ?? '', /text\/html/);
  const seen = gw.upstream.seen.find((s) => s.url === '/public/hello?from=browser');
  assert.ok(seen, 'the upstream got the request');
});

test('a refused request shows the gateway HTML error page with code and request id, and its CSP blocks nothing', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const { page, console: messages } = await openPage(t);
  const cases = [
    { path: '/public/..%2fadmin', status: 400, code: 'PATH_REJECTED', title: '400 · Bad request' },
    { path: '/not-routed', status: 404, code: 'ROUTE_NOT_FOUND', title: '404 · Not found' },
  ];
  const before = gw.upstream.seen.length;
  for (const c of cases) {
    const response = await page.goto(`${origin}${c.path}`);
    assert.ok(response);
    assert.equal(response.status(), c.status);
    const headers = response.headers();
    assert.match(headers['content-type'] ?? '', /^text\/html/);
    assert.match(headers['content-security-policy'] ?? '', /default-src 'none'/);
    assert.match(headers['strict-transport-security'] ?? '', /^max-age=31536000/);
    const requestId = headers['x-request-id'] ?? '';
    assert.match(requestId, /^[0-9a-f-]{36}$/);

    assert.equal(await page.title(), c.title);
    assert.equal(await page.locator('h1').textContent(), c.title);
    const text = (await page.locator('body').innerText()).replace(/\s+/g, ' ');
    assert.ok(text.includes(`Code ${c.code}`), text);
    assert.ok(text.includes(`request ${requestId}`), text);
    // The inline style is allowed by its hash: the page looks as designed.
    assert.match(await page.evaluate('getComputedStyle(document.body).fontFamily'), /system-ui/);
    assert.equal(await page.evaluate('getComputedStyle(document.body).maxWidth'), '576px');
    assert.deepEqual(await page.evaluate('window.__cspViolations'), []);
    const event = gw.log.securityEvents.find((e) => e.event === 'request.denied' && e.requestId === requestId);
    assert.equal(event?.code, c.code);
  }
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  assert.ok(statSync(SCREENSHOT).size > 1000);
  assert.deepEqual(readFileSync(SCREENSHOT).subarray(1, 4).toString('latin1'), 'PNG');
  t.diagnostic(`screenshot: ${SCREENSHOT}`);

  const cspErrors = messages.filter((m) => /Content Security Policy/i.test(m.text()));
  assert.deepEqual(cspErrors.map((m) => m.text()), []);
  assert.equal(gw.upstream.seen.length, before, 'refused requests never reach the upstream');
});

test('a websocket opened by a page script on the same origin echoes through the gateway', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const { page } = await openPage(t);
  await page.goto(`${origin}/public/page`);
  const messages = (await page.evaluate(`new Promise((resolve, reject) => {
    const ws = new WebSocket('wss://' + location.host + '/public/ws?room=1');
    const got = [];
    const timer = setTimeout(() => reject(new Error('no websocket echo within 5 s')), 5000);
    ws.onmessage = (e) => {
      got.push(String(e.data));
      if (got.length === 1) ws.send('hello through the gateway');
      else { clearTimeout(timer); ws.close(); resolve(got); }
    };
    ws.onerror = () => { clearTimeout(timer); reject(new Error('websocket error')); };
  })`)) as string[];
  assert.equal(messages.length, 2);
  const greeting = JSON.parse(messages[0] ?? '') as { path: string; headers: Record<string, string> };
  assert.equal(greeting.path, '/public/ws?room=1');
  assert.equal(greeting.headers['x-forwarded-proto'], 'https');
  assert.equal(greeting.headers.origin, origin);
  assert.equal(messages[1], 'hello through the gateway');
});

/** A fetch with credentials from the page to the API; a CORS refusal surfaces as a TypeError. */
function crossOriginFetch(page: Page, url: string, init: Record<string, unknown>): Promise<{ ok: true; status: number; body: EchoBody } | { ok: false; error: string }> {
  return page.evaluate(`fetch(${JSON.stringify(url)}, ${JSON.stringify({ credentials: 'include', ...init })}).then(
    async (r) => ({ ok: true, status: r.status, body: await r.json() }),
    (e) => ({ ok: false, error: String(e) }),
  )`);
}

test('a page on a listed origin may fetch the API with credentials; a page on another origin is blocked by CORS', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const listed = await openPage(t);
  const listedOrigin = `https://other.localhost:${gw.port}`;
  const landing = await listed.page.goto(`${listedOrigin}/`);
  assert.equal(landing?.status(), 200);
  assert.equal(await listed.page.locator('h1').textContent(), 'Another app');

  // Access-Control-* headers are not readable by the page's script; the browser's view of them is.
  const corsHeaders = listed.page.waitForResponse((r) => r.url().endsWith('/public/cors-get'));
  const get = await crossOriginFetch(listed.page, `${origin}/public/cors-get`, {});
  assert.ok(get.ok, JSON.stringify(get));
  assert.equal(get.status, 200);
  const seenByBrowser = (await corsHeaders).headers();
  assert.equal(seenByBrowser['access-control-allow-origin'], listedOrigin);
  assert.equal(seenByBrowser['access-control-allow-credentials'], 'true');
  assert.equal(get.body.headers.origin, listedOrigin);
  // A JSON POST needs a preflight: the gateway answers it, only the POST goes upstream.
  const post = await crossOriginFetch(listed.page, `${origin}/public/cors-post`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
  assert.ok(post.ok, JSON.stringify(post));
  assert.equal(post.body.method, 'POST');
  assert.deepEqual(
    gw.upstream.seen.filter((s) => s.url === '/public/cors-post').map((s) => s.method),
    ['POST'],
  );

  const foreign = await openPage(t);
  const foreignOrigin = `https://evil.localhost:${gw.port}`;
  await foreign.page.goto(`${foreignOrigin}/`);
  const blockedGet = await crossOriginFetch(foreign.page, `${origin}/public/cors-get-foreign`, {});
  assert.equal(blockedGet.ok, false);
  const blockedPost = await crossOriginFetch(foreign.page, `${origin}/public/cors-post-foreign`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
  assert.equal(blockedPost.ok, false);
  // Blocked by CORS, not by anything else (TLS, DNS): Chromium says so on the console.
  const corsMessages = foreign.console.filter((m) => /blocked by CORS policy/.test(m.text()));
  assert.ok(corsMessages.length >= 2, foreign.console.map((m) => m.text()).join('\n'));
  // The refused preflight kept the POST from ever reaching the upstream.
  assert.equal(gw.upstream.seen.filter((s) => s.url === '/public/cors-post-foreign').length, 0);
  const denied = gw.log.securityEvents.find((e) => e.event === 'request.denied' && e.code === 'CORS_ORIGIN_DENIED' && e.method === 'OPTIONS');
  assert.ok(denied, 'the refused preflight is a security event');
});
