import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuthPaths } from '../../../src/auth/paths.js';
import { missingClaim } from '../../../src/auth/claims.js';
import { createFileSessionRegistry } from '../../../src/auth/sessions/registry.js';
import { describeBrowser } from '../../../src/auth/sessions/user-agent.js';
import { sessionsPage } from '../../../src/auth/sessions/page.js';
import type { StaffSession } from '../../../src/auth/sessions/types.js';
import { SEEN_EVERY_MS, StaffSessions } from '../../../src/auth/sessions/staff-sessions.js';
import type { RefreshTokens } from '../../../src/auth/refresh.js';
import { createMemoryLogger } from '../../../src/log/logger.js';

test('describeBrowser: the browser and platform people recognise, Edge and Opera before Chrome, Chrome before Safari', () => {
  const cases: [string, string][] = [
    ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36', 'Chrome 131 · Windows'],
    ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86', 'Edge 131 · Windows'],
    ['Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 OPR/106.0.0.0', 'Opera 106 · Linux'],
    ['Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:133.0) Gecko/20100101 Firefox/133.0', 'Firefox 133 · macOS'],
    ['Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1', 'Safari 17 · iOS'],
    ['Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36', 'Chrome 131 · Android'],
    ['curl/8.5.0', 'curl 8'],
    ['something else', 'Other browser'],
    ['', 'Unknown'],
  ];
  for (const [ua, expected] of cases) assert.equal(describeBrowser(ua), expected, ua);
});

test('AuthPaths: exact paths, then the longest prefix; a prefix must be under /auth/ and end with /; twice is an error', async () => {
  const hit: string[] = [];
  const h = (name: string) => async (): Promise<void> => void hit.push(name);
  const paths = new AuthPaths().exact('/auth/login', h('login')).prefix('/auth/mfa/', h('mfa')).prefix('/auth/mfa/webauthn/', h('webauthn'));
  assert.equal(paths.find('/auth/login'), paths.find('/auth/login'));
  assert.ok(paths.find('/auth/mfa/totp'));
  await paths.find('/auth/mfa/webauthn/x')?.({} as never, {} as never);
  await paths.find('/auth/mfa/totp')?.({} as never, {} as never);
  assert.deepEqual(hit, ['webauthn', 'mfa']);
  assert.equal(paths.find('/auth/mfa'), undefined, 'the prefix does not own its own name without the slash');
  assert.equal(paths.find('/auth/reset_password'), undefined, "Metabase's own /auth/ pages are not taken");
  assert.throws(() => paths.prefix('/api/', h('x')));
  assert.throws(() => paths.prefix('/auth/x', h('x')));
  assert.throws(() => paths.exact('/auth/login', h('again')));
  assert.throws(() => paths.prefix('/auth/mfa/', h('again')));
});

test('claims: sid and amr are checked for shape when present', () => {
  const base = { sub: 'ana', iss: 'i', aud: 'a', iat: 1, exp: 2, jti: 'abcdefghij' };
  assert.equal(missingClaim({ ...base, sid: 'A'.repeat(22), amr: ['password', 'totp'] }), undefined);
  assert.equal(missingClaim({ ...base, sid: 'x' }), 'sid');
  assert.equal(missingClaim({ ...base, sid: 7 }), 'sid');
  assert.equal(missingClaim({ ...base, amr: ['pwd'] }), 'amr');
  assert.equal(missingClaim({ ...base, amr: 'password' }), 'amr');
});

test('file registry: private file, newest first, per user, families, touch never brings a removed session back, expiry', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'crm-gw-sessions-unit-'));
  try {
    let now = 1_000_000;
    const reg = createFileSessionRegistry(dir, 60_000, () => now);
    const a = await reg.create({ subject: 'ana', roles: ['staff'], factors: ['password'], method: 'password', ip: '198.18.0.1', userAgent: 'x'.repeat(1000) });
    now += 10;
    const b = await reg.create({ subject: 'ana', roles: ['staff'], factors: ['password', 'totp'], method: 'password', ip: '198.18.0.2', userAgent: 'UA' });
    const c = await reg.create({ subject: 'bo', roles: ['staff'], factors: ['oidc'], method: 'oidc', ip: '', userAgent: '' });
    assert.equal(statSync(join(dir, 'sessions.json')).mode & 0o777, 0o600);
    assert.match(a.id, /^[0-9a-f]{32}$/);
    assert.equal(a.userAgent.length, 256, 'a long User-Agent is cut');
    assert.deepEqual((await reg.list({ subject: 'ana' })).map((s) => s.id), [b.id, a.id]);
    assert.equal((await reg.list()).length, 3);
    await reg.addFamily(a.id, 'fam1');
    await reg.addFamily(a.id, 'fam2');
    await reg.addFamily(a.id, 'fam1');
    assert.deepEqual(await reg.families(a.id), ['fam1', 'fam2']);
    await reg.touch(a.id, now + 5_000);
    assert.equal((await reg.get(a.id))?.lastSeenAt, now + 5_000);
    assert.equal((await reg.remove(a.id))?.id, a.id);
    await reg.touch(a.id, now + 6_000);
    await reg.addFamily(a.id, 'fam3');
    assert.equal(await reg.get(a.id), undefined, 'a touch or family after removal brings nothing back');
    assert.equal(await reg.get('__proto__'), undefined);
    now += 61_000;
    assert.equal(await reg.get(c.id), undefined, 'expired');
    assert.deepEqual(await reg.list(), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sessions page: this browser first, the others with their end forms, escaped values, both languages', () => {
  const s = (id: string, ua: string): StaffSession => ({ id, subject: 'ana', roles: [], factors: ['password'], method: 'password', createdAt: 0, lastSeenAt: 60_000, ip: '<b>1.2.3.4</b>', userAgent: ua, authTime: 0 });
  const cur = 'C'.repeat(22);
  const other = 'O'.repeat(22);
  const en = sessionsPage('en', { sessions: [s(other, 'Firefox/133.0'), s(cur, 'Chrome/131.0 "><script>')], current: cur, csrf: 'tok' }).html;
  assert.ok(en.indexOf('(This browser)') < en.indexOf('Firefox 133'), 'this browser first');
  assert.match(en, new RegExp(`action="/auth/sessions/end"><input type="hidden" name="csrf" value="tok"><input type="hidden" name="id" value="${other}">`));
  assert.match(en, /action="\/auth\/logout"/, 'this browser signs out through the logout');
  assert.match(en, /End all other sessions/);
  assert.match(en, /1970-01-01 00:01 UTC/);
  assert.doesNotMatch(en, /<b>1\.2|<script>/);
  const es = sessionsPage('es', { sessions: [s(cur, '')], current: cur, csrf: 'tok' }).html;
  assert.match(es, /<html lang="es">/);
  assert.match(es, /Sus sesiones/);
  assert.match(es, /No hay otras sesiones/);
});

test('StaffSessions: last seen is written at most once a minute per session; ending one revokes sid:<id> and every host family', async () => {
  const touches: [string, number][] = [];
  const removed: string[] = [];
  const session: StaffSession = { id: 'S'.repeat(22), subject: 'ana', roles: [], factors: ['password'], method: 'password', createdAt: 1_000, lastSeenAt: 1_000, ip: '', userAgent: '', authTime: 1_000 };
  const registry = {
    create: async () => session,
    get: async (id: string) => (id === session.id && !removed.includes(id) ? session : undefined),
    touch: async (id: string, at: number) => void touches.push([id, at]),
    list: async () => [session],
    addFamily: async () => undefined,
    families: async () => ['famA', 'famB'],
    remove: async (id: string) => void removed.push(id) as unknown as undefined,
  };
  const revoked: [string, number][] = [];
  const revocations = { isRevoked: (jti: string) => revoked.some(([j]) => j === jti), revoke: async (jti: string, exp: number) => void revoked.push([jti, exp]), onRevoked: () => undefined, live: true, close: async () => undefined };
  const families: string[] = [];
  const refresh = { revokeFamily: async (f: string) => void families.push(f) } as unknown as RefreshTokens;
  const log = createMemoryLogger();
  const sessions = new StaffSessions(registry, revocations, () => refresh, 60_000, log);
  sessions.seen(session.id, 10_000);
  sessions.seen(session.id, 10_000 + SEEN_EVERY_MS - 1);
  sessions.seen(session.id, 10_000 + SEEN_EVERY_MS);
  sessions.seen('T'.repeat(22), 10_001);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(touches, [[session.id, 10_000], [session.id, 10_000 + SEEN_EVERY_MS], ['T'.repeat(22), 10_001]]);
  assert.equal(await sessions.ended(session.id), false);
  const ended = await sessions.end(session.id, { actor: 'root', reason: 'overview' });
  assert.equal(ended?.id, session.id);
  assert.deepEqual(revoked, [[`sid:${session.id}`, Math.ceil((1_000 + 60_000) / 1000)]], 'revoked until the session could last');
  assert.equal(await sessions.ended(session.id), true);
  assert.deepEqual(families, ['famA', 'famB']);
  assert.deepEqual(removed, [session.id]);
  assert.equal(await sessions.live(session.id), undefined);
  const event = log.securityEvents.find((e) => e.event === 'auth.session_revoked');
  assert.ok(event && event.actor === 'root' && event.reason === 'overview' && event.user === 'ana' && event.hosts === 2);
});
