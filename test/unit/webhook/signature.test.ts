import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { signBody, verifySignature } from '../../../src/webhook/signature.js';
import { GatewayError } from '../../../src/errors.js';

const SECRET = 'a'.repeat(32);
const OLD = 'b'.repeat(32);
const body = Buffer.from('{"object":"whatsapp_business_account","entry":[]}');

function refused(fn: () => unknown, detail: RegExp): void {
  assert.throws(fn, (err: unknown) => err instanceof GatewayError && err.code === 'WEBHOOK_SIGNATURE_INVALID' && detail.test(err.detail ?? ''));
}

test('a signature over the exact bytes with the current secret is accepted', () => {
  assert.equal(verifySignature(signBody(body, SECRET), body, { current: SECRET }), 'current');
  // Meta sends lower-case hex; upper case is the same number.
  const upper = `sha256=${createHmac('sha256', SECRET).update(body).digest('hex').toUpperCase()}`;
  assert.equal(verifySignature(upper, body, { current: SECRET }), 'current');
});

test('the previous secret is accepted while a rotation is under way, and only when configured', () => {
  assert.equal(verifySignature(signBody(body, OLD), body, { current: SECRET, previous: OLD }), 'previous');
  refused(() => verifySignature(signBody(body, OLD), body, { current: SECRET }), /does not match/);
});

test('missing, malformed, repeated or wrong signatures are refused', () => {
  refused(() => verifySignature(undefined, body, { current: SECRET }), /missing/);
  refused(() => verifySignature('', body, { current: SECRET }), /malformed/);
  refused(() => verifySignature(signBody(body, SECRET).replace('sha256=', 'sha1='), body, { current: SECRET }), /malformed/);
  refused(() => verifySignature(signBody(body, SECRET).slice(0, -2), body, { current: SECRET }), /malformed/);
  refused(() => verifySignature(`${signBody(body, SECRET)}, ${signBody(body, SECRET)}`, body, { current: SECRET }), /malformed/);
  refused(() => verifySignature([signBody(body, SECRET)], body, { current: SECRET }), /malformed/);
  refused(() => verifySignature(` ${signBody(body, SECRET)}`, body, { current: SECRET }), /malformed/);
  refused(() => verifySignature(signBody(body, 'c'.repeat(32)), body, { current: SECRET }), /does not match/);
});

test('one changed byte of the body breaks the signature (re-serialized JSON would not match)', () => {
  const escaped = Buffer.from('{"text":"Ol\\u00e1"}');
  const raw = Buffer.from('{"text":"Olá"}');
  assert.deepEqual(JSON.parse(escaped.toString()), JSON.parse(raw.toString()));
  refused(() => verifySignature(signBody(escaped, SECRET), raw, { current: SECRET }), /does not match/);
});
