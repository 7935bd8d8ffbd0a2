// Issue 18, item 4: `promtool check metrics` failed on /metrics (prom-client's `*_active_*_total`
// gauges), log line counts were gauges without `_total`, two metrics counted rate-limit refusals,
// the request-duration histogram mixed 1 ms refusals with upstream latency, and certificate
// expiry, store up/down and build info were missing. A real gateway that has served traffic,
// scraped on its admin port and checked by Prometheus's own promtool (Debian's `prometheus`).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import type { Redis } from 'ioredis';
import { startTestGateway, testCertificate, type TestGateway } from '../helpers/harness.js';
import { startTestAudit, type TestAudit } from '../helpers/audit.js';
import { PG_ADMIN_URL } from '../helpers/auth-gateway.js';
import { RedisServerProcess, gatewayRedis } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';
import { parseConfig } from '../../src/config/load.js';
import { createPostgres } from '../../src/stores/postgres.js';
import { createGatewayMetrics } from '../../src/metrics/gateway.js';

const ROUTES = `
  - name: public
    host: api.test.local
    path: /public
    upstream: UPSTREAM
    auth: none
  - name: limited
    host: api.test.local
    path: /limited
    upstream: UPSTREAM
    auth: none
    rateLimit: { window: 1m, max: 2 }
  - name: api
    host: api.test.local
    path: /api
    upstream: UPSTREAM
    auth: jwt
    roles: [api]
  - name: down
    host: api.test.local
    path: /down
    upstream: http://127.0.0.1:1
    auth: none
`;
const PACKAGE_VERSION = (JSON.parse(readFileSync(join(process.cwd(), 'package.json'), 'utf8')) as { version: string }).version;

let audit: TestAudit;
let redisServer: RedisServerProcess;
let redis: Redis;
let postgres: pg.Pool;
let gw: TestGateway;

before(async () => {
  // One gateway's metrics, as main.ts builds them: the audit logger counts in the gateway's registry.
  const metrics = createGatewayMetrics();
  audit = await startTestAudit({ metrics: metrics.log });
  // A Redis of this test's own: it is killed below to see the gauge fall.
  redisServer = await RedisServerProcess.start();
  redis = await gatewayRedis(redisServer.url, audit.log);
  const pgCfg = parseConfig('routes:\n  - { name: x, host: x.test, upstream: "http://127.0.0.1:9", auth: none }\n', { DATABASE_URL: PG_ADMIN_URL });
  postgres = (await createPostgres(pgCfg, audit.log)) as pg.Pool;
  await postgres.query('SELECT 1');
  gw = await startTestGateway(ROUTES, { REDIS_URL: redisServer.url }, '', { redis, postgres, log: audit.log, metrics });
});

after(async () => {
  await gw?.close();
  redis?.disconnect();
  await postgres?.end();
  await redisServer?.stop();
  await audit?.close();
});

function scrape(): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port: gw.running.ports.admin, path: '/metrics' }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString('utf8')));
        res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`/metrics: ${res.statusCode}`))));
      })
      .on('error', reject);
  });
}

/** The value of one sample (`name{labels}` exactly as exposed), or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

function families(text: string): Map<string, string> {
  return new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1] as string, m[2] as string]));
}

async function serveTraffic(): Promise<{ limited: number }> {
  for (let i = 0; i < 5; i++) assert.equal((await gw.request({ host: 'api.test.local', path: `/public/${i}` })).status, 200);
  let limited = 0;
  for (let i = 0; i < 6; i++) if ((await gw.request({ host: 'api.test.local', path: '/limited/x' })).status === 429) limited++;
  assert.equal(limited, 4, 'max 2 per minute: the last four are refused');
  assert.equal((await gw.request({ host: 'api.test.local', path: '/api/x' })).status, 401);
  assert.equal((await gw.request({ host: 'api.test.local', path: '/api/x', headers: { authorization: 'Bearer not.a.jwt' } })).status, 401);
  assert.equal((await gw.request({ host: 'api.test.local', path: '/down/x' })).status, 502);
  assert.equal((await gw.request({ host: 'nowhere.test.local', path: '/' })).status >= 400, true);
  await audit.log.flush(5_000);
  return { limited };
}

test('promtool check metrics passes on the /metrics of a gateway that has served traffic', async () => {
  const { limited } = await serveTraffic();
  const text = await scrape();
  const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  assert.equal(check.error, undefined, 'promtool runs (Debian package prometheus)');
  assert.equal(`${check.stdout}${check.stderr}`, '', 'promtool has no complaint');
  assert.equal(check.status, 0);

  const types = families(text);
  // Counters end in _total, gauges do not (the rule promtool applies).
  for (const [name, type] of types) {
    if (type === 'counter') assert.match(name, /_total$/, `counter ${name}`);
    else assert.doesNotMatch(name, /_total$/, `${type} ${name}`);
  }
  // Renamed or removed (docs/audit.md "Metrics", breaking changes).
  for (const gone of ['crmgw_rate_limit_rejections_total', 'crmgw_log_lines_written', 'crmgw_log_lines_dropped', 'crmgw_nodejs_active_handles_total', 'crmgw_nodejs_active_requests_total', 'crmgw_nodejs_active_resources_total']) {
    assert.equal(types.has(gone), false, `${gone} is gone`);
  }
  assert.equal(types.get('crmgw_log_lines_written_total'), 'counter');
  assert.equal(types.get('crmgw_log_lines_dropped_total'), 'counter');
  assert.ok((sample(text, 'crmgw_log_lines_written_total{stream="access"}') ?? 0) > 0);
  assert.equal(types.get('crmgw_nodejs_active_handles'), 'gauge', 'the per-type gauges stay; their sum is the old total');

  // One metric counts rate-limit refusals, as they happen, per limit.
  assert.equal(sample(text, 'crmgw_ratelimit_rejected_total{limit="limited"}'), limited);
  assert.equal(sample(text, 'crmgw_denials_total{reason="RATE_LIMITED"}'), limited);

  // The duration histogram separates what was forwarded from the gateway's own refusals.
  const count = (route: string, outcome: string): number | undefined => sample(text, `crmgw_http_request_duration_seconds_count{route="${route}",outcome="${outcome}"}`);
  assert.equal(count('public', 'forwarded'), 5);
  assert.equal(count('limited', 'forwarded'), 2);
  assert.equal(count('limited', 'denied'), limited);
  assert.equal(count('api', 'denied'), 2);
  assert.equal(count('down', 'failed'), 1);
  const outcomes = new Set([...text.matchAll(/^crmgw_http_request_duration_seconds_count\{[^}]*outcome="([^"]*)"/gm)].map((m) => m[1]));
  for (const o of outcomes) assert.ok(['forwarded', 'answered', 'denied', 'failed', 'aborted', 'none'].includes(o as string), `outcome ${o}`);

  assert.equal(sample(text, `crmgw_build_info{version="${PACKAGE_VERSION}",node="${process.version}"}`), 1);
  assert.equal(sample(text, 'crmgw_store_up{store="redis"}'), 1);
  assert.equal(sample(text, 'crmgw_store_up{store="postgres"}'), 1);

  const served = new X509Certificate(readFileSync((await testCertificate()).cert));
  assert.equal(sample(text, 'crmgw_tls_certificate_expiry_timestamp_seconds'), new Date(served.validTo).getTime() / 1000);
});

test('store up/down follows the store: a killed Redis reads 0, a restarted one 1', async () => {
  await redisServer.stop();
  await waitFor(async () => sample(await scrape(), 'crmgw_store_up{store="redis"}') === 0, 'crmgw_store_up{store="redis"} 0 after kill -9');
  await redisServer.start();
  await waitFor(async () => sample(await scrape(), 'crmgw_store_up{store="redis"}') === 1, 'crmgw_store_up{store="redis"} 1 once back', 15_000);
});

test('certificate expiry follows a hot reload of the served certificate', async () => {
  const cert = await testCertificate();
  const dir = mkdtempSync(join(tmpdir(), 'crm-gw-metrics-cert-'));
  try {
    const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '7', '-subj', '/CN=api.test.local', '-addext', 'subjectAltName=DNS:*.test.local', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem')], { encoding: 'utf8' });
    assert.equal(made.status, 0, made.stderr);
    const next = new X509Certificate(readFileSync(join(dir, 'c.pem')));
    const expected = new Date(next.validTo).getTime() / 1000;
    // The files the gateway serves (this test process's own copy), replaced as a renewal tool does.
    writeFileSync(cert.key, readFileSync(join(dir, 'k.pem')));
    writeFileSync(cert.cert, readFileSync(join(dir, 'c.pem')));
    await waitFor(async () => sample(await scrape(), 'crmgw_tls_certificate_expiry_timestamp_seconds') === expected, 'the expiry of the reloaded certificate');
    assert.ok(expected - Date.now() / 1000 < 8 * 86_400, 'the 7-day certificate, not the 90-day one');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
