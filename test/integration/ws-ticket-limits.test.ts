import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startAuthGateway } from '../helpers/auth-gateway.js';
import { firstStatus, rawTlsExchange } from '../helpers/harness.js';

// Review finding: websocket tickets were redeemed before every route step, so an upgrade with a
// made-up ticket cost a store round trip, was answered 401 even from outside the allowlist, and
// was never charged to the route's limit. The `ws-credentials` step now runs after the limit,
// and a refused ticket is charged as a refused token is.

/** The websocket route, with one more line of policy. */
const routes = (policy: string): string => `
  - name: api
    host: api.test.local
    upstream: UPSTREAM
    auth: jwt
    roles: [api]
    websocket: true
    ${policy}
`;

/** An upgrade carrying a well-formed ticket that was never issued. */
const madeUpTicket = (): string =>
  upgrade(`/ws?ws_token=${randomBytes(32).toString('base64url')}`);

const upgrade = (path: string): string =>
  `GET ${path} HTTP/1.1\r\nHost: api.test.local\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`;

for (const by of ['ip', 'user'] as const) {
  test(`regression: upgrades with made-up websocket tickets spend the route's limit (by: ${by}) and never reach the upstream`, async (t) => {
    const gw = await startAuthGateway({ routes: routes(`rateLimit: { window: 1m, max: 3, by: ${by} }`) });
    t.after(() => gw.close());
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push(firstStatus(await rawTlsExchange(gw.port, gw.ca, madeUpTicket(), { servername: 'api.test.local', waitMs: 500 })));
    assert.deepEqual(statuses, [401, 401, 401, 429, 429]);
    // The address's budget is spent: a plain unauthenticated request is refused as well.
    assert.equal((await gw.request({ path: '/x', host: 'api.test.local' })).status, 429);
    assert.equal(gw.upstream.seen.length, 0, 'the upstream received nothing');
    const refused = gw.log.accessEntries.filter((e) => e.kind === 'upgrade').map((e) => e.code);
    assert.deepEqual(refused, ['WS_TICKET_INVALID', 'WS_TICKET_INVALID', 'WS_TICKET_INVALID', 'RATE_LIMITED', 'RATE_LIMITED']);
  });
}

test('regression: an upgrade from outside the allowlist is refused with 403 before its ticket is looked at', async (t) => {
  const gw = await startAuthGateway({ routes: routes('ipAllowlist: [10.0.0.0/8]') });
  t.after(() => gw.close());
  const raw = await rawTlsExchange(gw.port, gw.ca, madeUpTicket(), { servername: 'api.test.local', waitMs: 500 });
  assert.equal(firstStatus(raw), 403);
  assert.equal(gw.log.accessEntries.at(-1)?.code, 'IP_DENIED');
  assert.equal(gw.upstream.seen.length, 0);
});
