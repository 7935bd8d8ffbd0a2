import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Sealer } from '../../../src/stores/sealed.js';
import { decodeDelivery, encodeDelivery } from '../../../src/webhook/envelope.js';

const KEY = randomBytes(32).toString('hex');

test('a sealed payload opens with the same key and place, and hides its content', () => {
  const sealer = new Sealer(KEY);
  const plain = Buffer.from('{"text":{"body":"mensaje secreto \\u00e9"}}');
  const sealed = sealer.seal(plain, 'queue-a');
  assert.ok(!sealed.includes(Buffer.from('secreto')));
  assert.deepEqual(sealer.open(sealed, 'queue-a'), plain);
  // A fresh IV every time: the same payload never seals to the same bytes.
  assert.notDeepEqual(sealer.seal(plain, 'queue-a'), sealed);
});

test('a sealed payload does not open when altered, with another key, or for another place', () => {
  const sealer = new Sealer(KEY);
  const sealed = sealer.seal(Buffer.from('payload'), 'queue-a');
  const flipped = Buffer.from(sealed);
  flipped[flipped.length - 1] = (flipped[flipped.length - 1] as number) ^ 1;
  assert.throws(() => sealer.open(flipped, 'queue-a'));
  assert.throws(() => sealer.open(sealed, 'queue-b'));
  assert.throws(() => new Sealer(randomBytes(32).toString('hex')).open(sealed, 'queue-a'));
  assert.throws(() => sealer.open(sealed.subarray(0, 20), 'queue-a'));
});

test('only a 32-byte hex key is accepted', () => {
  assert.throws(() => new Sealer('ab'.repeat(16)));
  assert.throws(() => new Sealer('zz'.repeat(32)));
  assert.throws(() => new Sealer(''));
});

test('the envelope keeps the body byte for byte', () => {
  const body = Buffer.from([0x7b, 0x00, 0xff, 0xc3, 0xa9, 0x7d]);
  const d = { path: '/webhook/whatsapp?x=1', headers: { 'x-request-id': 'r1', 'x-hub-signature-256': 'sha256=00' }, body, requestId: 'r1', receivedAt: 1_700_000_000_000 };
  const back = decodeDelivery(encodeDelivery(d));
  assert.deepEqual(back.body, body);
  assert.equal(back.path, d.path);
  assert.deepEqual(back.headers, d.headers);
  assert.equal(back.receivedAt, d.receivedAt);
  assert.throws(() => decodeDelivery(Buffer.from([0, 0, 0, 9, 1])));
});

test('after a key rotation, values sealed with the previous key still open; new ones use the current key', () => {
  const old = randomBytes(32).toString('hex');
  const current = randomBytes(32).toString('hex');
  const before = new Sealer(old).seal(Buffer.from('queued before'), 'queue-a');
  const rotated = new Sealer(current, [old]);
  assert.equal(rotated.open(before, 'queue-a').toString(), 'queued before');
  const after = rotated.seal(Buffer.from('queued after'), 'queue-a');
  assert.equal(new Sealer(current).open(after, 'queue-a').toString(), 'queued after', 'sealed with the current key only');
  assert.throws(() => new Sealer(old).open(after, 'queue-a'), 'the previous key never seals');
  assert.throws(() => rotated.open(before, 'queue-b'), 'the place is still bound');
  assert.throws(() => new Sealer(current, ['zz'.repeat(32)]), 'a malformed previous key is refused');
});
