import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import autocannon from 'autocannon';
import { startTestGateway, testCertificate, testEnv, httpsRequest } from '../helpers/harness.js';
import { startTestAudit, alertsConfig, tempDir } from '../helpers/audit.js';
import { waitFor } from '../helpers/wait.js';
import { chattr, chattrSkipReason } from '../helpers/immutable.js';
import { startEchoUpstream } from '../../src/demo/echo-upstream.js';
import { verifyLogDir } from '../../src/audit/offline/verify.js';
import { FileHeadStore } from '../../src/audit/writer/heads.js';

const ROUTES = `
  - name: public
    host: api.test.local
    upstream: UPSTREAM
    auth: none
`;

function accessRecords(dir: string): Record<string, unknown>[] {
  return readdirSync(dir)
    .filter((n) => n.startsWith('access') && n.endsWith('.log'))
    .flatMap((n) => readFileSync(join(dir, n), 'utf8').split('\n'))
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function verified(dir: string): Promise<void> {
  const report = await verifyLogDir(dir, { records: await new FileHeadStore(dir).load(), from: 'file' });
  assert.equal(report.ok, true, JSON.stringify(report.problems));
}

test('under load the access log holds exactly one line per request served', async (t) => {
  const audit = await startTestAudit();
  const gw = await startTestGateway(ROUTES, {}, '', { log: audit.log });
  // The gateway stops (writing its last lines) before its logger closes.
  t.after(async () => {
    await gw.close();
    await audit.close();
  });
  const amount = 4_000;
  const result = await autocannon({
    url: `https://127.0.0.1:${gw.port}/load/item?x=1`,
    servername: 'api.test.local',
    headers: { host: 'api.test.local' },
    connections: 32,
    pipelining: 1,
    amount,
    timeout: 30,
  });
  const answered = result['2xx'];
  assert.equal(answered + result.non2xx, amount, `autocannon: ${result.errors} errors, ${result.timeouts} timeouts`);
  assert.equal(await audit.log.flush(20_000), true);
  const lines = accessRecords(audit.dir).filter((r) => r.path === '/load/item');
  assert.equal(lines.length, amount, 'one access line per request');
  assert.equal(new Set(lines.map((r) => r.requestId)).size, amount, 'each request once');
  assert.equal(gw.upstream.seen.filter((s) => s.url.startsWith('/load/item')).length, answered);
  t.diagnostic(`${amount} requests at ${Math.round(result.requests.average)} req/s through TLS with the audit logger; ${Math.round(readFileSync(join(audit.dir, readdirSync(audit.dir).find((n) => n.startsWith('access-')) as string)).length / lines.length)} bytes per access line`);
  await audit.log.close();
  await verified(audit.dir);
});

test('SIGTERM: every buffered line is on disk before the process exits', async (t) => {
  const cert = await testCertificate();
  const upstream = await startEchoUpstream('sigterm-upstream');
  t.after(() => upstream.close());
  const work = tempDir('crm-gw-sigterm-');
  t.after(() => rmSync(work, { recursive: true, force: true }));
  const logDir = join(work, 'logs');
  const configFile = join(work, 'gateway.yaml');
  writeFileSync(configFile, `routes:\n${ROUTES.replace('UPSTREAM', upstream.url)}`);
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    env: {
      ...process.env,
      GATEWAY_CONFIG: configFile,
      GATEWAY_ENV: 'development',
      ...testEnv(cert),
      LOG_DIR: logDir,
      LOG_HASH_KEY: 'sigterm-test-hash-key-0123456789',
      DATA_DIR: join(work, 'data'),
      API_SECRET_KEY: '',
      DATABASE_URL: '',
      REDIS_URL: '',
      GATEWAY_WORKERS: '1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  child.stdout.resume();
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let port = 0;
  await waitFor(() => {
    const m = /"message":"gateway listening".*?"https":(\d+)/.exec(stderr);
    if (m) port = Number(m[1]);
    return port > 0 || child.exitCode !== null;
  }, 'the gateway to listen', 30_000);
  assert.ok(port > 0, stderr);
  const ca = readFileSync(cert.cert, 'utf8');
  const n = 300;
  let sent = 0;
  await Promise.all(
    Array.from({ length: 12 }, async () => {
      while (sent < n) {
        sent++;
        const res = await httpsRequest(port, ca, { path: '/term/x' });
        assert.equal(res.status, 200);
      }
    }),
  );
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([exited, new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), 30_000)))]);
  clearTimeout(timer);
  assert.equal(code, 0, stderr.slice(-2000));
  const lines = accessRecords(logDir).filter((r) => r.path === '/term/x');
  assert.equal(lines.length, n);
  const app = readdirSync(logDir).filter((f) => f.startsWith('app-')).map((f) => readFileSync(join(logDir, f), 'utf8')).join('');
  assert.match(app, /"message":"shutting down","signal":"SIGTERM"/);
  await verified(logDir);
});

/** chattr +i: even root cannot create, open for writing, or write to the folder's files. */
test('log folder not writable: the gateway keeps serving, alerts on the other channels, and recovers with every line', async (t) => {
  const hooks: Record<string, unknown>[] = [];
  const hookServer = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      hooks.push(JSON.parse(body) as Record<string, unknown>);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => hookServer.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => hookServer.close(() => r())));
  const audit = await startTestAudit({
    retryFirstMs: 50,
    retryMaxMs: 200,
    alerts: { ...alertsConfig(), webhookUrl: `http://127.0.0.1:${(hookServer.address() as AddressInfo).port}/a` },
    webhook: { retryMs: 20 },
  });
  const files = (): string[] => readdirSync(audit.dir).map((f) => join(audit.dir, f));
  const gw = await startTestGateway(ROUTES, {}, '', { log: audit.log });
  t.after(async () => {
    chattr('-i', [audit.dir, ...files()]);
    await gw.close();
    await audit.close();
  });
  for (let i = 0; i < 20; i++) assert.equal((await gw.request({ path: `/before/${i}` })).status, 200);
  await audit.log.flush(5_000);
  if (!chattr('+i', [...files(), audit.dir])) {
    t.skip(chattrSkipReason(audit.dir));
    return;
  }
  for (let i = 0; i < 50; i++) assert.equal((await gw.request({ path: `/during/${i}` })).status, 200, 'still serving');
  await waitFor(() => hooks.some((h) => h.alert === 'log_unwritable'), 'the webhook alert');
  assert.match(audit.console(), /"stream":"alert".*"alert":"log_unwritable".*EPERM/);
  assert.equal(audit.log.accepting(), true);
  assert.ok(chattr('-i', [audit.dir, ...files()]));
  for (let i = 0; i < 20; i++) assert.equal((await gw.request({ path: `/after/${i}` })).status, 200);
  assert.equal(await audit.log.flush(10_000), true);
  await waitFor(() => hooks.some((h) => h.alert === 'log_recovered'), 'the recovery notice');
  const paths = accessRecords(audit.dir).map((r) => String(r.path));
  const count = (prefix: string): number => paths.filter((p) => p.startsWith(prefix)).length;
  assert.deepEqual([count('/before/'), count('/during/'), count('/after/')], [20, 50, 20], 'every line, none twice');
  await audit.log.close();
  await verified(audit.dir);
});

test('AUDIT_FAIL_CLOSED=true: 503 AUDIT_UNAVAILABLE while the folder is not writable, served again once it is', async (t) => {
  const audit = await startTestAudit({ failClosed: true, retryFirstMs: 50, retryMaxMs: 200 });
  const files = (): string[] => readdirSync(audit.dir).map((f) => join(audit.dir, f));
  const gw = await startTestGateway(ROUTES, {}, '', { log: audit.log });
  t.after(async () => {
    chattr('-i', [audit.dir, ...files()]);
    await gw.close();
    await audit.close();
  });
  assert.equal((await gw.request({ path: '/fc/1' })).status, 200);
  await audit.log.flush(5_000);
  if (!chattr('+i', [...files(), audit.dir])) {
    t.skip(chattrSkipReason(audit.dir));
    return;
  }
  // The first request after the disk stops taking writes may pass (its line is what fails).
  await gw.request({ path: '/fc/2' });
  await waitFor(() => !audit.log.accepting(), 'fail-closed');
  const refused = await gw.request({ path: '/fc/3' });
  assert.equal(refused.status, 503);
  assert.equal(refused.json<{ error: { code: string } }>().error.code, 'AUDIT_UNAVAILABLE');
  assert.equal(gw.upstream.seen.filter((s) => s.url === '/fc/3').length, 0, 'nothing reached the upstream');
  assert.ok(chattr('-i', [audit.dir, ...files()]));
  await waitFor(async () => (await gw.request({ path: '/fc/4' })).status === 200, 'serving again');
  await audit.log.flush(5_000);
  const refusedLine = accessRecords(audit.dir).find((r) => r.path === '/fc/3');
  assert.equal(refusedLine?.code, 'AUDIT_UNAVAILABLE', 'the refusal itself is recorded once the disk is back');
});
