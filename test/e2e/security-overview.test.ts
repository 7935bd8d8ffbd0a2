import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http, { type IncomingMessage } from 'node:http';
import { launchBrowser, type TestBrowser } from '../helpers/browser.js';
import { startTestGateway, type TestGateway } from '../helpers/harness.js';
import { startTestAudit, type TestAudit } from '../helpers/audit.js';

const ROUTES = `
  - name: internal
    host: api.test.local
    path: /internal
    upstream: UPSTREAM
    auth: none
    ipAllowlist: [10.0.0.0/8]
  - name: public
    host: api.test.local
    upstream: UPSTREAM
    auth: none
    rateLimit: { window: 1m, max: 1 }
`;

/** The admin check the tests hand the gateway: a bearer key per principal (a real function, no mock). */
const PRINCIPALS: Record<string, { subject: string; roles: string[] }> = {
  'admin-key-0123456789': { subject: 'root', roles: ['admin'] },
  'viewer-key-0123456789': { subject: 'val', roles: ['viewer'] },
};
async function adminAuth(req: IncomingMessage): Promise<{ subject: string; roles: readonly string[] } | undefined> {
  const m = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
  return m ? PRINCIPALS[m[1] as string] : undefined;
}

let browser: TestBrowser;
let audit: TestAudit;
let gw: TestGateway;
let adminUrl: string;

before(async () => {
  audit = await startTestAudit();
  gw = await startTestGateway(ROUTES, {}, '', { log: audit.log, adminAuth, securityOverview: audit.log.overview });
  adminUrl = `http://127.0.0.1:${gw.running.ports.admin}`;
  // Real denials through the gateway…
  for (let i = 0; i < 3; i++) await gw.request({ path: '/internal/x' });
  for (let i = 0; i < 3; i++) await gw.request({ path: '/public/y' });
  // …and events as the auth service and the alert rules write them (other addresses).
  for (let i = 0; i < 4; i++) audit.log.security('auth.login_failed', { user: 'mallory', clientIp: '203.0.113.66', requestId: `lf-${i}` });
  for (let i = 0; i < 5; i++) audit.log.security('request.denied', { code: 'AUTH_FAILED', clientIp: '203.0.113.66', requestId: `lf-${i}` });
  audit.log.raise('suspicious_rejected_paths', '198.51.100.9', '20 rejected paths from 198.51.100.9 within 1m', { clientIp: '198.51.100.9' });
  audit.log.raise('upstream_down', 'crm-api', 'upstream of route crm-api failed 5 times within 1m', { route: 'crm-api' });
  // A value an attacker controls, shown on the page: it must stay text.
  audit.log.raise('new_ip_for_user', '<img src=x onerror=alert(1)>', 'user <script>alert(1)</script> seen from a new address', {});
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await gw?.close();
  await audit?.close();
});

function get(path: string, headers: Record<string, string> = {}, port = gw.running.ports.admin): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, headers }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString('utf8')));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      })
      .on('error', reject);
  });
}

test('the overview is for the admin role only: 401 without credentials, 403 for another role or without admin auth wired', async () => {
  assert.equal((await get('/security')).status, 401);
  assert.equal((await get('/security', { authorization: 'Bearer wrong' })).status, 401);
  assert.equal((await get('/security', { authorization: 'Bearer viewer-key-0123456789' })).status, 403);
  assert.equal((await get('/security.json', { authorization: 'Bearer viewer-key-0123456789' })).status, 403);
  const bare = await startTestGateway(ROUTES, {}, '', { log: audit.log, securityOverview: audit.log.overview });
  try {
    assert.equal((await get('/security', { authorization: 'Bearer admin-key-0123456789' }, bare.running.ports.admin)).status, 403, 'fail closed without adminAuth');
  } finally {
    await bare.close();
  }
  await audit.log.flush(5_000);
  const { readdirSync, readFileSync } = await import('node:fs');
  const security = readdirSync(audit.dir).filter((n) => n.startsWith('security-')).map((n) => readFileSync(`${audit.dir}/${n}`, 'utf8')).join('');
  assert.match(security, /"event":"admin.overview_denied","reason":"not an admin","user":"val"/);
});

test('headless Chromium draws the last 24 hours: denials by reason, failed logins over time, top denied IPs, recent alerts; no external asset', async () => {
  const context = await browser.newContext({ extraHTTPHeaders: { authorization: 'Bearer admin-key-0123456789' } });
  try {
    const page = await context.newPage();
    const requested: string[] = [];
    const problems: string[] = [];
    page.on('request', (r) => requested.push(r.url()));
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(e.message));
    page.on('dialog', (d) => {
      problems.push(`dialog: ${d.message()}`);
      void d.dismiss();
    });
    const res = await page.goto(`${adminUrl}/security`);
    assert.equal(res?.status(), 200);
    assert.match(String(res?.headers()['content-security-policy']), /default-src 'none'/);
    assert.equal(await page.title(), 'Security overview · crm-gateway');

    const denials = await page.$$eval('svg[data-chart="denials"] g.row', (rows) => rows.map((r) => [r.getAttribute('data-label'), Number(r.getAttribute('data-count'))]));
    assert.deepEqual(denials, [
      ['AUTH_FAILED', 5],
      ['IP_DENIED', 3],
      // Two 429s, one event: refusals are sampled per bucket (the next event carries the count).
      ['RATE_LIMITED', 1],
    ]);
    const columns = await page.$$eval('svg[data-chart="failed-logins"] g.col', (cols) => cols.map((c) => Number(c.getAttribute('data-count'))));
    assert.equal(columns.length, 24);
    // 5 failed logins (4 events and 5 denials: 5 distinct requests), this hour (or the last, at an hour's edge).
    assert.equal((columns[22] ?? 0) + (columns[23] ?? 0), 5);
    assert.equal(columns.slice(0, 22).reduce((a, b) => a + b, 0), 0);
    const ips = await page.$$eval('svg[data-chart="denied-ips"] g.row', (rows) => rows.map((r) => r.getAttribute('data-label')));
    // 203.0.113.66: 5 denials; 127.0.0.1: 3 IP denials and 1 (sampled) rate-limit event.
    assert.deepEqual(ips, ['203.0.113.66', '127.0.0.1']);
    const alerts = await page.$$eval('table[data-list="alerts"] tr[data-alert]', (rows) => rows.map((r) => r.getAttribute('data-alert')));
    assert.deepEqual(alerts, ['new_ip_for_user', 'upstream_down', 'suspicious_rejected_paths']);
    assert.equal(await page.$$eval('table[data-list="alerts"] img, table[data-list="alerts"] script', (els) => els.length), 0, 'attacker text stays text');

    // The charts are drawn: the bars have a size on screen.
    const bar = await page.$('svg[data-chart="denials"] rect.bar');
    const box = await bar?.boundingBox();
    assert.ok(box && box.width > 10 && box.height > 5, JSON.stringify(box));
    const style = await page.$eval('svg[data-chart="denials"] rect.bar', (el) => (globalThis as unknown as { getComputedStyle(e: unknown): { fill: string } }).getComputedStyle(el).fill);
    assert.equal(style, 'rgb(192, 57, 43)', 'the hashed inline style applied under the CSP');

    assert.deepEqual([...new Set(requested.map((u) => new URL(u).origin))], [adminUrl], `only the admin listener was asked: ${requested.join(', ')}`);
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test('/security.json gives the same data to tools', async () => {
  const res = await get('/security.json', { authorization: 'Bearer admin-key-0123456789' });
  assert.equal(res.status, 200);
  const data = JSON.parse(res.body) as { totalDenials: number; recentAlerts: unknown[] };
  assert.equal(data.totalDenials, 9);
  assert.equal(data.recentAlerts.length, 3);
});
