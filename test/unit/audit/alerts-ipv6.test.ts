import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AlertRules, type AlertType } from '../../../src/audit/alerts/rules.js';
import { alertsConfig } from '../../helpers/audit.js';

const cfg = alertsConfig(`
alerts:
  failedLogins: { window: 10m, perUser: 100, perIp: 4 }
  suspicious: { window: 1m, rateLimited: 5, rejectedPaths: 3 }
`);

function rig(): { rules: AlertRules; raised: { type: AlertType; subject: string; message: string; fields: Record<string, unknown> }[] } {
  const raised: { type: AlertType; subject: string; message: string; fields: Record<string, unknown> }[] = [];
  const rules = new AlertRules(cfg, (type, subject, message, fields = {}) => raised.push({ type, subject, message, fields }), () => 1_000_000);
  return { rules, raised };
}

test('regression: an IPv6 client rotating through its /64 is counted as one (failed sign-ins, 429s, rejected paths)', () => {
  const { rules, raised } = rig();
  for (let i = 1; i <= 4; i++) rules.security({ event: 'auth.login_failed', user: `u${i}`, clientIp: `2001:db8:1:2::${i.toString(16)}`, requestId: `r${i}` });
  for (let i = 1; i <= 5; i++) rules.access({ clientIp: `2001:db8:1:3:${i}::1`, code: 'RATE_LIMITED', status: 429 });
  for (let i = 1; i <= 3; i++) rules.access({ clientIp: `2001:db8:1:4::a:${i}`, code: 'PATH_REJECTED', status: 400 });
  assert.deepEqual(raised.map((r) => [r.type, r.subject, r.fields.clientIp]), [
    ['failed_logins_ip', '2001:db8:1:2::/64', '2001:db8:1:2::4'],
    ['suspicious_rate_limited', '2001:db8:1:3::/64', '2001:db8:1:3:5::1'],
    ['suspicious_rejected_paths', '2001:db8:1:4::/64', '2001:db8:1:4::a:3'],
  ]);
  assert.equal(raised[0]?.message, '4 failed authentications from 2001:db8:1:2::/64 within 10m', 'the subject stays readable');
});

test('IPv4 addresses are still counted one by one, and different /64s apart', () => {
  const { rules, raised } = rig();
  for (let i = 1; i <= 3; i++) rules.access({ clientIp: `203.0.113.${i}`, code: 'AUTH_INVALID', status: 401 });
  for (let i = 1; i <= 3; i++) rules.access({ clientIp: `2001:db8:${i}::1`, code: 'AUTH_INVALID', status: 401 });
  assert.equal(raised.length, 0);
  rules.access({ clientIp: '::ffff:203.0.113.1', code: 'AUTH_INVALID', status: 401 });
  for (let i = 0; i < 3; i++) rules.access({ clientIp: '203.0.113.1', code: 'AUTH_INVALID', status: 401 });
  assert.deepEqual(raised.map((r) => r.subject), ['203.0.113.1']);
});
