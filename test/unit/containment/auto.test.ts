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

const ROUTES = `\nroutes:\n  - { name: x, host: x.test, upstream: "http://127.0.0.1:9", auth: none }\n`;

function setup(rulesYaml: string): { auto: AutoContainment; set: BlockSet; log: ReturnType<typeof createMemoryLogger>; dir: string; now: { t: number } } {
  const cfg = parseConfig(`containment:\n  neverBlock: [192.0.2.0/24]\n  rules:\n${rulesYaml}${ROUTES}`, {});
  const dir = mkdtempSync(join(tmpdir(), 'crm-gw-auto-'));
  const log = createMemoryLogger();
  const set = new BlockSet();
  const store = createFileBlockStore(dir, log);
  const now = { t: Date.now() };
  const auto = new AutoContainment(cfg.containment.rules, { trustedProxies: new IpSet(['198.51.100.1']), neverBlock: new IpSet(cfg.containment.neverBlock) }, store, set, log, () => now.t);
  return { auto, set, log, dir, now };
}

const alert = (type: string, fields: Record<string, unknown>): Record<string, unknown> => ({ event: `alert.${type}`, alert: type, message: `${type} alert`, ...fields });
const flush = (): Promise<void> => new Promise((r) => setTimeout(r, 20));

test('an alert of a configured type blocks its address, reported like a manual block (actor auto, the rule, the alert)', async (t) => {
  const { auto, log, dir } = setup('    - { on: failed_logins_ip, block: ip, for: 15m }\n');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  auto.security(alert('failed_logins_ip', { clientIp: '203.0.113.7' }));
  auto.security(alert('new_ip_for_user', { clientIp: '203.0.113.8', user: 'bob' }));
  auto.security({ event: 'auth.login_failed', clientIp: '203.0.113.9' });
  await flush();
  const listed = await createFileBlockStore(dir, log).list();
  assert.deepEqual(listed.map((b) => [b.kind, b.target, b.source, b.by, b.rule]), [['ip', '203.0.113.7', 'auto', 'auto', 'failed_logins_ip -> ip for 15m']]);
  assert.ok(Math.abs(listed[0]!.until - Date.now() - 15 * 60_000) < 2_000);
  assert.equal(statSync(join(dir, 'blocks.json')).mode & 0o777, 0o600);
  const event = log.securityEvents.find((e) => e.event === 'containment.blocked');
  assert.equal(event?.actor, 'auto');
  assert.equal(event?.alert, 'failed_logins_ip');
  assert.equal(event?.reason, 'automatic: failed_logins_ip alert');
});

test('never a trusted proxy or a neverBlock network', async (t) => {
  const { auto, log, dir } = setup('    - { on: suspicious_rate_limited, block: ip, for: 1h }\n');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  auto.security(alert('suspicious_rate_limited', { clientIp: '198.51.100.1' }));
  auto.security(alert('suspicious_rate_limited', { clientIp: '192.0.2.44' }));
  await flush();
  assert.deepEqual(await createFileBlockStore(dir, log).list(), []);
  assert.deepEqual(
    log.securityEvents.filter((e) => e.event === 'containment.auto_skipped').map((e) => e.why),
    ['198.51.100.1 is in TRUSTED_PROXIES', '192.0.2.44 is in containment.neverBlock'],
  );
});

test('a rule makes at most maxPerMinute blocks a minute; the excess is logged once, then allowed again a minute later', async (t) => {
  const { auto, log, dir, now } = setup('    - { on: failed_logins_user, block: user, for: 10m, maxPerMinute: 3 }\n');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (let i = 0; i < 10; i++) auto.security(alert('failed_logins_user', { user: `u${i}` }));
  await flush();
  const store = createFileBlockStore(dir, log);
  assert.equal((await store.list()).length, 3);
  assert.equal(log.securityEvents.filter((e) => e.event === 'containment.auto_suppressed').length, 1);
  now.t += 61_000;
  auto.security(alert('failed_logins_user', { user: 'late' }));
  await flush();
  assert.equal((await store.list()).length, 4);
});

test('rules are checked at startup: an alert that names no address cannot block one', () => {
  assert.throws(() => parseConfig(`containment:\n  rules:\n    - { on: new_ip_for_user, block: ip, for: 1h }${ROUTES}`, {}), /names no address/);
  assert.throws(() => parseConfig(`containment:\n  rules:\n    - { on: failed_logins_ip, block: user, for: 1h }${ROUTES}`, {}), /names no user/);
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
