import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { IpSet, coversEverything, normalizeIp, type ParsedIp } from '../../../src/net/ip.js';

function ip(raw: string): ParsedIp {
  const parsed = normalizeIp(raw);
  assert.ok(parsed, `${raw} should parse`);
  return parsed;
}

describe('normalizeIp', () => {
  const good: readonly (readonly [string, string, 'ipv4' | 'ipv6'])[] = [
    ['10.0.0.1', '10.0.0.1', 'ipv4'],
    ['  10.0.0.1  ', '10.0.0.1', 'ipv4'],
    ['0.0.0.0', '0.0.0.0', 'ipv4'],
    ['::1', '::1', 'ipv6'],
    ['[::1]', '::1', 'ipv6'],
    ['2001:DB8::1', '2001:db8::1', 'ipv6'],
    ['::ffff:10.0.0.1', '10.0.0.1', 'ipv4'],
    ['::FFFF:10.0.0.1', '10.0.0.1', 'ipv4'],
    ['[::ffff:10.0.0.1]', '10.0.0.1', 'ipv4'],
    // Every spelling of one address is one key (a block of 2001:db8::1 was passed by these).
    ['2001:db8:0:0:0:0:0:1', '2001:db8::1', 'ipv6'],
    ['2001:0db8::1', '2001:db8::1', 'ipv6'],
    ['2001:db8::0:1', '2001:db8::1', 'ipv6'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1', 'ipv6'],
    ['::ffff:a01:203', '10.1.2.3', 'ipv4'],
    ['0:0:0:0:0:ffff:0a01:0203', '10.1.2.3', 'ipv4'],
  ];
  for (const [raw, address, family] of good) {
    test(`${JSON.stringify(raw)} → ${address} (${family})`, () => {
      assert.deepEqual(normalizeIp(raw), { address, family });
    });
  }

  const bad: readonly (string | undefined)[] = [
    undefined,
    '',
    '   ',
    'localhost',
    'unknown',
    '10.0.0.256',
    '10.0.0',
    '010.0.0.1',
    '1.2.3.4:80',
    '[::1]:80',
    '10.0.0.0/8',
    'fe80::1%eth0',
    '[fe80::1%25eth0]',
    '::ffff:999.0.0.1',
    '::1::2',
  ];
  for (const raw of bad) {
    test(`${JSON.stringify(raw)} → undefined`, () => {
      assert.equal(normalizeIp(raw), undefined);
    });
  }
});

describe('IpSet', () => {
  const set = new IpSet(['10.0.0.0/8', '192.168.1.5', '2001:db8::/32', '::1', ' 172.16.0.0/12 ', '[fd00::]/8']);

  test('IPv4 CIDR and single address', () => {
    assert.equal(set.has(ip('10.255.1.2')), true);
    assert.equal(set.has(ip('11.0.0.1')), false);
    assert.equal(set.has(ip('192.168.1.5')), true);
    assert.equal(set.has(ip('192.168.1.6')), false);
    assert.equal(set.has(ip('172.31.255.255')), true, 'entries are trimmed');
    assert.equal(set.has(ip('172.32.0.0')), false);
  });

  test('IPv6 CIDR and single address', () => {
    assert.equal(set.has(ip('2001:db8:ffff::1')), true);
    assert.equal(set.has(ip('2001:DB8::9')), true);
    assert.equal(set.has(ip('2001:db9::1')), false);
    assert.equal(set.has(ip('::1')), true);
    assert.equal(set.has(ip('::2')), false);
    assert.equal(set.has(ip('fd12:3456::1')), true, 'bracketed entry');
  });

  test('an IPv4-mapped IPv6 client address matches IPv4 entries', () => {
    assert.equal(set.has(ip('::ffff:10.1.2.3')), true);
    assert.equal(set.has(ip('::ffff:192.168.1.5')), true);
    assert.equal(set.has(ip('::ffff:11.0.0.1')), false);
  });

  test('the hex spelling of a mapped address still matches IPv4 entries', () => {
    // normalizeIp keeps ::ffff:a00:1 as IPv6; node's BlockList maps it to 10.0.0.1.
    assert.equal(set.has(ip('::ffff:a00:1')), true);
    assert.equal(set.has(ip('::ffff:b00:1')), false);
  });

  test('IPv4-mapped IPv6 entries name IPv4 blocks (prefix minus 96)', () => {
    const mapped = new IpSet(['::ffff:10.0.0.0/104', '::ffff:192.168.1.5']);
    assert.equal(mapped.has(ip('10.9.9.9')), true);
    assert.equal(mapped.has(ip('::ffff:10.9.9.9')), true);
    assert.equal(mapped.has(ip('11.0.0.1')), false);
    assert.equal(mapped.has(ip('192.168.1.5')), true);
    assert.equal(mapped.has(ip('192.168.1.6')), false);
  });

  test('an empty set holds nothing', () => {
    const empty = new IpSet([]);
    assert.equal(empty.size, 0);
    assert.equal(empty.has(ip('10.0.0.1')), false);
    assert.equal(empty.has(ip('::1')), false);
  });

  test('/0 blocks', () => {
    const v4 = new IpSet(['0.0.0.0/0']);
    assert.equal(v4.has(ip('203.0.113.9')), true);
    assert.equal(v4.has(ip('2001:db8::1')), false);
    const v6 = new IpSet(['::/0']);
    assert.equal(v6.has(ip('2001:db8::1')), true);
  });

  test('keeps its entries as given and counts them', () => {
    const s = new IpSet(['10.0.0.0/8', '::1']);
    assert.deepEqual(s.entries, ['10.0.0.0/8', '::1']);
    assert.equal(s.size, 2);
  });

  test('every malformed entry is named at once, with its reason', () => {
    assert.throws(
      () =>
        new IpSet([
          '10.0.0.0/8',
          'nope',
          '10.0.0.0/33',
          '::/129',
          '1.2.3.4/8/9',
          '10.0.0.0/',
          '10.0.0.0/x',
          '10.0.0.0/1234',
          'fe80::1%eth0',
          '::ffff:10.0.0.0/95',
          '300.1.1.1',
        ]),
      {
        message:
          'invalid address or CIDR: nope (not an IP address), 10.0.0.0/33 (prefix longer than 32), ' +
          '::/129 (prefix longer than 128), 1.2.3.4/8/9 (too many slashes), 10.0.0.0/ (bad prefix length), ' +
          '10.0.0.0/x (bad prefix length), 10.0.0.0/1234 (bad prefix length), fe80::1%eth0 (not an IP address), ' +
          '::ffff:10.0.0.0/95 (mapped IPv4 prefix must be at least 96), 300.1.1.1 (not an IP address)',
      },
    );
  });

  test('a hostname is not an entry (no DNS at startup)', () => {
    assert.throws(() => new IpSet(['localhost']), /localhost \(not an IP address\)/);
  });
});

describe('coversEverything', () => {
  test('true for the everything blocks, in any position and spelling case', () => {
    assert.equal(coversEverything(['0.0.0.0/0']), true);
    assert.equal(coversEverything(['10.0.0.0/8', ' ::/0 ']), true);
    assert.equal(coversEverything(['::FFFF:0.0.0.0/96']), true);
  });

  test('false for ordinary lists', () => {
    assert.equal(coversEverything([]), false);
    assert.equal(coversEverything(['10.0.0.0/8', '::1']), false);
    assert.equal(coversEverything(['0.0.0.0/8']), false);
    assert.equal(coversEverything(['0.0.0.0']), false);
  });
});
