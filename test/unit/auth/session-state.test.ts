import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { createMemoryKv } from '../../../src/stores/kv.js';
import { createMemoryLogger } from '../../../src/log/logger.js';
import { Lockout } from '../../../src/auth/lockout.js';
import { RefreshTokens } from '../../../src/auth/refresh.js';
import { ACCESS_COOKIE, CSRF_COOKIE, REFRESH_COOKIE, parseCookies, singleCookie, withoutGatewayCookies } from '../../../src/auth/cookies.js';
import { readBasic, readBearer } from '../../../src/auth/credentials.js';
import { isGatewayError } from '../../../src/errors.js';

async function code(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    assert.ok(isGatewayError(err), String(err));
    return err.code;
  }
  assert.fail('no error');
}

test('lockout: the 5th failure of a user locks it for 30 s, each further failure doubles the lock', async () => {
  let now = 1_000_000;
  const kv = createMemoryKv(() => now);
  const log = createMemoryLogger();
  const lockout = new Lockout(kv, log);
  const a = { name: 'Alice', ipKey: 'ip:10.0.0.1', requestId: 'r1' };
  for (let i = 0; i < 4; i++) {
    await lockout.check(a);
    await lockout.failed(a, 'wrong password');
  }
  await lockout.check(a);
  await lockout.failed(a, 'wrong password');
  assert.equal(await code(lockout.check(a)), 'AUTH_LOCKED');
  // Names are compared case-insensitively: ALICE is the same account.
  assert.equal(await code(lockout.check({ ...a, name: 'ALICE', ipKey: 'ip:10.9.9.9' })), 'AUTH_LOCKED');
  try {
    await lockout.check(a);
  } catch (err) {
    assert.ok(isGatewayError(err));
    assert.equal(err.headers['retry-after'], '30');
  }
  assert.equal(log.securityEvents.filter((e) => e.event === 'auth.login_failed').length, 5);
  assert.deepEqual(
    log.securityEvents.filter((e) => e.event === 'auth.lockout').map((e) => e.lockedForMs),
    [30_000],
  );
  now += 30_001;
  await lockout.check(a);
  await lockout.failed(a, 'wrong password');
  assert.equal(log.securityEvents.at(-1)?.lockedForMs, 60_000, 'the 6th failure locks for twice as long');
});

test('lockout: one address failing across 20 different names is locked as an address', async () => {
  const kv = createMemoryKv();
  const lockout = new Lockout(kv, createMemoryLogger());
  for (let i = 0; i < 20; i++) await lockout.failed({ name: `user${i}`, ipKey: 'ip:10.0.0.2', requestId: 'r' }, 'unknown user');
  assert.equal(await code(lockout.check({ name: 'fresh', ipKey: 'ip:10.0.0.2', requestId: 'r' })), 'AUTH_LOCKED');
  await lockout.check({ name: 'fresh', ipKey: 'ip:10.0.0.3', requestId: 'r' });
});

test('lockout: a success clears the user failure count', async () => {
  const kv = createMemoryKv();
  const lockout = new Lockout(kv, createMemoryLogger());
  const a = { name: 'bob', ipKey: 'ip:10.0.0.4', requestId: 'r' };
  for (let i = 0; i < 4; i++) await lockout.failed(a, 'wrong password');
  await lockout.succeeded(a);
  for (let i = 0; i < 4; i++) await lockout.failed(a, 'wrong password');
  await lockout.check(a);
});

test('refresh tokens rotate once; reusing an old one revokes the family and its current access token', async () => {
  const revoked: { family: string; access: { jti: string; exp: number } | undefined }[] = [];
  const refresh = new RefreshTokens(createMemoryKv(), 60_000, async (family, access) => {
    revoked.push({ family, access });
  });
  const first = await refresh.start('alice', ['staff']);
  await refresh.setAccess(first.record.family, 'jti-first-0001', 2_000_000_000);
  assert.equal(await refresh.familyOf(first.token), first.record.family);
  const second = await refresh.rotate(first.token);
  assert.notEqual(second.token, first.token);
  assert.equal(second.record.family, first.record.family);
  await refresh.setAccess(first.record.family, 'jti-second-0002', 2_000_000_100);

  // Within the grace the same token is a browser racing itself: a pass without a new refresh token.
  const racing = await refresh.rotate(first.token);
  assert.equal(racing.token, undefined);
  assert.equal(racing.record.family, first.record.family);
  assert.deepEqual(revoked, []);
  assert.equal(await code(refresh.rotate(first.token, Date.now() + 11_000)), 'AUTH_REVOKED');
  assert.deepEqual(revoked, [{ family: first.record.family, access: { jti: 'jti-second-0002', exp: 2_000_000_100 } }]);
  assert.equal(await code(refresh.rotate(second.token as string)), 'AUTH_REVOKED', 'the successor is dead too');
});

test('refresh tokens: malformed and unknown tokens are AUTH_INVALID, a revoked family is AUTH_REVOKED', async () => {
  const refresh = new RefreshTokens(createMemoryKv(), 60_000);
  assert.equal(await code(refresh.rotate('short')), 'AUTH_INVALID');
  assert.equal(await code(refresh.rotate('a'.repeat(43))), 'AUTH_INVALID');
  const s = await refresh.start('bob', []);
  await refresh.revokeFamily(s.record.family);
  assert.equal(await code(refresh.rotate(s.token)), 'AUTH_REVOKED');
});

test('cookies: duplicates are kept so a tossed second session cookie is seen as ambiguous', () => {
  const cookies = parseCookies(`${ACCESS_COOKIE}=a; other=1; ${ACCESS_COOKIE}=b`);
  assert.equal(singleCookie(cookies, ACCESS_COOKIE), 'ambiguous');
  assert.equal(singleCookie(cookies, 'other'), '1');
  assert.equal(singleCookie(cookies, REFRESH_COOKIE), undefined);
});

test('cookies: the gateway cookies are removed from what an upstream gets, others are kept', () => {
  assert.equal(withoutGatewayCookies(`${ACCESS_COOKIE}=a; nocodb=x; ${REFRESH_COOKIE}=b; ${CSRF_COOKIE}=c; metabase.SESSION=y`), 'nocodb=x; metabase.SESSION=y');
  assert.equal(withoutGatewayCookies(`${ACCESS_COOKIE}=a`), undefined);
});

function fakeReq(raw: string[]): IncomingMessage {
  const headers: Record<string, string> = {};
  for (let i = 0; i < raw.length; i += 2) headers[(raw[i] as string).toLowerCase()] ??= raw[i + 1] as string;
  return { rawHeaders: raw, headers } as unknown as IncomingMessage;
}

test('bearer: two Authorization headers are AUTH_AMBIGUOUS; a non-JWT or another scheme is AUTH_INVALID', async () => {
  assert.equal(readBearer(fakeReq([])), undefined);
  assert.equal(readBearer(fakeReq(['Authorization', 'Bearer a.b.c'])), 'a.b.c');
  assert.equal(await code(() => readBearer(fakeReq(['Authorization', 'Bearer a.b.c', 'authorization', 'Bearer d.e.f']))), 'AUTH_AMBIGUOUS');
  for (const v of ['Bearer a.b.', 'Bearer a.b', 'Basic dXNlcjpwYXNz', 'Bearer a.b.c d', 'Bearer', 'a.b.c']) {
    assert.equal(await code(() => readBearer(fakeReq(['Authorization', v]))), 'AUTH_INVALID', v);
  }
  assert.deepEqual(readBasic(fakeReq(['Authorization', `Basic ${Buffer.from('svc:s3cret:x').toString('base64')}`])), { name: 'svc', secret: 's3cret:x' });
});
