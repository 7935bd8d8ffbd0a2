import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AutoContainment } from '../../../src/containment/auto.js';
import { BlockSet } from '../../../src/containment/blocks.js';
import { createFileBlockStore } from '../../../src/containment/store.js';
import { blocksSection } from '../../../src/admin/overview-page.js';
import { localTime } from '../../../src/admin/local-time.js';
import { parseConfig } from '../../../src/config/load.js';
import { createMemoryLogger } from '../../../src/log/logger.js';
import { IpSet } from '../../../src/net/ip.js';

const LIMITS = { maxMs: 90 * 86_400_000 };
const ROUTES = `\nroutes:\n  - { name: x, host: x.test, upstream: "http://127.0.0.1:9", auth: none }\n`;

function setup(rulesYaml: string): { auto: AutoContainment; set: BlockSet; log: ReturnType<typeof createMemoryLogger>; dir: string; now: { t: number } } {
  const cfg = parseConfig(`containment:\n  neverBlock: [192.0.2.0/24]\n  rules:\n${rulesYaml}${ROUTES}`, {});
  const dir = mkdtempSync(join(tmpdir(), 'crm-gw-auto-'));
  const log = createMemoryLogger();
  const set = new BlockSet();
  const store = createFileBlockStore(dir, LIMITS, log);
  const now = { t: Date.now() };
  const auto = new AutoContainment(cfg.containment.rules, { trustedProxies: new IpSet(['198.51.100.1']), neverBlock: new IpSet(cfg.containment.neverBlock) }, store, set, log, () => now.t);
  return { auto, set, log, dir, now };
}

const alert = (type: string, fields: Record<string, unknown>): Record<string, unknown> => ({ event: `alert.${type}`, alert: type, message: `${type} alert`, ...fields });
const flush = (): Promise<void> => new Promise((r) => setTimeout(r, 20));

test('an alert of a configured type blocks its address, reported like a manual block (actor auto, the rule, the alert)', async (t) => {
  const { auto, log, dir } = setup('    - { on: failed_logins_ip, block: ip, for: 15m }\n');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  auto.security(alert('failed_logins_ip', { clientIp: '203.0.113.7', count: 20, windowMs: 600_000 }));
  auto.security(alert('new_ip_for_user', { clientIp: '203.0.113.8', user: 'bob' }));
  auto.security({ event: 'auth.login_failed', clientIp: '203.0.113.9' });
  await flush();
  const listed = await createFileBlockStore(dir, LIMITS, log).list();
  assert.deepEqual(listed.map((b) => [b.kind, b.target, b.source, b.by, b.rule]), [['ip', '203.0.113.7', 'auto', 'auto', 'failed_logins_ip -> ip for 15m']]);
  assert.ok(Math.abs(listed[0]!.until - Date.now() - 15 * 60_000) < 2_000);
  assert.equal(statSync(join(dir, 'blocks.json')).mode & 0o777, 0o600);
  const event = log.securityEvents.find((e) => e.event === 'containment.blocked');
  assert.equal(event?.actor, 'auto');
  assert.equal(event?.alert, 'failed_logins_ip');
  assert.equal(event?.reason, 'automatic: alert failed_logins_ip (20 within 10m) for ip 203.0.113.7');
});

test('never a trusted proxy or a neverBlock network', async (t) => {
  const { auto, log, dir } = setup('    - { on: suspicious_rate_limited, block: ip, for: 1h }\n');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  auto.security(alert('suspicious_rate_limited', { clientIp: '198.51.100.1' }));
  auto.security(alert('suspicious_rate_limited', { clientIp: '192.0.2.44' }));
  await flush();
  assert.deepEqual(await createFileBlockStore(dir, LIMITS, log).list(), []);
  assert.deepEqual(
    log.securityEvents.filter((e) => e.event === 'containment.auto_skipped').map((e) => e.why),
    ['198.51.100.1 is in TRUSTED_PROXIES', '192.0.2.44 is in containment.neverBlock'],
  );
});

test('a rule makes at most maxPerMinute blocks a minute; the excess is logged once, then allowed again a minute later', async (t) => {
  const { auto, log, dir, now } = setup('    - { on: new_ip_for_user, block: user, for: 10m, maxPerMinute: 3 }\n');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (let i = 0; i < 10; i++) auto.security(alert('new_ip_for_user', { user: `u${i}` }));
  await flush();
  const store = createFileBlockStore(dir, LIMITS, log);
  assert.equal((await store.list()).length, 3);
  assert.equal(log.securityEvents.filter((e) => e.event === 'containment.auto_suppressed').length, 1);
  now.t += 61_000;
  auto.security(alert('new_ip_for_user', { user: 'late' }));
  await flush();
  assert.equal((await store.list()).length, 4);
});

test('rules are checked at startup: an alert that names no address cannot block one', () => {
  assert.throws(() => parseConfig(`containment:\n  rules:\n    - { on: new_ip_for_user, block: ip, for: 1h }${ROUTES}`, {}), /not about an offending address/);
  assert.throws(() => parseConfig(`containment:\n  rules:\n    - { on: failed_logins_ip, block: user, for: 1h }${ROUTES}`, {}), /names no signed-in user/);
  assert.throws(() => parseConfig(`containment:\n  maxDuration: 1d\n  rules:\n    - { on: failed_logins_ip, block: ip, for: 2d }${ROUTES}`, {}), /longer than containment\.maxDuration/);
  assert.throws(() => parseConfig(`containment:\n  neverBlock: [not-a-network]${ROUTES}`, {}), /containment\.neverBlock/);
  assert.throws(() => parseConfig(`containment:\n  rules:\n    - { on: failed_logins_ip, block: ip, for: 1h, typo: 1 }${ROUTES}`, {}), /typo/);
  assert.deepEqual(parseConfig(ROUTES, {}).containment.rules, [], 'off by default');
});

test('the overview lists blocks in force with who made them, escaped, and the command that lifts each', () => {
  const html = blocksSection(
    [
      { kind: 'ip', target: '203.0.113.7', reason: '<script>x</script>', until: Date.parse('2026-12-06T12:00:00Z'), createdAt: 0, by: 'ops', source: 'manual' },
      { kind: 'user', target: 'bob', reason: 'automatic: 5 failed logins', until: Date.parse('2026-12-06T13:00:00Z'), createdAt: 0, by: 'auto', source: 'auto', rule: 'failed_logins_user -> user for 1h' },
    ],
    localTime('UTC'),
    '24h',
  );
  assert.match(html, /data-block="ip:203\.0\.113\.7" data-source="manual"/);
  assert.match(html, /automatic \(failed_logins_user -&#62; user for 1h\)/);
  assert.ok(!html.includes('<script>'));
  assert.match(html, /npx crm-gateway unblock user bob/);
  assert.match(blocksSection([], localTime('UTC'), '24h'), /No blocks in force/);
});

test('regression: rules that let an attacker pick the victim are refused at startup, each with the reason', () => {
  const rule = (on: string, block: string): string => `containment:\n  rules:\n    - { on: ${on}, block: ${block}, for: 1h }${ROUTES}`;
  // The user of a failure alert is whatever name was typed: anyone could block any account.
  assert.throws(() => parseConfig(rule('failed_logins_user', 'user'), {}), /failed_logins_user names the user name an unauthenticated client typed.*new_ip_for_user/);
  assert.throws(() => parseConfig(rule('account_locked', 'user'), {}), /account_locked names the user name an unauthenticated client typed/);
  // The address of a per-account alert is whoever made the Nth failure: the owner's typo.
  assert.throws(() => parseConfig(rule('failed_logins_user', 'ip'), {}), /failed_logins_user counts failures against an account from any address.*block: ip only for failed_logins_ip/);
  assert.throws(() => parseConfig(rule('account_locked', 'ip'), {}), /account_locked counts failures against an account/);
  for (const [on, block] of [['new_ip_for_user', 'user'], ['failed_logins_ip', 'ip'], ['suspicious_rate_limited', 'ip'], ['suspicious_rejected_paths', 'ip']]) {
    assert.equal(parseConfig(rule(on ?? '', block ?? ''), {}).containment.rules.length, 1, `${String(on)} -> ${String(block)}`);
  }
});

test('regression: an automatic block\'s reason is built from the rule, never from the alert\'s message (terminal escapes)', async (t) => {
  const { auto, log, dir } = setup('    - { on: new_ip_for_user, block: user, for: 1h }\n');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  auto.security({ event: 'alert.new_ip_for_user', alert: 'new_ip_for_user', user: 'bob', clientIp: '203.0.113.5', message: 'user \u001b]0;pwned\u0007\u001b[2J bob seen \u202e' });
  await flush();
  const [b] = await createFileBlockStore(dir, LIMITS, log).list();
  assert.equal(b?.reason, 'automatic: alert new_ip_for_user for user bob');
});

test('regression: an IPv6 offender is blocked as its /64; a /64 touching neverBlock or TRUSTED_PROXIES is spared', async (t) => {
  const cfg = parseConfig(`containment:\n  neverBlock: ['2001:db8:99::5', '2001:db8:aa00::/40']\n  rules:\n    - { on: failed_logins_ip, block: ip, for: 15m }\n${ROUTES}`, {});
  const dir = mkdtempSync(join(tmpdir(), 'crm-gw-auto6-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const log = createMemoryLogger();
  const store = createFileBlockStore(dir, LIMITS, log);
  const spared = { trustedProxies: new IpSet(['2001:db8:77::1']), neverBlock: new IpSet(cfg.containment.neverBlock) };
  const auto = new AutoContainment(cfg.containment.rules, spared, store, new BlockSet(), log);
  auto.security(alert('failed_logins_ip', { clientIp: '2001:DB8:1:2:aaaa:bbbb:cccc:dddd', count: 5, windowMs: 600_000 }));
  auto.security(alert('failed_logins_ip', { clientIp: '2001:db8:99::1234' }));
  auto.security(alert('failed_logins_ip', { clientIp: '2001:db8:aa12::1' }));
  auto.security(alert('failed_logins_ip', { clientIp: '2001:db8:77::2' }));
  await flush();
  const listed = await store.list();
  assert.deepEqual(listed.map((b) => [b.kind, b.target, b.reason]), [['cidr', '2001:db8:1:2::/64', 'automatic: alert failed_logins_ip (5 within 10m) for cidr 2001:db8:1:2::/64']]);
  assert.deepEqual(
    log.securityEvents.filter((e) => e.event === 'containment.auto_skipped').map((e) => e.why),
    ['2001:db8:99::/64 overlaps containment.neverBlock', '2001:db8:aa12::/64 overlaps containment.neverBlock', '2001:db8:77::/64 overlaps TRUSTED_PROXIES'],
  );
  // A network blocked already is not blocked again.
  const blocks = new BlockSet();
  blocks.replace(listed);
  const again = new AutoContainment(cfg.containment.rules, spared, store, blocks, log);
  again.security(alert('failed_logins_ip', { clientIp: '2001:db8:1:2::9' }));
  await flush();
  assert.equal(log.securityEvents.filter((e) => e.event === 'containment.blocked').length, 1);
});
