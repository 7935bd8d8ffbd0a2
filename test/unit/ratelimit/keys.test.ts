import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalUserName, ipBucket, userBucket } from '../../../src/ratelimit/keys.js';
import { normalizeIp } from '../../../src/net/ip.js';

const ip = (s: string) => {
  const p = normalizeIp(s);
  assert.ok(p, s);
  return p;
};

test('IPv4 is its own bucket; an IPv4-mapped IPv6 address shares it', () => {
  assert.equal(ipBucket(ip('203.0.113.9'), 64), 'ip:203.0.113.9');
  assert.equal(ipBucket(ip('::ffff:203.0.113.9'), 64), 'ip:203.0.113.9');
});

test('IPv6 is grouped by the prefix, whatever the spelling', () => {
  const a = ipBucket(ip('2001:db8:1:2::1'), 64);
  assert.equal(a, 'ip:2001:db8:1:2::/64');
  assert.equal(ipBucket(ip('2001:DB8:1:2:ffff:ffff:ffff:ffff'), 64), a);
  assert.equal(ipBucket(ip('2001:0db8:0001:0002:0:0:0:7'), 64), a);
  assert.notEqual(ipBucket(ip('2001:db8:1:3::1'), 64), a);
  assert.equal(ipBucket(ip('2001:db8:1:3::1'), 48), ipBucket(ip('2001:db8:1:ffff::1'), 48));
  assert.notEqual(ipBucket(ip('::1'), 128), ipBucket(ip('::2'), 128));
});

test('user buckets are hashed, bounded, and one per canonical name', () => {
  const b = userBucket('ana@example.com');
  assert.match(b, /^user:[A-Za-z0-9_-]{32}$/);
  assert.ok(!b.includes('ana'));
  assert.equal(userBucket('x'.repeat(100_000)).length, b.length);
  for (const spelling of ['Ana', ' ana ', 'ANA', 'ＡＮＡ']) assert.equal(userBucket(canonicalUserName(spelling)), userBucket('ana'), spelling);
  assert.notEqual(userBucket('ana'), userBucket('ana2'));
});
