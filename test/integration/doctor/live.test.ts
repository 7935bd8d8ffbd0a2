import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig } from '../../../src/config/load.js';
import { runLive } from '../../../src/doctor/live/run.js';
import type { CheckResult } from '../../../src/doctor/types.js';
import { startTestGateway, testCertificate, type TestGateway } from '../../helpers/harness.js';
import { freePort, runCli, tempDir } from '../../helpers/deployment.js';

const ROUTES = `
  - name: whatsapp-webhook
    host: api.test.local
    path: /webhook/whatsapp
    upstream: UPSTREAM
    auth: whatsapp
  - name: crm-public
    host: api.test.local
    path: /public
    upstream: UPSTREAM
    auth: none
  - name: crm-api
    host: api.test.local
    upstream: UPSTREAM
    auth: jwt
    roles: [api]
  - name: nocodb
    host: nocodb.test.local
    upstream: UPSTREAM
    auth: session
    roles: [staff]
`;

const SECRETS = {
  API_SECRET_KEY: 'f0'.repeat(32),
  WHATSAPP_APP_SECRET: 'a7'.repeat(16),
  WHATSAPP_VERIFY_TOKEN: 'b8'.repeat(16),
};

const byId = (results: CheckResult[], id: string): CheckResult[] => results.filter((r) => r.id === id);
const show = (results: CheckResult[]): string => results.map((r) => `${r.status} ${r.id} ${r.message}`).join('\n');

describe('doctor --live against the real gateway', () => {
  let gw: TestGateway;
  let results: CheckResult[];
  let closedPort: number;
  let listener: net.Server;
  let openPort: number;

  before(async () => {
    gw = await startTestGateway(ROUTES, SECRETS);
    closedPort = await freePort();
    listener = net.createServer((s) => s.destroy());
    await new Promise<void>((r) => listener.listen(0, '127.0.0.1', () => r()));
    openPort = (listener.address() as net.AddressInfo).port;
    results = await runLive({
      url: `https://127.0.0.1:${gw.port}`,
      httpUrl: `http://127.0.0.1:${gw.running.ports.http}`,
      routes: gw.config.routes,
      production: true,
      ca: gw.ca,
      timeoutMs: 5_000,
      ports: [closedPort],
    });
  });
  after(async () => {
    await gw?.close();
    listener?.close();
  });

  test('no check fails', () => {
    assert.deepEqual(results.filter((r) => r.status === 'FAIL'), [], show(results));
  });

  test('TLS 1.0 and 1.1 refused, 1.2 and 1.3 offered, no CBC suite', () => {
    const [r] = byId(results, 'live-tls-versions');
    assert.equal(r?.status, 'PASS', show(results));
    assert.match(r?.message ?? '', /offers TLSv1\.2, TLSv1\.3; refuses TLS 1\.0 and 1\.1 and CBC suites/);
  });

  test('the certificate chains to the given CA and names every route host', () => {
    assert.equal(byId(results, 'live-certificate')[0]?.status, 'PASS', show(results));
  });

  test('each authenticated route refuses anonymous requests and forged tokens; public routes are named', () => {
    const r = byId(results, 'live-route-auth');
    assert.ok(r.some((x) => x.status === 'PASS' && /2 authenticated routes refuse anonymous requests and forged tokens/.test(x.message)), show(results));
    assert.ok(r.some((x) => /public by design \(auth: none\): crm-public/.test(x.message)));
    assert.deepEqual(gw.upstream.seen.map((s) => `${s.method} ${s.url}`), [], 'no probe reached the upstream');
  });

  test('the webhook refuses unsigned and wrongly signed POSTs and a wrong verify token', () => {
    const [r] = byId(results, 'live-webhook');
    assert.equal(r?.status, 'PASS', show(results));
  });

  test('HSTS on every HTTPS answer, and plain HTTP redirects to HTTPS on the same host', () => {
    assert.equal(byId(results, 'live-hsts')[0]?.status, 'PASS', show(results));
    const [redirect] = byId(results, 'live-http-redirect');
    assert.equal(redirect?.status, 'PASS', show(results));
    assert.match(redirect?.message ?? '', /308 to https:\/\/api\.test\.local:\d+\/doctor-probe/);
  });

  test('closed ports pass; an open one is a FAIL naming it', async () => {
    assert.equal(byId(results, 'live-exposed-ports')[0]?.status, 'PASS');
    const open = await runLive({ url: `https://127.0.0.1:${gw.port}`, routes: [], production: true, ca: gw.ca, timeoutMs: 2_000, ports: [openPort, closedPort], httpUrl: `http://127.0.0.1:${gw.running.ports.http}` });
    const ports = byId(open, 'live-exposed-ports');
    assert.deepEqual(ports.map((p) => p.status), ['FAIL']);
    assert.match(ports[0]?.message ?? '', new RegExp(`port ${openPort} accepts connections`));
  });

  test('without --ca, a self-signed gateway is a FAIL in production', async () => {
    const r = await runLive({ url: `https://127.0.0.1:${gw.port}`, routes: gw.config.routes, production: true, timeoutMs: 2_000, ports: [closedPort], httpUrl: `http://127.0.0.1:${gw.running.ports.http}` });
    const [cert] = byId(r, 'live-certificate');
    assert.equal(cert?.status, 'FAIL');
    assert.match(cert?.message ?? '', /not trusted/);
  });

  test('the command: doctor --live exits 0 here, with the deployment config read from the folder', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'gateway.yaml'), `routes:\n${ROUTES.replaceAll('UPSTREAM', 'http://127.0.0.1:9')}`);
    writeFileSync(join(dir, 'ca.pem'), gw.ca);
    const r = await runCli(['doctor', '--live', `https://127.0.0.1:${gw.port}`, '--http-url', `http://127.0.0.1:${gw.running.ports.http}`, '--ca', 'ca.pem', '--config', 'gateway.yaml', '--ports', String(closedPort), '--timeout', '5s'], {
      cwd: dir,
      env: { GATEWAY_DOMAIN: 'test.local', ...SECRETS },
    });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /0 FAIL/);
  });
});

describe('doctor --live against a crafted bad server', () => {
  let server: https.Server;
  let plain: http.Server;
  let port: number;
  let httpPort: number;
  let results: CheckResult[];

  before(async () => {
    const cert = await testCertificate();
    // Everything the checklist forbids: TLS 1.0, CBC suites, no HSTS, answers anonymous
    // requests, accepts unsigned webhooks and echoes any verification challenge, no redirect.
    server = https.createServer({ cert: readFileSync(cert.cert), key: readFileSync(cert.key), minVersion: 'TLSv1', ciphers: 'DEFAULT:@SECLEVEL=0' }, (req, res) => {
      const challenge = new URL(req.url ?? '/', 'https://x').searchParams.get('hub.challenge');
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(challenge ?? 'welcome');
    });
    server.on('tlsClientError', () => undefined);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    port = (server.address() as net.AddressInfo).port;
    plain = http.createServer((_req, res) => res.end('plain http content'));
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', () => r()));
    httpPort = (plain.address() as net.AddressInfo).port;
    const routes = parseConfig(`routes:\n${ROUTES.replaceAll('UPSTREAM', 'http://127.0.0.1:9')}`, {}).routes;
    results = await runLive({ url: `https://127.0.0.1:${port}`, httpUrl: `http://127.0.0.1:${httpPort}`, routes, production: true, ca: readFileSync(cert.cert, 'utf8'), timeoutMs: 5_000, ports: [] });
  });
  after(() => {
    server?.close();
    plain?.close();
  });

  test('old TLS versions accepted: FAIL; CBC suite: WARN', () => {
    const r = byId(results, 'live-tls-versions');
    assert.ok(r.some((x) => x.status === 'FAIL' && /accepts TLSv1 and TLSv1\.1/.test(x.message)), show(results));
    assert.ok(r.some((x) => x.status === 'WARN' && /non-AEAD suite/.test(x.message)), show(results));
  });

  test('routes answering anonymous requests and forged tokens: FAIL for each', () => {
    const r = byId(results, 'live-route-auth').filter((x) => x.status === 'FAIL');
    assert.ok(r.some((x) => /crm-api .*anonymous request answered 200/.test(x.message)), show(results));
    assert.ok(r.some((x) => /crm-api .*token signed with "secret" answered 200/.test(x.message)));
    assert.ok(r.some((x) => /crm-api .*alg:none token answered 200/.test(x.message)));
    assert.ok(r.some((x) => /nocodb .*anonymous request answered 200/.test(x.message)));
  });

  test('a webhook accepting unsigned POSTs and echoing the challenge: FAIL', () => {
    const r = byId(results, 'live-webhook').filter((x) => x.status === 'FAIL');
    assert.ok(r.some((x) => /unsigned POST answered 200/.test(x.message)), show(results));
    assert.ok(r.some((x) => /wrong signature answered 200/.test(x.message)));
    assert.ok(r.some((x) => /wrong token echoed the challenge/.test(x.message)));
  });

  test('no HSTS: FAIL; plain HTTP served instead of redirected: FAIL', () => {
    assert.equal(byId(results, 'live-hsts')[0]?.status, 'FAIL', show(results));
    const [redirect] = byId(results, 'live-http-redirect');
    assert.equal(redirect?.status, 'FAIL');
    assert.match(redirect?.message ?? '', /answers 200 instead of redirecting/);
  });

  test('the command exits 1', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'gateway.yaml'), `routes:\n${ROUTES.replaceAll('UPSTREAM', 'http://127.0.0.1:9')}`);
    const r = await runCli(['doctor', '--live', `https://127.0.0.1:${port}`, '--http-url', `http://127.0.0.1:${httpPort}`, '--config', 'gateway.yaml', '--ports', '1', '--timeout', '3s'], { cwd: dir, env: { GATEWAY_DOMAIN: 'test.local' } });
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stdout, /FAIL {2}live-tls-versions/);
  });
});
