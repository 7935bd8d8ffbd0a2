import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashRecoveryCode, newRecoveryCodes, normalizeRecoveryCode, RECOVERY_CODE_COUNT } from '../../../../src/auth/mfa/recovery.js';
import { createFileFactorStore } from '../../../../src/auth/store/factors-file.js';

test('ten codes of 80 random bits each, all different, in groups of four', () => {
  const codes = newRecoveryCodes();
  assert.equal(codes.length, RECOVERY_CODE_COUNT);
  assert.equal(new Set(codes).size, codes.length);
  for (const c of codes) assert.match(c, /^[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}$/);
});

test('typing variants hash alike; another user, or one character changed, hashes apart', () => {
  const [code = ''] = newRecoveryCodes();
  const h = hashRecoveryCode('alice', code);
  assert.match(h ?? '', /^[0-9a-f]{64}$/);
  assert.equal(hashRecoveryCode('alice', code.toLowerCase().replaceAll('-', ' ')), h);
  assert.notEqual(hashRecoveryCode('bob', code), h, 'bound to the user');
  const tampered = `${code.slice(0, -1)}${code.endsWith('A') ? 'B' : 'A'}`;
  assert.notEqual(hashRecoveryCode('alice', tampered), h);
  for (const bad of ['', 'ABCD', 'ABCD-EFGH-IJKL-MNO1', 'ABCD-EFGH-IJKL-MNOP-Q']) assert.equal(normalizeRecoveryCode(bad), undefined, bad);
});

test('each code works once; a tampered or used one is refused; nothing plain is stored', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'crm-gw-recovery-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const store = createFileFactorStore(dir);
  const codes = newRecoveryCodes();
  await store.enrolTotp('alice', 'v1.x', codes.map((c) => hashRecoveryCode('alice', c) as string));
  const file = readFileSync(join(dir, 'factors.json'), 'utf8');
  for (const c of codes) assert.ok(!file.includes(c) && !file.includes(c.replaceAll('-', '')), 'no code in clear at rest');
  const first = codes[0] as string;
  assert.equal(await store.useRecoveryCode('alice', hashRecoveryCode('alice', first) as string), true);
  assert.equal(await store.useRecoveryCode('alice', hashRecoveryCode('alice', first) as string), false, 'used');
  assert.equal(await store.useRecoveryCode('bob', hashRecoveryCode('bob', codes[1] as string) as string), false, "another user's");
  assert.equal((await store.get('alice')).recoveryHashes.length, RECOVERY_CODE_COUNT - 1);
  const had = await store.reset('alice');
  assert.deepEqual(had, { totp: true, recoveryCodes: RECOVERY_CODE_COUNT - 1, passkeys: 0 });
  assert.deepEqual(await store.get('alice'), { recoveryHashes: [], passkeys: [] });
});
