import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { matchTotp, newTotpSecret, totpCode, totpUri, TOTP_PERIOD_S } from '../../../../src/auth/mfa/totp.js';
import { createFileFactorStore } from '../../../../src/auth/store/factors-file.js';

const STEP_MS = TOTP_PERIOD_S * 1000;
/** A time in the middle of a step, so ±1 step is unambiguous. */
const T0 = Math.floor(1_800_000_000_000 / STEP_MS) * STEP_MS + STEP_MS / 2;

test('RFC 6238 appendix B vector (SHA-1, 8 digits truncated to the 6 the gateway uses)', () => {
  // Secret "12345678901234567890" (ASCII) = base32 GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ; at T=59 s the 8-digit code is 94287082.
  assert.equal(totpCode('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ', 59_000), '287082');
  assert.equal(matchTotp('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ', '287082', 59_000), 1);
});

test('a code is accepted one step either side of now and refused two steps away', () => {
  const secret = newTotpSecret();
  assert.match(secret, /^[A-Z2-7]{32}$/, '160-bit base32 secret');
  const step = Math.floor(T0 / STEP_MS);
  assert.equal(matchTotp(secret, totpCode(secret, T0), T0), step);
  assert.equal(matchTotp(secret, totpCode(secret, T0 - STEP_MS), T0), step - 1, 'previous step');
  assert.equal(matchTotp(secret, totpCode(secret, T0 + STEP_MS), T0), step + 1, 'next step');
  for (const off of [-2, 2]) {
    const code = totpCode(secret, T0 + off * STEP_MS);
    // A code of another step may collide with one in the window (1 in 10^6 per step); skip that draw.
    if ([-1, 0, 1].some((d) => totpCode(secret, T0 + d * STEP_MS) === code)) continue;
    assert.equal(matchTotp(secret, code, T0), undefined, `${off} steps away`);
  }
});

test('malformed codes never reach the HMAC: letters, spaces, 5 or 7 digits', () => {
  const secret = newTotpSecret();
  for (const bad of ['', '12345', '1234567', '12a456', ' 123456', '１２３４５６']) assert.equal(matchTotp(secret, bad, T0), undefined, JSON.stringify(bad));
});

test('otpauth URI: issuer, label, SHA1, 6 digits, 30 s', () => {
  const uri = new URL(totpUri('JBSWY3DPEHPK3PXP', 'alice'));
  assert.equal(uri.protocol, 'otpauth:');
  assert.equal(uri.searchParams.get('secret'), 'JBSWY3DPEHPK3PXP');
  assert.equal(uri.searchParams.get('issuer'), 'crm-gateway');
  assert.equal(uri.searchParams.get('algorithm'), 'SHA1');
  assert.equal(uri.searchParams.get('digits'), '6');
  assert.equal(uri.searchParams.get('period'), '30');
});

test('replay: the file store accepts each step once, and never an earlier one after a later (window = the last accepted step)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'crm-gw-factors-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const store = createFileFactorStore(dir);
  assert.equal(await store.acceptTotpStep('alice', 100), false, 'no TOTP enrolled: nothing accepted');
  await store.enrolTotp('alice', 'v1.sealed', ['h1']);
  assert.equal(await store.acceptTotpStep('alice', 100), true);
  assert.equal(await store.acceptTotpStep('alice', 100), false, 'same step again: replay');
  assert.equal(await store.acceptTotpStep('alice', 99), false, 'the previous step, still inside the ±1 window: refused too');
  assert.equal(await store.acceptTotpStep('alice', 101), true);
  // Racing requests with the same code: exactly one wins.
  const results = await Promise.all(Array.from({ length: 8 }, () => store.acceptTotpStep('alice', 102)));
  assert.equal(results.filter(Boolean).length, 1);
  assert.equal(statSync(join(dir, 'factors.json')).mode & 0o777, 0o600, 'factors file is private');
});
