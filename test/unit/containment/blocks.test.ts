import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BlockSet } from '../../../src/containment/blocks.js';
import { checkConnectionBlocks, createAccountBlocks } from '../../../src/containment/enforce.js';
import type { Block } from '../../../src/containment/model.js';
import type { RequestContext } from '../../../src/context.js';
import { GatewayError } from '../../../src/errors.js';

const T0 = 1_800_000_000_000;

function block(kind: Block['kind'], target: string, untilIn = 60_000, extra: Partial<Block> = {}): Block {
  return { kind, target, reason: `test ${kind}`, until: T0 + untilIn, createdAt: T0, by: 'ops', source: 'manual', ...extra };
}

const v4 = (address: string) => ({ address, family: 'ipv4' as const });

test('an address is matched by its own block, else by the narrowest network holding it', () => {
  const set = new BlockSet(() => T0);
  set.add(block('cidr', '10.0.0.0/8'));
  set.add(block('cidr', '10.1.0.0/16', 60_000, { reason: 'narrow' }));
  assert.equal(set.address(v4('10.1.2.3'))?.reason, 'narrow');
  assert.equal(set.address(v4('10.2.0.1'))?.target, '10.0.0.0/8');
  assert.equal(set.address(v4('11.0.0.1')), undefined);
  set.add(block('ip', '10.1.2.3', 60_000, { reason: 'own' }));
  assert.equal(set.address(v4('10.1.2.3'))?.reason, 'own');
  set.add(block('cidr', '2001:db8::/32'));
  assert.equal(set.address({ address: '2001:db8::5', family: 'ipv6' })?.target, '2001:db8::/32');
});

test('a block past its time is gone at the next lookup, whatever the store still holds', () => {
  let now = T0;
  const set = new BlockSet(() => now);
  set.add(block('ip', '203.0.113.7', 1_000));
  set.add(block('cidr', '198.51.100.0/24', 1_000));
  set.add(block('route', 'shop', 1_000));
  assert.ok(set.address(v4('203.0.113.7')));
  now = T0 + 1_000;
  assert.equal(set.address(v4('203.0.113.7')), undefined);
  assert.equal(set.address(v4('198.51.100.9')), undefined);
  assert.equal(set.route('shop'), undefined);
  assert.deepEqual(set.active(), []);
});

test('users and API clients are told apart by the subject\'s client: prefix', () => {
  const set = new BlockSet(() => T0);
  set.add(block('user', 'alice'));
  set.add(block('client', 'billing'));
  assert.equal(set.subject('alice')?.kind, 'user');
  assert.equal(set.subject('client:billing')?.kind, 'client');
  assert.equal(set.subject('billing'), undefined, 'a user named like a client is not the client');
  assert.equal(set.subject('client:alice'), undefined);
});

test('listeners hear of new and changed blocks only (a catch-up that re-reads the same ones is silent)', () => {
  const set = new BlockSet(() => T0);
  const heard: string[] = [];
  set.onAdded((b) => heard.push(`${b.kind}:${b.target}`));
  set.add(block('ip', '203.0.113.7'));
  set.replace([block('ip', '203.0.113.7'), block('user', 'bob')]);
  set.replace([block('user', 'bob')]);
  assert.deepEqual(heard, ['ip:203.0.113.7', 'user:bob']);
  assert.equal(set.address(v4('203.0.113.7')), undefined, 'a replace lifts what it does not hold');
});

function ctx(address: string, route: string, subject?: string): RequestContext {
  return { address: { client: v4(address), peer: v4(address), peerTrusted: false }, route: { name: route }, principal: subject ? { subject, roles: [], method: 'jwt' } : undefined } as unknown as RequestContext;
}

function refusal(run: () => unknown): GatewayError {
  try {
    run();
  } catch (err) {
    assert.ok(err instanceof GatewayError);
    return err;
  }
  assert.fail('not refused');
}

test('the steps: CLIENT_BLOCKED (403) for an address, ROUTE_MAINTENANCE (503, Retry-After) for a route, ACCOUNT_BLOCKED (403) for a principal', () => {
  const set = new BlockSet();
  const now = Date.now();
  const conn = checkConnectionBlocks(set);
  const account = createAccountBlocks(set);
  assert.equal(conn(ctx('203.0.113.7', 'api')), undefined, 'nothing blocked, nothing refused');
  set.add({ ...block('ip', '203.0.113.7'), until: now + 60_000 });
  set.add({ ...block('route', 'shop'), until: now + 120_000 });
  set.add({ ...block('user', 'alice'), until: now + 60_000 });
  const ip = refusal(() => conn(ctx('203.0.113.7', 'shop')));
  assert.equal(ip.code, 'CLIENT_BLOCKED');
  assert.equal(ip.status, 403);
  assert.match(ip.detail ?? '', /ip 203\.0\.113\.7 blocked until .* by ops: test ip/);
  const route = refusal(() => conn(ctx('198.51.100.1', 'shop')));
  assert.equal(route.code, 'ROUTE_MAINTENANCE');
  assert.equal(route.status, 503);
  assert.ok(Number(route.headers['retry-after']) >= 119 && Number(route.headers['retry-after']) <= 120);
  assert.equal(conn(ctx('198.51.100.1', 'api')), undefined);
  assert.equal(refusal(() => account(ctx('198.51.100.1', 'api', 'alice'))).code, 'ACCOUNT_BLOCKED');
  assert.equal(account(ctx('198.51.100.1', 'api', 'bob')), undefined);
  assert.equal(account(ctx('198.51.100.1', 'api')), undefined, 'no principal (auth: none), nothing to match');
});
