import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { AlertRules, type AlertType } from '../../../src/audit/alerts/rules.js';
import { checkResources } from '../../../src/audit/alerts/resources.js';
import { AlertWebhook } from '../../../src/audit/alerts/alert-webhook.js';
import { alertsConfig, startTestAudit } from '../../helpers/audit.js';
import { waitFor } from '../../helpers/wait.js';

const cfg = alertsConfig(`
alerts:
  failedLogins: { window: 10m, perUser: 3, perIp: 4 }
  suspicious: { window: 1m, rateLimited: 5, rejectedPaths: 3 }
  upstreamDown: { window: 1m, errors: 2 }
`);

function rig(): { rules: AlertRules; raised: { type: AlertType; subject: string; fields: Record<string, unknown> }[]; clock: { t: number } } {
  const raised: { type: AlertType; subject: string; fields: Record<string, unknown> }[] = [];
  const clock = { t: 1_000_000 };
  const rules = new AlertRules(cfg, (type, subject, _message, fields = {}) => raised.push({ type, subject, fields }), () => clock.t);
  return { rules, raised, clock };
}

test('failed logins per user: nothing below the threshold, an alert at it', () => {
  const { rules, raised } = rig();
  for (let i = 0; i < 2; i++) rules.security({ event: 'auth.login_failed', user: 'alice', clientIp: `10.0.0.${i}`, requestId: `r${i}` });
  assert.equal(raised.length, 0);
  rules.security({ event: 'auth.login_failed', user: 'alice', clientIp: '10.0.0.9', requestId: 'r9' });
  assert.deepEqual(raised.map((r) => [r.type, r.subject]), [['failed_logins_user', 'alice']]);
});

test('failed logins per user only count within the window', () => {
  const { rules, raised, clock } = rig();
  rules.security({ event: 'auth.login_failed', user: 'bob', clientIp: '10.1.0.1' });
  rules.security({ event: 'auth.login_failed', user: 'bob', clientIp: '10.1.0.2' });
  clock.t += 11 * 60_000;
  rules.security({ event: 'auth.login_failed', user: 'bob', clientIp: '10.1.0.3' });
  assert.equal(raised.filter((r) => r.type === 'failed_logins_user').length, 0);
});

test('failed authentication per IP counts login failures and refused credentials once each', () => {
  const { rules, raised } = rig();
  rules.security({ event: 'auth.login_failed', user: 'u1', clientIp: '198.51.100.7', requestId: 'a' });
  // The same request's access line (AUTH_FAILED) is not counted a second time.
  rules.access({ requestId: 'a', clientIp: '198.51.100.7', code: 'AUTH_FAILED', status: 401 });
  rules.access({ requestId: 'b', clientIp: '198.51.100.7', code: 'AUTH_INVALID', status: 401 });
  rules.access({ requestId: 'c', clientIp: '198.51.100.7', code: 'AUTH_REQUIRED', status: 401 }); // no credentials: not a failure
  rules.access({ requestId: 'd', clientIp: '198.51.100.7', code: 'AUTH_REVOKED', status: 401 });
  assert.equal(raised.length, 0);
  rules.access({ requestId: 'e', clientIp: '198.51.100.7', code: 'AUTH_INVALID', status: 401 });
  assert.deepEqual(raised.map((r) => [r.type, r.subject, r.fields.count]), [['failed_logins_ip', '198.51.100.7', 4]]);
});

test('a user seen from an address never seen for them', () => {
  const { rules, raised } = rig();
  rules.access({ user: 'carol', clientIp: '192.0.2.1', status: 200 });
  rules.access({ user: 'carol', clientIp: '192.0.2.1', status: 200 });
  rules.security({ event: 'auth.login_succeeded', user: 'carol', clientIp: '192.0.2.1' });
  assert.equal(raised.length, 0, 'the first address is learned, not alerted');
  rules.access({ user: 'carol', clientIp: '203.0.113.50', status: 200 });
  assert.deepEqual(raised.map((r) => [r.type, r.fields.user, r.fields.clientIp]), [['new_ip_for_user', 'carol', '203.0.113.50']]);
  rules.access({ user: 'carol', clientIp: '203.0.113.50', status: 200 });
  assert.equal(raised.length, 1, 'then it is known');
});

test('bursts of 429s and of rejected paths from one IP', () => {
  const { rules, raised } = rig();
  for (let i = 0; i < 4; i++) rules.access({ clientIp: '203.0.113.9', code: 'RATE_LIMITED', status: 429 });
  rules.access({ clientIp: '203.0.113.10', code: 'RATE_LIMITED', status: 429 });
  assert.equal(raised.length, 0);
  rules.access({ clientIp: '203.0.113.9', code: 'RATE_LIMITED', status: 429 });
  for (let i = 0; i < 3; i++) rules.access({ clientIp: '203.0.113.11', code: i % 2 ? 'PATH_REJECTED' : 'BAD_REQUEST_TARGET', status: 400 });
  assert.deepEqual(raised.map((r) => [r.type, r.subject]), [
    ['suspicious_rate_limited', '203.0.113.9'],
    ['suspicious_rejected_paths', '203.0.113.11'],
  ]);
});

test('an upstream that keeps failing', () => {
  const { rules, raised } = rig();
  rules.access({ route: 'crm-api', code: 'UPSTREAM_UNAVAILABLE', status: 502 });
  rules.access({ route: 'nocodb', code: 'UPSTREAM_TIMEOUT', status: 504 });
  assert.equal(raised.length, 0);
  rules.access({ route: 'crm-api', code: 'UPSTREAM_TIMEOUT', status: 504 });
  assert.deepEqual(raised.map((r) => [r.type, r.subject]), [['upstream_down', 'crm-api']]);
});

test('a lockout is an alert at once', () => {
  const { rules, raised } = rig();
  rules.security({ event: 'auth.lockout', subject: 'user:dave', failures: 10 });
  assert.deepEqual(raised.map((r) => [r.type, r.subject]), [['account_locked', 'user:dave']]);
});

test('anomalous resource use: event-loop lag and memory over their thresholds', () => {
  const raised: string[] = [];
  const raise = (type: AlertType, subject: string): void => void raised.push(`${type}:${subject}`);
  const r = cfg.resources;
  checkResources({ lagP99Ms: r.eventLoopLag - 1, lagMaxMs: 10, rssBytes: r.maxRss - 1, heapRatio: r.maxHeapRatio - 0.01 }, r, raise);
  assert.deepEqual(raised, []);
  checkResources({ lagP99Ms: r.eventLoopLag + 1, lagMaxMs: 900, rssBytes: r.maxRss + 1, heapRatio: r.maxHeapRatio + 0.01 }, r, raise);
  assert.deepEqual(raised, ['event_loop_lag:process', 'memory_high:rss', 'memory_high:heap']);
});

test('an alert is a security event and a webhook POST, once per cooldown, retried until the receiver takes it', async (t) => {
  const received: Record<string, unknown>[] = [];
  let calls = 0;
  const server = http.createServer((req, res) => {
    calls++;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      // The receiver fails twice before it takes the alert.
      if (calls <= 2) {
        res.writeHead(503).end();
        return;
      }
      received.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/secret-path-token`;
  const audit = await startTestAudit({ alerts: { ...cfg, webhookUrl: url }, webhook: { retryMs: 20 } });
  t.after(() => audit.close());
  // From different addresses, so only the per-user rule is concerned.
  for (let i = 0; i < 3; i++) audit.log.security('auth.login_failed', { user: 'erin', clientIp: `10.9.9.${i}`, requestId: `e${i}` });
  // More failures within the cooldown: no second alert.
  for (let i = 3; i < 9; i++) audit.log.security('auth.login_failed', { user: 'erin', clientIp: `10.9.9.${i}`, requestId: `e${i}` });
  await waitFor(() => received.length >= 1, 'the webhook delivery');
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(received.length, 1, 'once per cooldown');
  assert.equal(calls, 3, 'two failed attempts, then delivered');
  assert.equal(received[0]?.alert, 'failed_logins_user');
  assert.equal(received[0]?.subject, 'erin');
  assert.equal(received[0]?.node, 'test-node');
  await audit.log.flush(5_000);
  const { readdirSync, readFileSync } = await import('node:fs');
  const security = readdirSync(audit.dir).filter((n) => n.startsWith('security-')).map((n) => readFileSync(`${audit.dir}/${n}`, 'utf8')).join('');
  assert.equal(security.match(/"event":"alert.failed_logins_user"/g)?.length, 1);
  assert.match(audit.console(), /"stream":"alert".*"alert":"failed_logins_user"/);
  assert.equal(audit.log.webhook?.target, `http://127.0.0.1:${(server.address() as AddressInfo).port}`, 'the webhook path (a secret) is never shown');
});

test('the webhook never blocks: an unreachable receiver costs the caller nothing and gives up after its attempts', async () => {
  let gaveUp: { attempts: number; error: string } | undefined;
  const hook = new AlertWebhook({ url: 'http://127.0.0.1:9/unreachable', attempts: 3, retryMs: 10, onGiveUp: (info) => (gaveUp = info) });
  const start = performance.now();
  hook.send({ alert: 'test' });
  assert.ok(performance.now() - start < 1_000, 'send returns at once');
  await waitFor(() => gaveUp !== undefined, 'giving up');
  assert.equal(gaveUp?.attempts, 3);
  await hook.close(100);
});
