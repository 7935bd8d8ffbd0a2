import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AlertRules, Cooldown, type AlertType } from '../../../src/audit/alerts/rules.js';
import { Lockout } from '../../../src/auth/lockout.js';
import { createMemoryLogger } from '../../../src/log/logger.js';
import { createMemoryKv } from '../../../src/stores/kv.js';
import { alertsConfig } from '../../helpers/audit.js';

// Issue 18, item 3: sign-in events carried the lockout key (`ip:127.0.0.1`) as their address,
// so alerts read `account ip:ip:127.0.0.1 locked` and one address raised `failed_logins_ip`
// under two spellings, each with its own cooldown.

const cfg = alertsConfig('alerts: { failedLogins: { window: 10m, perUser: 50, perIp: 4 }, cooldown: 10m }');

interface Raised {
  type: AlertType;
  subject: string;
  message: string;
  fields: Record<string, unknown>;
}

/** The rules with the audit logger's cooldown in front of them, fed with what the real Lockout logs. */
function rig(): { rules: AlertRules; raised: Raised[]; feed(events: Record<string, unknown>[]): void } {
  const raised: Raised[] = [];
  const clock = 1_000_000;
  const cooldown = new Cooldown(cfg.cooldown);
  const rules = new AlertRules(
    cfg,
    (type, subject, message, fields = {}) => {
      if (cooldown.allow(`${type}|${subject}`, clock)) raised.push({ type, subject, message, fields });
    },
    () => clock,
  );
  let seen = 0;
  return {
    rules,
    raised,
    feed(events) {
      for (const e of events.slice(seen)) rules.security(e);
      seen = events.length;
    },
  };
}

test('sign-in events name the plain client address; the address group failures count under has its own field (never named *Key: that is redacted)', async () => {
  const log = createMemoryLogger();
  const lockout = new Lockout(createMemoryKv(), log);
  const a = { name: 'alice', clientIp: '2001:db8:1:2::17', ipKey: '2001:db8:1:2::/64', requestId: 'r1' };
  await lockout.failed(a, 'wrong password');
  const failed = log.securityEvents.find((e) => e.event === 'auth.login_failed');
  assert.equal(failed?.clientIp, '2001:db8:1:2::17');
  assert.equal(failed?.addressGroup, '2001:db8:1:2::/64');
});

test('an address lockout reads as one: subject ip:<address>, "address … locked", no ip:ip:', async () => {
  const log = createMemoryLogger();
  const lockout = new Lockout(createMemoryKv(), log);
  const { raised, feed } = rig();
  for (let i = 0; i < 20; i++) await lockout.failed({ name: `user${i}`, clientIp: '127.0.0.1', ipKey: '127.0.0.1', requestId: `r${i}` }, 'unknown user');
  feed(log.securityEvents);
  const lock = log.securityEvents.find((e) => e.event === 'auth.lockout');
  assert.equal(lock?.subject, 'ip:127.0.0.1');
  assert.equal(lock?.clientIp, '127.0.0.1');
  assert.equal(lock?.user, undefined, 'an address lock names no account');
  const locked = raised.filter((r) => r.type === 'account_locked');
  assert.deepEqual(
    locked.map((r) => [r.subject, r.message]),
    [['ip:127.0.0.1', 'address 127.0.0.1 locked for 30s after 20 failed sign-ins']],
  );
  assert.ok(!JSON.stringify(raised).includes('ip:ip:'), JSON.stringify(raised));
});

test('an account lockout names the account once', async () => {
  const log = createMemoryLogger();
  const lockout = new Lockout(createMemoryKv(), log);
  const { raised, feed } = rig();
  for (let i = 0; i < 5; i++) await lockout.failed({ name: 'Dave', clientIp: '198.51.100.9', ipKey: '198.51.100.9', requestId: `d${i}` }, 'wrong password');
  feed(log.securityEvents);
  const locked = raised.filter((r) => r.type === 'account_locked');
  assert.deepEqual(
    locked.map((r) => [r.subject, r.message, r.fields.user, r.fields.clientIp]),
    [['user:dave', 'account Dave locked for 30s after 5 failed sign-ins', 'Dave', '198.51.100.9']],
  );
});

test('failed_logins_ip: sign-in failures and refused tokens from one address count under one spelling, one alert per cooldown', async () => {
  const log = createMemoryLogger();
  const lockout = new Lockout(createMemoryKv(), log);
  const { rules, raised, feed } = rig();
  // Sign-in failures (security events) and refused bearer tokens (access lines) interleaved:
  // 12 failures, three times the threshold, all from 127.0.0.1.
  for (let i = 0; i < 6; i++) {
    await lockout.failed({ name: `name${i}`, clientIp: '127.0.0.1', ipKey: '127.0.0.1', requestId: `login-${i}` }, 'unknown user');
    feed(log.securityEvents);
    rules.access({ requestId: `login-${i}`, clientIp: '127.0.0.1', code: 'AUTH_FAILED', status: 401 }); // the same request: not counted again
    rules.access({ requestId: `token-${i}`, clientIp: '127.0.0.1', code: 'AUTH_INVALID', status: 401 });
  }
  const perIp = raised.filter((r) => r.type === 'failed_logins_ip');
  assert.deepEqual(
    perIp.map((r) => [r.subject, r.fields.clientIp]),
    [['127.0.0.1', '127.0.0.1']],
  );
});
