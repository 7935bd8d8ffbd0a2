import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { createClientIpResolver } from '../../../src/net/client-ip.js';
import { IpSet } from '../../../src/net/ip.js';

function fakeReq(remoteAddress: string | undefined, xff?: string | string[]): IncomingMessage {
  const headers: Record<string, string | string[]> = {};
  if (xff !== undefined) headers['x-forwarded-for'] = xff;
  return { socket: { remoteAddress }, headers } as unknown as IncomingMessage;
}

const TRUSTED = new IpSet(['10.0.0.0/8', '2001:db8::/32']);
const resolve = createClientIpResolver(TRUSTED);

function clientOf(peer: string | undefined, xff?: string | string[]): string {
  return resolve(fakeReq(peer, xff)).client.address;
}

describe('createClientIpResolver: no trusted proxies', () => {
  const direct = createClientIpResolver(new IpSet([]));

  test('the socket peer is the client and X-Forwarded-For is ignored', () => {
    const r = direct(fakeReq('203.0.113.9', '1.2.3.4'));
    assert.deepEqual(r, {
      client: { address: '203.0.113.9', family: 'ipv4' },
      peer: { address: '203.0.113.9', family: 'ipv4' },
      peerTrusted: false,
    });
  });

  test('an IPv4-mapped peer is reported as IPv4', () => {
    assert.deepEqual(direct(fakeReq('::ffff:203.0.113.9')).client, { address: '203.0.113.9', family: 'ipv4' });
  });

  test('a missing peer address is 0.0.0.0, not a header value', () => {
    assert.deepEqual(direct(fakeReq(undefined, '1.2.3.4')).client, { address: '0.0.0.0', family: 'ipv4' });
  });
});

describe('createClientIpResolver: untrusted peer', () => {
  test('X-Forwarded-For is ignored', () => {
    const r = resolve(fakeReq('203.0.113.9', '10.0.0.5'));
    assert.equal(r.client.address, '203.0.113.9');
    assert.equal(r.peerTrusted, false);
  });

  test('a rotating X-Forwarded-For never changes the client (rate-limit evasion)', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      seen.add(clientOf('203.0.113.9', `198.51.100.${i % 250}, 10.0.0.${i % 250}`));
      seen.add(clientOf('203.0.113.9', [`192.0.2.${i % 250}`, '10.0.0.1']));
    }
    assert.deepEqual([...seen], ['203.0.113.9']);
  });

  test('an untrusted IPv6 peer keeps its own address', () => {
    assert.equal(clientOf('2001:db9::7', '10.0.0.5'), '2001:db9::7');
  });
});

describe('createClientIpResolver: trusted peer', () => {
  test('the rightmost untrusted hop is the client', () => {
    const r = resolve(fakeReq('10.0.0.1', '203.0.113.9'));
    assert.deepEqual(r.client, { address: '203.0.113.9', family: 'ipv4' });
    assert.deepEqual(r.peer, { address: '10.0.0.1', family: 'ipv4' });
    assert.equal(r.peerTrusted, true);
  });

  test('spoofed hops left of the real client are never reached', () => {
    assert.equal(clientOf('10.0.0.1', '1.1.1.1, 8.8.8.8, 203.0.113.9'), '203.0.113.9');
  });

  test('trusted hops are skipped, right to left', () => {
    assert.equal(clientOf('10.0.0.1', '1.1.1.1, 203.0.113.9, 10.0.0.3, 10.0.0.2'), '203.0.113.9');
  });

  test('a rotating spoofed prefix never changes the client behind a trusted proxy', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 100; i++) seen.add(clientOf('10.0.0.1', `198.51.100.${i}, 203.0.113.9`));
    assert.deepEqual([...seen], ['203.0.113.9']);
  });

  test('several X-Forwarded-For headers read as one list', () => {
    assert.equal(clientOf('10.0.0.1', ['1.1.1.1', '203.0.113.9, 10.0.0.2']), '203.0.113.9');
  });

  test('when every hop is trusted the leftmost is the client', () => {
    assert.equal(clientOf('10.0.0.1', '10.0.0.3, 10.0.0.2'), '10.0.0.3');
  });

  test('no or empty X-Forwarded-For leaves the peer as the client', () => {
    assert.equal(clientOf('10.0.0.1'), '10.0.0.1');
    assert.equal(clientOf('10.0.0.1', ''), '10.0.0.1');
    assert.equal(clientOf('10.0.0.1', ' , ,'), '10.0.0.1');
  });

  test('blank hops and whitespace are skipped', () => {
    assert.equal(clientOf('10.0.0.1', ' 1.1.1.1 ,, 203.0.113.9 , '), '203.0.113.9');
  });

  test('IPv4-mapped peers and hops are read as IPv4', () => {
    const r = resolve(fakeReq('::ffff:10.0.0.1', '::ffff:203.0.113.9'));
    assert.equal(r.peerTrusted, true);
    assert.deepEqual(r.peer, { address: '10.0.0.1', family: 'ipv4' });
    assert.deepEqual(r.client, { address: '203.0.113.9', family: 'ipv4' });
  });

  test('IPv6 hops, bracketed or not, lower-cased', () => {
    assert.deepEqual(resolve(fakeReq('2001:db8::1', '2001:DB9::5')).client, { address: '2001:db9::5', family: 'ipv6' });
    assert.equal(clientOf('2001:db8::1', '[2001:db9::6], 2001:db8::2'), '2001:db9::6');
  });
});

describe('createClientIpResolver: a malformed hop stops the walk', () => {
  test('at the peer when the rightmost hop is garbage', () => {
    assert.equal(clientOf('10.0.0.1', '203.0.113.9, garbage'), '10.0.0.1');
  });

  test('at the last good trusted hop, so an address left of the garbage is never used', () => {
    assert.equal(clientOf('10.0.0.1', '1.1.1.1, garbage, 10.0.0.2'), '10.0.0.2');
  });

  test('an untrusted hop right of the garbage is the client as usual', () => {
    assert.equal(clientOf('10.0.0.1', 'garbage, 203.0.113.9'), '203.0.113.9');
  });

  test('shapes that are not an address (with or without a port) count as malformed', () => {
    for (const hop of ['unknown', 'fe80::1%eth0', '_hidden', '10.0.0.0/8', 'for=203.0.113.9', '203.0.113.9:99999', '[2001:db9::5']) {
      assert.equal(clientOf('10.0.0.1', `1.1.1.1, ${hop}`), '10.0.0.1', hop);
    }
  });

  test('a hop with a port (as Azure and some proxies write it) is its address', () => {
    assert.equal(clientOf('10.0.0.1', '1.1.1.1, 203.0.113.9:4711'), '203.0.113.9');
    assert.equal(clientOf('10.0.0.1', '1.1.1.1, [2001:db9::5]:443'), '2001:db9::5');
  });
});
