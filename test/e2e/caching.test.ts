import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { BrowserContext, Page } from 'playwright-core';
import { launchBrowser, type LaunchOptions } from '../helpers/browser.js';
import { addUser, startAuthGateway, type AuthTestGateway } from '../helpers/auth-gateway.js';
import { startStaticUpstream, type StaticHit, type StaticUpstream } from '../helpers/static-upstream.js';

/**
 * Issue 12, item 10: a warm NocoDB grid load moved 25.9 MB through the gateway against 124 KB
 * direct. The cause was the browser, not the gateway: Chromium keeps nothing in its HTTP cache
 * for a response that came with a certificate error, and the tests (and the demo's users)
 * clicked through a self-signed certificate. With the development CA trusted, a warm load is
 * served from the cache or revalidated with 304s.
 */

const TEST_TIMEOUT_MS = 90_000;
const USER = 'e2e-cache';
const PASSWORD = 'browser cache password 123';
/** Evaluated in the page (a string: the tests compile without the DOM library). */
const ROWS_DRAWN = "document.getElementById('rows')?.textContent === '400'";

let gw: AuthTestGateway;
let app: StaticUpstream;

before(async () => {
  app = await startStaticUpstream();
  gw = await startAuthGateway({
    routes: `
  - name: static-app
    host: app.localhost
    upstream: ${app.url}
    auth: none
  - name: nocodb
    host: nocodb.localhost
    upstream: ${app.url}
    auth: session
    roles: [staff]
`,
    env: { GATEWAY_DOMAIN: 'localhost' },
  });
  await addUser(gw.auth, USER, PASSWORD, ['staff']);
});

after(async () => {
  await gw?.close();
  await app?.close();
});

interface Load {
  /** What reached the upstream during the load. */
  hits: StaticHit[];
  /** Response body bytes the gateway forwarded to the browser (access log `bytesOut`). */
  gatewayBytes: number;
  /** Response body bytes the upstream sent. */
  upstreamBytes: number;
}

/** Runs `load` and returns what the upstream and the gateway's access log saw meanwhile. */
async function observe(load: () => Promise<void>): Promise<Load> {
  const hits = app.hits.length;
  const entries = gw.log.accessEntries.length;
  await load();
  return {
    hits: app.hits.slice(hits),
    gatewayBytes: gw.log.accessEntries.slice(entries).reduce((n, e) => n + (typeof e.bytesOut === 'number' ? e.bytesOut : 0), 0),
    upstreamBytes: app.hits.slice(hits).reduce((n, h) => n + h.bytes, 0),
  };
}

/** Opens the app's page and waits for its JSON call to be drawn: every asset is loaded then. */
async function openApp(page: Page, url: string): Promise<void> {
  await page.goto(url);
  await page.waitForFunction(ROWS_DRAWN);
}

async function signIn(page: Page, url: string): Promise<void> {
  await page.goto(url);
  await page.fill('#username', USER);
  await page.fill('#password', PASSWORD);
  await Promise.all([page.waitForURL(url), page.click('button[type=submit]')]);
  await page.waitForFunction(ROWS_DRAWN);
}

/** A cold then a warm load in one browser context, the way a user comes back to a tab. */
async function coldAndWarm(trust: LaunchOptions['trust'], url: string, session: boolean): Promise<{ cold: Load; warm: Load }> {
  const browser = await launchBrowser({ trust });
  let context: BrowserContext | undefined;
  try {
    context = await browser.newContext();
    const page = await context.newPage();
    const cold = await observe(() => (session ? signIn(page, url) : openApp(page, url)));
    // about:blank in between: a navigation to the URL already shown would be a reload, which
    // revalidates even fresh entries.
    await page.goto('about:blank');
    const warm = await observe(() => openApp(page, url));
    return { cold, warm };
  } finally {
    await context?.close();
    await browser.close();
  }
}

function summary(l: Load): string {
  return `${l.gatewayBytes} B through the gateway, ${l.upstreamBytes} B from the upstream; upstream: ${l.hits.map((h) => `${h.path} ${h.status}`).join(', ') || 'nothing'}`;
}

/** What reached the upstream, order aside (Chromium fetches subresources in parallel). */
function requests(l: Load): string[] {
  return l.hits.map((h) => `${h.path} ${h.status}`).sort();
}

/** A warm load as HTTP caching (RFC 9111) allows: fresh entries reused, the rest revalidated. */
function assertServedFromCache(warm: Load): void {
  const byPath = new Map(warm.hits.map((h) => [h.path, h]));
  assert.equal(byPath.get('/app/app.3f2a.js'), undefined, 'the immutable bundle comes from the cache without a request');
  for (const path of ['/app/', '/app/app.css', '/app/api/rows']) {
    const hit = byPath.get(path);
    assert.equal(hit?.status, 304, `${path} revalidated: ${summary(warm)}`);
    assert.ok(hit?.ifNoneMatch, `${path} carried If-None-Match through the gateway`);
  }
  const logo = byPath.get('/app/logo.svg');
  assert.equal(logo?.status, 304, `logo.svg revalidated: ${summary(warm)}`);
  assert.ok(logo?.ifModifiedSince, 'If-Modified-Since reached the upstream');
  assert.deepEqual(warm.hits.filter((h) => h.status === 200), [], 'no full response on the warm load');
  assert.equal(warm.gatewayBytes, 0, 'no body bytes moved through the gateway');
}

test('regression: with the development CA trusted, a warm load through the gateway is Chromium cache hits and 304s', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const { cold, warm } = await coldAndWarm('ca', `https://app.localhost:${gw.port}/app/`, false);
  t.diagnostic(`cold: ${summary(cold)}`);
  t.diagnostic(`warm: ${summary(warm)}`);
  assert.deepEqual(cold.hits.filter((h) => h.status === 200).map((h) => h.path).sort(), ['/app/', '/app/api/rows', '/app/app.3f2a.js', '/app/app.css', '/app/logo.svg'], 'the cold load fetched everything once');
  assert.ok(cold.gatewayBytes >= app.pageBytes, summary(cold));
  assertServedFromCache(warm);
});

test('regression: the same through a session route (NocoDB behind the gateway login)', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const { cold, warm } = await coldAndWarm('ca', `https://nocodb.localhost:${gw.port}/app/`, true);
  t.diagnostic(`cold: ${summary(cold)}`);
  t.diagnostic(`warm: ${summary(warm)}`);
  assertServedFromCache(warm);
});

test('a warm load through the gateway asks the upstream exactly what a warm load straight to it asks', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const direct = await coldAndWarm('ca', `${app.url}/app/`, false);
  const proxied = await coldAndWarm('ca', `https://app.localhost:${gw.port}/app/`, false);
  t.diagnostic(`warm, direct (plain HTTP): ${summary(direct.warm)}`);
  t.diagnostic(`warm, through the gateway: ${summary(proxied.warm)}`);
  assert.deepEqual(requests(proxied.warm), requests(direct.warm));
  assert.equal(proxied.warm.upstreamBytes, direct.warm.upstreamBytes);
});

test('figures: a warm load under a clicked-through certificate error against the trusted CA', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  // Not asserted: this records what Chromium does, which is its business, and shows why the
  // tests trust a CA. Chromium 156 with certificate errors ignored fetched the page and its
  // JSON call again in full (no cache entry), and revalidated only the subresources.
  const url = `https://app.localhost:${gw.port}/app/`;
  const ignored = await coldAndWarm('ignore-errors', url, false);
  const trusted = await coldAndWarm('ca', url, false);
  t.diagnostic(`cold: ${summary(trusted.cold)}`);
  t.diagnostic(`warm, certificate error ignored: ${summary(ignored.warm)}`);
  t.diagnostic(`warm, development CA trusted: ${summary(trusted.warm)}`);
  assert.ok(ignored.cold.gatewayBytes > 0 && trusted.cold.gatewayBytes > 0);
});
