import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { BrowserContext, Page } from 'playwright-core';
import { launchBrowser, type TestBrowser, signInAtGateway } from '../helpers/browser.js';
import { addUser, startAuthGateway, type AuthTestGateway } from '../helpers/auth-gateway.js';
import { waitFor } from '../helpers/wait.js';
import { NOCODB_REFRESH_COOKIE, NOCODB_STORAGE_KEY, startNocodbStandIn, type NocodbStandIn } from '../helpers/apps/nocodb-standin.js';
import { ACCESS_COOKIE, REFRESH_COOKIE } from '../../src/auth/cookies.js';
import { SessionClient } from '../helpers/session-client.js';
import { freePort } from '../helpers/ports.js';

/**
 * One staff flow through the gateway in Chromium against the NocoDB stand-in (NocoDB 0.301.3's
 * behaviours, see test/helpers/apps/nocodb-standin.ts): sign in at the gateway, then NocoDB's own
 * sign-in; NocoDB's page builds its socket.io URL from the Host it saw and connects (polling, then
 * the websocket upgrade) while its notifications long-poll runs; a session renewal rides on a
 * long-poll that the user's navigation aborts (issue 12 item 2); logout clears NocoDB's
 * refresh_token cookie and its localStorage token (item 3); the next user signs in and NocoDB
 * sees nothing of the previous one.
 *
 * The steps are separate tests on one browser context, in order, so a step that fails (a feature
 * not landed yet) still lets the others say what they see.
 */

const TEST_TIMEOUT_MS = 60_000;
/** The gateway's access cookie lives this long; the long-poll outlives it. */
const SESSION_TTL_MS = 3_000;
const REUSE_GRACE_MS = 1_000;
/** NocoDB holds its poll 30 s; here long enough to outlive the access cookie and the reuse grace. */
const POLL_MS = 4_000;
const STAFF = [
  { gateway: 'nocodb-staff-ana', nocodb: 'ana@crm.test', password: 'ana gateway password 1' },
  { gateway: 'nocodb-staff-luis', nocodb: 'luis@crm.test', password: 'luis gateway password 2' },
] as const;

let browser: TestBrowser;
let gw: AuthTestGateway;
let nocodb: NocodbStandIn;
let origin: string;
let context: BrowserContext;
let page: Page;
let signedInAt = 0;

before(async () => {
  nocodb = await startNocodbStandIn({ pollMs: POLL_MS, users: Object.fromEntries(STAFF.map((s) => [s.nocodb, `${s.password} nocodb`])) });
  const httpsPort = await freePort();
  gw = await startAuthGateway({
    // No preserveHost and no NC_PUBLIC_URL: NocoDB builds its URLs from the Host it is sent.
    routes: `
  - name: nocodb
    host: nocodb.localhost
    upstream: ${nocodb.url}
    auth: session
    roles: [staff]
    timeout: 60s
`,
    env: { GATEWAY_DOMAIN: 'localhost', HTTPS_PORT: String(httpsPort) },
    extraYaml: `auth: { sessionTtl: ${SESSION_TTL_MS}ms, refreshReuseGrace: ${REUSE_GRACE_MS}ms }`,
  });
  for (const s of STAFF) await addUser(gw.auth, s.gateway, s.password, ['staff']);
  origin = `https://nocodb.localhost:${gw.port}`;
  browser = await launchBrowser();
  context = await browser.newContext();
  page = await context.newPage();
});

after(async () => {
  await context?.close();
  await browser?.close();
  await gw?.close();
  await nocodb?.close();
});

async function gatewaySignIn(user: string, password: string): Promise<void> {
  assert.equal(new URL(page.url()).pathname, '/auth/login', `on the gateway's login page, not ${page.url()}`);
  await signInAtGateway(page, user, password);
}

async function nocodbSignIn(email: string, password: string): Promise<void> {
  await page.waitForSelector('#signin:not([hidden])');
  await page.fill('#email', email);
  await page.fill('#password', password);
  await page.click('#signin-button');
  await page.waitForSelector('#app:not([hidden])');
}

interface PageState {
  siteUrl?: string;
  transports: string[];
  polls: number;
  pollErrors: unknown[];
  socketErrors: string[];
  subscribed: { status: string } | null;
}

const pageState = (): Promise<PageState> => page.evaluate('({ siteUrl: nc.siteUrl, transports: nc.transports, polls: nc.polls, pollErrors: nc.pollErrors, socketErrors: nc.socketErrors, subscribed: nc.subscribed })');

test('sign in at the gateway, then NocoDB; its socket.io connects through the gateway (polling, then websocket) and its long-poll runs', { timeout: TEST_TIMEOUT_MS }, async () => {
  const [ana] = STAFF;
  await page.goto(`${origin}/`);
  assert.equal(nocodb.requests.length, 0, 'nothing reached NocoDB before the gateway sign-in');
  await gatewaySignIn(ana.gateway, ana.password);
  signedInAt = Date.now();
  assert.equal(new URL(page.url()).pathname, '/dashboard', 'NocoDB’s redirect / → /dashboard followed on the public origin');
  await nocodbSignIn(ana.nocodb, `${ana.password} nocodb`);

  const stored = (await page.evaluate(`localStorage.getItem(${JSON.stringify(NOCODB_STORAGE_KEY)})`)) as string | null;
  assert.match(stored ?? '', /"token":"[^"]+"/, 'NocoDB keeps its token in localStorage');
  const nocoCookie = (await context.cookies(origin)).find((c) => c.name === NOCODB_REFRESH_COOKIE);
  assert.ok(nocoCookie, 'NocoDB’s refresh_token cookie is stored');
  assert.equal(nocoCookie.httpOnly, true);
  assert.equal(nocoCookie.secure, true, 'made Secure by the gateway on HTTPS');
  assert.equal(nocoCookie.domain, 'nocodb.localhost', 'host-only');

  await waitFor(async () => (await pageState()).transports.includes('websocket'), 'socket.io upgraded to websocket', 10_000);
  const state = await pageState();
  assert.equal(state.siteUrl, origin, 'NocoDB built its site URL from the public Host and X-Forwarded-Proto');
  // socket.io's order; the gateway closes the websocket when the access cookie expires and
  // socket.io reconnects the same way, so later entries may follow.
  assert.deepEqual(state.transports.slice(0, 2), ['polling', 'websocket']);
  assert.deepEqual(state.socketErrors, []);
  await waitFor(async () => (await pageState()).subscribed !== null, 'the subscribe ack', 5_000);
  assert.equal((await pageState()).subscribed?.status, 'subscribed');

  const socket = nocodb.sockets.find((s) => s.user === ana.nocodb && s.upgradedTo === 'websocket');
  assert.ok(socket, `NocoDB saw a socket.io connection upgraded to websocket: ${JSON.stringify(nocodb.sockets.map((s) => [s.initialTransport, s.upgradedTo]))}`);
  assert.equal(socket.initialTransport, 'polling');
  assert.equal(socket.headers['x-gateway-user'], ana.gateway, 'through the gateway, not around it');
  assert.equal(socket.headers['x-forwarded-proto'], 'https');
  assert.equal(socket.headers.host, `nocodb.localhost:${gw.port}`);
  const upgrade = nocodb.requests.find((r) => r.method === 'UPGRADE' && r.url.startsWith('/socket.io/'));
  assert.equal(upgrade?.headers['x-gateway-user'], ana.gateway, 'the websocket upgrade came through the gateway');
  assert.ok(nocodb.requests.every((r) => r.headers['x-gateway-user'] !== undefined), 'every request NocoDB got came through the gateway');

  await waitFor(async () => (await pageState()).polls >= 1, 'a long-poll answered', POLL_MS + 5_000);
  assert.ok(nocodb.polls.some((p) => p.outcome === 'answered' && p.user === ana.nocodb));
});

test('a renewal on a long-poll that the user’s navigation aborts does not end the session (item 2)', { timeout: TEST_TIMEOUT_MS }, async () => {
  assert.ok(signedInAt > 0, 'the previous step signed in');
  // The gateway closes the websocket when the access cookie expires (1008 AUTH_EXPIRED) and
  // socket.io's reconnect would renew the session first; without it the long-poll is the only
  // request in flight, as in the report, so the renewal rides on a poll.
  await page.evaluate('nc.socket.disconnect()');
  // Cookies answered to anything before now (a socket.io reconnect, say) have expired by then,
  // and after it every poll arrives with an expired access cookie and renews.
  const quietFrom = Date.now() + SESSION_TTL_MS;
  const renewedOn = (p: (typeof nocodb.polls)[number]): boolean => gw.log.securityEvents.some((e) => e.event === 'auth.session_renewed' && e.requestId === p.requestId);
  let renewing: (typeof nocodb.polls)[number] | undefined;
  await waitFor(
    () => {
      renewing = nocodb.polls.find((p) => p.outcome === 'open' && p.startedAt > quietFrom && renewedOn(p));
      return renewing !== undefined;
    },
    'a long-poll on which the gateway renewed the session',
    SESSION_TTL_MS + POLL_MS * 3 + 2_000,
  );
  // Past the reuse grace, while that poll (and its new cookies) is still held upstream.
  await new Promise((r) => setTimeout(r, REUSE_GRACE_MS + 500));
  assert.equal(renewing?.outcome, 'open', 'the renewing poll is still open when the user navigates');
  const eventsBefore = gw.log.securityEvents.length;
  const response = await page.goto(`${origin}/dashboard`);
  await waitFor(() => renewing?.outcome === 'aborted', 'the renewing poll aborted by the navigation', 5_000);
  const events = (): string =>
    gw.log.securityEvents
      .filter((e) => String(e.event).startsWith('auth.') || e.event === 'request.denied')
      .map((e) => `${String(e.event)} ${String(e.code ?? '')} ${String(e.requestId ?? '')}`)
      .join('\n');
  assert.equal(new URL(page.url()).pathname, '/dashboard', `still signed in: landed on ${page.url()} (${response?.status()}); renewing poll ${renewing?.requestId}; events:\n${events()}`);
  assert.equal(response?.status(), 200);
  // The navigation presented the refresh token the aborted poll had rotated: the gateway renewed
  // the session on it (a reissue, or a pending successor's answer) instead of revoking the family.
  assert.ok(
    gw.log.securityEvents.slice(eventsBefore).some((e) => /^auth\.session_renew/.test(String(e.event)) && e.requestId !== renewing?.requestId),
    `the navigation renewed the session; events:\n${events()}`,
  );
  await page.waitForSelector('#app:not([hidden])');
  // The session goes on: socket.io and the polls work again, past another access lifetime.
  await waitFor(async () => (await pageState()).transports.includes('websocket'), 'socket.io reconnected after the navigation', 10_000);
  const before = Date.now();
  await waitFor(async () => (await pageState()).polls >= 2, 'two more long-polls answered', POLL_MS * 2 + 5_000);
  assert.ok(Date.now() - before > SESSION_TTL_MS, 'the session outlived another access cookie');
  assert.deepEqual((await pageState()).pollErrors, [], 'no 401 on the polls');
  assert.equal(new URL(page.url()).pathname, '/dashboard');
  const revoked = gw.log.securityEvents.filter((e) => /revok|reuse/i.test(String(e.event)) || e.code === 'AUTH_REVOKED');
  assert.deepEqual(revoked.map((e) => `${String(e.event)} ${String(e.code ?? '')}`), [], 'no reuse detected, nothing revoked');
});

test('logout clears NocoDB’s refresh_token cookie and its localStorage token (item 3)', { timeout: TEST_TIMEOUT_MS }, async () => {
  await page.goto(`${origin}/auth/logout`);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  assert.equal(new URL(page.url()).pathname, '/auth/login');
  // Clear-Site-Data takes effect as the response is handled; give Chromium a moment for storage.
  await waitFor(async () => (await page.evaluate(`localStorage.getItem(${JSON.stringify(NOCODB_STORAGE_KEY)})`)) === null, 'NocoDB’s localStorage token cleared', 3_000).catch(() => undefined);
  const names = (await context.cookies(origin)).map((c) => c.name);
  assert.ok(!names.includes(ACCESS_COOKIE) && !names.includes(REFRESH_COOKIE), `gateway cookies gone: ${names.join(', ')}`);
  assert.ok(!names.includes(NOCODB_REFRESH_COOKIE), `NocoDB's refresh_token gone: ${names.join(', ')}`);
  assert.equal(await page.evaluate(`localStorage.getItem(${JSON.stringify(NOCODB_STORAGE_KEY)})`), null, 'NocoDB’s token gone from localStorage');
});

test('the next user signs in: NocoDB asks for its own sign-in and sees none of the previous user’s cookies or token', { timeout: TEST_TIMEOUT_MS }, async () => {
  const [ana, luis] = STAFF;
  const anaRefresh = new Set([...nocodb.refreshTokens].filter(([, u]) => u === ana.nocodb).map(([v]) => v));
  assert.ok(anaRefresh.size > 0);
  const from = nocodb.requests.length;
  await page.goto(`${origin}/dashboard`);
  if (new URL(page.url()).pathname === '/auth/login') await gatewaySignIn(luis.gateway, luis.password);
  assert.equal(new URL(page.url()).pathname, '/dashboard');
  await page.waitForSelector('#signin:not([hidden])', { timeout: 5_000 });
  assert.equal(await page.locator('#app').isHidden(), true, 'not signed in to NocoDB as the previous user');
  await nocodbSignIn(luis.nocodb, `${luis.password} nocodb`);
  await waitFor(async () => (await pageState()).transports.includes('websocket'), 'socket.io for the next user', 10_000);

  const after = nocodb.requests.slice(from);
  assert.ok(after.length > 0);
  for (const r of after) {
    assert.equal(r.headers['x-gateway-user'], luis.gateway, `${r.method} ${r.url} as the next user`);
    const cookie = String(r.headers.cookie ?? '');
    for (const v of anaRefresh) assert.ok(!cookie.includes(v), `${r.method} ${r.url} carried the previous user's refresh_token`);
  }
  assert.ok(nocodb.sockets.filter((s) => s.user === luis.nocodb).length > 0);
  assert.equal(await page.textContent('#user'), luis.nocodb);
});

test('NocoDB’s site URL: the public origin by default; with preserveHost: false it names the upstream (a JSON body the gateway cannot rewrite) unless NC_PUBLIC_URL is set', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  // Its own gateway: hosts outside the development certificate's names, reached without a browser.
  const port = await freePort();
  const publicUrl = `https://nocodb-public.test.local:${port}`;
  // The docs/applications.md recipe: NC_PUBLIC_URL set, so nothing NocoDB builds depends on the Host it is sent.
  const recipe = await startNocodbStandIn({ publicUrl });
  t.after(() => recipe.close());
  const own = await startAuthGateway({
    routes: `
  - name: nocodb
    host: nocodb.test.local
    upstream: ${nocodb.url}
    auth: session
    roles: [staff]
  - name: nocodb-raw
    host: nocodb-raw.test.local
    upstream: ${nocodb.url}
    auth: session
    roles: [staff]
    preserveHost: false
  - name: nocodb-public
    host: nocodb-public.test.local
    upstream: ${recipe.url}
    auth: session
    roles: [staff]
    preserveHost: false
`,
    env: { HTTPS_PORT: String(port) },
  });
  t.after(() => own.close());
  await addUser(own.auth, 'nocodb-site-url', 'site url test password 1', ['staff']);
  const cases = [
    { host: `nocodb.test.local:${port}`, expected: `https://nocodb.test.local:${port}` },
    { host: `nocodb-raw.test.local:${port}`, expected: `https://127.0.0.1:${nocodb.port}` },
    { host: `nocodb-public.test.local:${port}`, expected: publicUrl },
  ];
  for (const c of cases) {
    const client = new SessionClient(own, c.host);
    await client.login('nocodb-site-url', 'site url test password 1');
    const res = await client.send({ path: '/api/v1/meta/nocodb/info' });
    assert.equal(res.status, 200, `${c.host}: ${res.body.slice(0, 200)}`);
    assert.equal(res.json<{ ncSiteUrl: string }>().ncSiteUrl, c.expected, c.host);
  }
});
