import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createIpAllowlist } from '../../../src/policy/ip-allowlist.js';
import { parseConfig } from '../../../src/config/load.js';
import type { RouteConfig } from '../../../src/config/schema.js';
import type { RequestContext } from '../../../src/context.js';
import { isGatewayError } from '../../../src/errors.js';
import { normalizeIp } from '../../../src/net/ip.js';

function route(allowlist: string): RouteConfig {
  return parseConfig(`routes:\n  - { name: r, host: a.localhost, upstream: http://127.0.0.1:8000, auth: none${allowlist} }\n`, {}, 'test').routes[0] as RouteConfig;
}

function from(address: string | undefined): RequestContext {
  const client = address === undefined ? undefined : normalizeIp(address);
  return { address: client && { client, peer: client, peerTrusted: false } } as unknown as RequestContext;
}

test('no allowlist: no step at all', () => {
  assert.equal(createIpAllowlist(route('')), undefined);
});

test('an allowlist passes the listed networks (IPv4-mapped IPv6 too) and refuses the rest with IP_DENIED', () => {
  const step = createIpAllowlist(route(', ipAllowlist: [10.0.0.0/8, "2001:db8::/32"]'));
  assert.ok(step);
  for (const ok of ['10.1.2.3', '::ffff:10.9.9.9', '2001:db8::1']) assert.equal(step(from(ok)), undefined, ok);
  for (const bad of ['11.0.0.1', '2001:db9::1', undefined]) {
    assert.throws(() => step(from(bad)), (err: unknown) => isGatewayError(err) && err.code === 'IP_DENIED', String(bad));
  }
});
