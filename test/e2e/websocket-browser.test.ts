import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, type TestBrowser } from '../helpers/browser.js';
import { addClient, startAuthGateway, uniq, type AuthTestGateway } from '../helpers/auth-gateway.js';

/**
 * Issue 12, item 6, in a real browser: browser code cannot set Authorization on a websocket, so
 * it offers its token as the `bearer.<jwt>` subprotocol beside `bearer`. Chromium fails a
 * handshake whose answer names no protocol it offered: the gateway answers `bearer`. A revoked
 * token then ends the socket with a clean close that says why (1008 AUTH_REVOKED), not 1006.
 */

const TEST_TIMEOUT_MS = 60_000;

let gw: AuthTestGateway;
let browser: TestBrowser;
let sub: string;

before(async () => {
  gw = await startAuthGateway({
    routes: `
  - name: page
    host: api.localhost
    path: /page
    upstream: UPSTREAM
    auth: none
  - name: api
    host: api.localhost
    upstream: UPSTREAM
    auth: jwt
    roles: [api]
    websocket: true
`,
    env: { GATEWAY_DOMAIN: 'localhost' },
  });
  const client = uniq('ws-browser');
  sub = `client:${client}`;
  await addClient(gw.auth, client, ['api']);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await gw?.close();
});

interface Opened {
  protocol: string;
  hello: { headers: Record<string, string> };
  echo: string;
}

test('Chromium opens a jwt-route websocket with the bearer subprotocol, gets its echo, then sees 1008 AUTH_REVOKED on revocation', { timeout: TEST_TIMEOUT_MS }, async () => {
  const { token, claims } = gw.auth.tokens.issue({ sub, roles: ['api'], ttlMs: 60_000, typ: 'access' });
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    // Same origin as the websocket: the page is served by the gateway's own host.
    await page.goto(`https://api.localhost:${gw.port}/page`);
    const url = `wss://api.localhost:${gw.port}/ws`;
    // Strings, not functions: the tests compile without the DOM library.
    const opened = (await page.evaluate(`new Promise((resolve, reject) => {
      const ws = new WebSocket(${JSON.stringify(url)}, ['bearer', 'bearer.' + ${JSON.stringify(token)}]);
      window.wsClosed = new Promise((r) => ws.addEventListener('close', (e) => r({ code: e.code, reason: e.reason, wasClean: e.wasClean })));
      let hello;
      ws.onerror = () => reject(new Error('websocket error'));
      ws.onmessage = (e) => {
        if (hello === undefined) {
          hello = JSON.parse(e.data);
          ws.send('from the browser');
        } else resolve({ protocol: ws.protocol, hello, echo: e.data });
      };
    })`)) as Opened;
    assert.equal(opened.protocol, 'bearer');
    assert.equal(opened.echo, 'from the browser');
    assert.equal(opened.hello.headers['x-gateway-user'], sub);
    assert.equal(opened.hello.headers['sec-websocket-protocol'], undefined, 'the upstream never saw the token');

    await gw.auth.revocations.revoke(claims.jti, claims.exp);
    const closed = (await page.evaluate('window.wsClosed')) as { code: number; reason: string; wasClean: boolean };
    assert.deepEqual(closed, { code: 1008, reason: 'AUTH_REVOKED', wasClean: true });
    assert.doesNotMatch(JSON.stringify([gw.log.accessEntries, gw.log.securityEvents, gw.log.appMessages]), new RegExp(token.split('.')[2] as string), 'the token is in no log line');
  } finally {
    await context.close();
  }
});
