import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, signInAtGateway, type TestBrowser } from '../helpers/browser.js';
import { addUser, startAuthGateway, type AuthTestGateway } from '../helpers/auth-gateway.js';
import { startCaddy, startNginx, type Edge, type EdgeTarget } from '../helpers/forward-auth-edges.js';
import { freePort } from '../helpers/ports.js';

/**
 * Forward-auth in real Chromium: the browser talks only to the edge (nginx from
 * nginx/forward-auth.conf, Caddy from docs/forward-auth.Caddyfile) on app.localhost; the edge
 * asks the gateway about every request and sends /auth/ to it. A first visit lands on the
 * gateway's sign-in page (through the edge), signing in comes back to the page asked for, and
 * the app sees who it is; a route the user's roles do not open stays shut.
 */
const USER = 'fa-browser';
const PASSWORD = 'forward auth browser pw 42';

for (const [name, start] of [
  ['nginx', startNginx],
  ['Caddy', startCaddy],
] as const) {
  describe(`forward-auth in Chromium through ${name}`, () => {
    let browser: TestBrowser;
    let gw: AuthTestGateway;
    let edge: Edge;
    let origin: string;

    before(async () => {
      const edgePort = await freePort();
      gw = await startAuthGateway({
        routes: `
  - name: app-admin
    host: app.localhost
    path: /admin
    upstream: UPSTREAM
    auth: session
    roles: [admin]
  - name: app
    host: app.localhost
    upstream: UPSTREAM
    auth: session
    roles: [staff]
`,
        // The edge is the public front: redirects name its port, its forwarded headers are believed.
        env: { GATEWAY_DOMAIN: 'localhost', TRUSTED_PROXIES: '127.0.0.1/32', PUBLIC_HTTPS_PORT: String(edgePort) },
        extraYaml: 'forwardAuth:\n  host: auth.localhost\n  edges: [127.0.0.1/32]\n',
      });
      await addUser(gw.auth, USER, PASSWORD, ['staff']);
      const target: EdgeTarget = { gatewayPort: gw.port, appPort: gw.upstream.port, appHost: 'app.localhost', authHost: 'auth.localhost', port: edgePort };
      edge = await start(target);
      origin = `https://app.localhost:${edge.port}`;
      browser = await launchBrowser();
    });
    after(async () => {
      await browser?.close();
      edge?.stop();
      await gw?.close();
    });

    test('a first visit signs in at the gateway through the edge and comes back; the app sees who it is', async (t) => {
      const context = await browser.newContext();
      t.after(() => context.close());
      const page = await context.newPage();
      const seen = gw.upstream.seen.length;
      await page.goto(`${origin}/records?view=7`);
      assert.equal(new URL(page.url()).pathname, '/auth/login', 'sent to sign in');
      assert.equal(new URL(page.url()).origin, origin, 'on the app host, through the edge');
      assert.equal(gw.upstream.seen.length, seen, 'the app received nothing before sign-in');
      await signInAtGateway(page, USER, PASSWORD);
      assert.equal(page.url(), `${origin}/records?view=7`);
      const echoed = JSON.parse((await page.textContent('body')) ?? '{}') as { path: string; headers: Record<string, string> };
      assert.equal(echoed.path, '/records?view=7');
      assert.equal(echoed.headers['x-gateway-user'], USER);
      assert.equal(echoed.headers['x-gateway-roles'], 'staff');
      const cookies = await context.cookies(origin);
      assert.ok(cookies.some((c) => c.name === '__Host-crmgw_at'), 'the session cookie is the app host\'s own');

      const before = gw.upstream.seen.length;
      const denied = await page.goto(`${origin}/admin/`);
      assert.equal(denied?.status(), 403);
      assert.equal(gw.upstream.seen.length, before, 'the app received nothing');
    });
  });
}
