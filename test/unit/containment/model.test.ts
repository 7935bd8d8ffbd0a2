import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BlockInputError, blockDuration, blockReason, canonicalTarget, escapeUnprintable, parseBlock } from '../../../src/containment/model.js';

const DAY = 86_400_000;
const LIMITS = { maxMs: 90 * DAY };

test('addresses take the client-IP resolver\'s form; anything else is refused', () => {
  assert.equal(canonicalTarget('ip', ' 203.0.113.7 '), '203.0.113.7');
  assert.equal(canonicalTarget('ip', '::ffff:203.0.113.7'), '203.0.113.7');
  assert.equal(canonicalTarget('ip', '2001:DB8::1'), '2001:db8::1');
  assert.equal(canonicalTarget('ip', '[2001:db8::1]'), '2001:db8::1');
  for (const bad of ['', '1.2.3', '256.1.1.1', '1.2.3.4/32', 'fe80::1%eth0', 'localhost', '1.2.3.4 5.6.7.8']) {
    assert.throws(() => canonicalTarget('ip', bad), BlockInputError, bad);
  }
});

test('networks: /8 (IPv4) and /32 (IPv6) at widest without --force, no host bits, canonical form', () => {
  assert.equal(canonicalTarget('cidr', '10.0.0.0/8'), '10.0.0.0/8');
  assert.equal(canonicalTarget('cidr', '203.0.113.0/24'), '203.0.113.0/24');
  assert.equal(canonicalTarget('cidr', '2001:DB8::/32'), '2001:db8::/32');
  assert.equal(canonicalTarget('cidr', '2001:db8:0:0::/64'), '2001:db8::/64');
  assert.equal(canonicalTarget('cidr', '::ffff:10.0.0.0/104'), '10.0.0.0/8', 'mapped IPv4 names the IPv4 network');
  assert.equal(canonicalTarget('cidr', '203.0.113.7/32'), '203.0.113.7/32');
  assert.throws(() => canonicalTarget('cidr', '0.0.0.0/4'), /wider than \/8.*--force/);
  assert.throws(() => canonicalTarget('cidr', '0.0.0.0/0'), /wider than \/8/);
  assert.throws(() => canonicalTarget('cidr', '2001::/16'), /wider than \/32/);
  assert.equal(canonicalTarget('cidr', '0.0.0.0/4', { force: true }), '0.0.0.0/4');
  assert.throws(() => canonicalTarget('cidr', '10.1.2.3/8'), /host bits set: the network is 10\.0\.0\.0\/8/);
  assert.throws(() => canonicalTarget('cidr', '2001:db8::1/64'), /host bits set: the network is 2001:db8::\/64/);
  for (const bad of ['10.0.0.0', '10.0.0.0/33', '10.0.0.0/-1', '10.0.0.0/8/8', 'x/8', '2001:db8::/129']) assert.throws(() => canonicalTarget('cidr', bad), BlockInputError, bad);
});

test('user, client and route names follow the stores\' and the config\'s rules', () => {
  assert.equal(canonicalTarget('user', 'alice@example.com'), 'alice@example.com');
  assert.equal(canonicalTarget('client', 'billing-svc'), 'billing-svc');
  assert.equal(canonicalTarget('route', 'crm-api'), 'crm-api');
  assert.throws(() => canonicalTarget('user', 'a b'), /not a user name/);
  assert.throws(() => canonicalTarget('client', ''), /not a client name/);
  assert.throws(() => canonicalTarget('route', 'CRM'), /not a route name/);
});

test('--for: a duration with its unit, at least a second, at most the maximum', () => {
  assert.equal(blockDuration('15m', 90 * DAY), 15 * 60_000);
  assert.equal(blockDuration('90d', 90 * DAY), 90 * DAY);
  assert.equal(blockDuration('1.5h', 90 * DAY), 90 * 60_000);
  for (const bad of [undefined, '', 'soon', '60', '-5m', '1 week', '0s', '500ms', '91d']) assert.throws(() => blockDuration(bad, 90 * DAY), BlockInputError, String(bad));
});

test('--reason: one line, not empty, bounded', () => {
  assert.equal(blockReason('  incident 42 '), 'incident 42');
  for (const bad of [undefined, '', '   ', 'a\nb', 'x'.repeat(501), 'bell\u0007']) assert.throws(() => blockReason(bad), BlockInputError);
});

test('a stored block is read back only when it is one: anything else is ignored', () => {
  const good = { kind: 'ip', target: '::ffff:1.2.3.4', reason: 'r', until: Date.now() + 1000, createdAt: 1, by: 'ops', source: 'manual' };
  assert.equal(parseBlock(good, LIMITS)?.target, '1.2.3.4');
  assert.equal(parseBlock({ ...good, source: 'weird' }, LIMITS)?.source, 'manual');
  for (const bad of [null, 'x', {}, { ...good, kind: 'planet' }, { ...good, until: 'tomorrow' }, { ...good, target: 'not an ip' }, { ...good, until: Infinity }]) assert.equal(parseBlock(bad, LIMITS), undefined);
});

test('regression: a reason refuses every control, format and line-separator character (terminal escapes)', () => {
  assert.equal(blockReason('café: ñandú 日本 — INC-42'), 'café: ñandú 日本 — INC-42');
  for (const bad of ['esc \u001b[2J', 'bell\u0007', 'del\u007f', 'csi \u009b31m', 'nel\u0085', 'rlo \u202e', 'zwsp\u200b', 'bom\ufeffx', 'ls\u2028x', 'ps\u2029x', 'tag\u{e0041}']) {
    assert.throws(() => blockReason(bad), /without control, format or line-separator characters/, JSON.stringify(bad));
  }
  assert.equal(escapeUnprintable('a\u001b[31mb\u202ec\u{e0041}d'), 'a\\u001b[31mb\\u202ec\\udb40\\udc41d');
});

test('regression: a stored block lasting beyond maxDuration from now is dropped', () => {
  const now = Date.now();
  const stored = { kind: 'cidr', target: '0.0.0.0/0', reason: 'r', createdAt: now, by: 'x', source: 'manual' };
  assert.equal(parseBlock({ ...stored, until: now + 10 * 365 * DAY }, { maxMs: 90 * DAY, now }), undefined);
  assert.equal(parseBlock({ ...stored, until: now + 2 * DAY }, { maxMs: DAY, now }), undefined);
  assert.equal(parseBlock({ ...stored, until: now + DAY }, { maxMs: DAY, now })?.target, '0.0.0.0/0', 'a --force network at the longest duration stays');
});
