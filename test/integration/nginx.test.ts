import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { freePort, REPO, tempDir } from '../helpers/deployment.js';
import { httpsRequest, startTestGateway, testCertificate, type TestGateway } from '../helpers/harness.js';
import { DEFAULTS } from '../../src/config/schema.js';
import { parseDuration } from '../../src/config/units.js';

/**
 * The shipped nginx edge config (nginx/crm-gateway.conf): `nginx -t` accepts it as shipped, and
 * nginx built from it passes requests to the real gateway with SNI = Host, the client's address
 * (not one it claims) and nginx's request id. Run in a temp prefix; /etc/nginx is never used.
 */
const CONF = join(REPO, 'nginx', 'crm-gateway.conf');
const NGINX = spawnSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' }).stdout.trim();

function prefixWithCerts(gatewayCert: string, edge: { cert: string; key: string }): string {
  const prefix = tempDir('crm-gw-nginx-');
  for (const d of ['certs', 'logs', 'run']) mkdirSync(join(prefix, d));
  copyFileSync(edge.cert, join(prefix, 'certs', 'edge.crt'));
  copyFileSync(edge.key, join(prefix, 'certs', 'edge.key'));
  copyFileSync(gatewayCert, join(prefix, 'certs', 'gateway.crt'));
  return prefix;
}

function nginxTest(prefix: string, conf: string): { status: number | null; output: string } {
  const r = spawnSync(NGINX, ['-e', 'stderr', '-t', '-p', `${prefix}/`, '-c', conf], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

test('nginx is installed (the CI installs it: apt-get install -y nginx)', () => {
  assert.ok(NGINX, 'nginx not found on PATH: apt-get install -y nginx');
});

describe('nginx/crm-gateway.conf', () => {
  test('nginx -t accepts the shipped file with certificates at its relative paths', async () => {
    const cert = await testCertificate();
    const prefix = prefixWithCerts(cert.cert, cert);
    copyFileSync(CONF, join(prefix, 'crm-gateway.conf'));
    const r = nginxTest(prefix, join(prefix, 'crm-gateway.conf'));
    assert.equal(r.status, 0, r.output);
    assert.match(r.output, /test is successful/);
  });

  test('nginx -t refuses it when a certificate is missing (the test can fail)', async () => {
    const cert = await testCertificate();
    const prefix = prefixWithCerts(cert.cert, cert);
    copyFileSync(CONF, join(prefix, 'crm-gateway.conf'));
    writeFileSync(join(prefix, 'crm-gateway.conf'), readFileSync(CONF, 'utf8').replace(/ssl_certificate\s+certs\/edge\.crt;/, 'ssl_certificate certs/absent.crt;'));
    assert.notEqual(nginxTest(prefix, join(prefix, 'crm-gateway.conf')).status, 0);
  });

  test('offers only TLS 1.2 and 1.3 to clients and the gateway', () => {
    const text = readFileSync(CONF, 'utf8');
    const protocols = [...text.matchAll(/^\s*(proxy_)?ssl_protocols\s+([^;]+);/gm)].map((m) => m[2]);
    assert.deepEqual(protocols, ['TLSv1.2 TLSv1.3', 'TLSv1.2 TLSv1.3']);
  });
});

describe('nginx in front of the real gateway', () => {
  let gw: TestGateway;
  let nginx: ChildProcess;
  let edgePort: number;
  let ca: string;

  before(async () => {
    gw = await startTestGateway(
      `
  - name: crm-public
    host: api.test.local
    path: /public
    upstream: UPSTREAM
    auth: none
  - name: nocodb-public
    host: nocodb.test.local
    upstream: UPSTREAM
    auth: none
`,
      { TRUSTED_PROXIES: '127.0.0.1/32' },
    );
    const cert = await testCertificate();
    ca = readFileSync(cert.cert, 'utf8');
    const prefix = prefixWithCerts(cert.cert, cert);
    const [httpPort, httpsPort] = [await freePort(), await freePort()];
    edgePort = httpsPort;
    // Only the ports change: loopback listeners on free ports, the gateway on its test port.
    const conf = readFileSync(CONF, 'utf8')
      .replace(/^\s*listen \[::\]:\d+.*$/gm, '')
      .replace('listen 80;', `listen 127.0.0.1:${httpPort};`)
      .replace('listen 443 ssl http2;', `listen 127.0.0.1:${httpsPort} ssl http2;`)
      .replaceAll('server 127.0.0.1:8443;', `server 127.0.0.1:${gw.port};`)
      .replace(/\.example\.com(\s)/g, '.test.local$1')
      .replace('worker_processes auto;', 'worker_processes 1;');
    writeFileSync(join(prefix, 'edge.conf'), conf);
    assert.equal(nginxTest(prefix, join(prefix, 'edge.conf')).status, 0);
    nginx = spawn(NGINX, ['-e', 'stderr', '-p', `${prefix}/`, '-c', join(prefix, 'edge.conf'), '-g', 'daemon off;'], { stdio: 'ignore' });
    const deadline = Date.now() + 10_000;
    while (!(await new Promise<boolean>((r) => net.connect(edgePort, '127.0.0.1').once('connect', function (this: net.Socket) { this.destroy(); r(true); }).once('error', () => r(false))))) {
      if (Date.now() > deadline) throw new Error('nginx did not listen within 10 s');
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  after(async () => {
    nginx?.kill('SIGQUIT');
    await gw?.close();
  });

  test('a request reaches the upstream through nginx and the gateway, with the real client address and nginx’s request id', async () => {
    const res = await httpsRequest(edgePort, ca, { path: '/public/hello', host: 'api.test.local', headers: { 'x-forwarded-for': '6.6.6.6' } });
    assert.equal(res.status, 200, res.body);
    const seen = gw.upstream.seen.at(-1);
    assert.equal(seen?.url, '/public/hello');
    // nginx replaced the client's claim with the client's address; the gateway appended nginx's.
    assert.equal(seen?.headers['x-forwarded-for'], '127.0.0.1, 127.0.0.1');
    assert.ok(!String(seen?.headers['x-forwarded-for']).includes('6.6.6.6'), 'the forged address never passes');
    assert.match(String(seen?.headers['x-request-id']), /^[0-9a-f]{32}$/, "nginx's $request_id, believed from a trusted proxy");
    assert.equal(res.headers['strict-transport-security'], 'max-age=31536000; includeSubDomains', 'HSTS once, from the gateway');
  });

  test('two hosts in turn over nginx’s kept-alive connections: each host its own pool, never a 421', async () => {
    // One shared pool handed an api.test.local connection (SNI api.test.local) to a
    // nocodb.test.local request, and the gateway refused the mismatch with 421.
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) {
      const host = i % 2 === 0 ? 'api.test.local' : 'nocodb.test.local';
      const res = await httpsRequest(edgePort, ca, { path: i % 2 === 0 ? '/public/turn' : '/turn', host });
      statuses.push(res.status);
    }
    assert.deepEqual(statuses, Array(30).fill(200));
    const hosts = gw.upstream.seen.slice(-30).map((s) => s.headers.host);
    assert.equal(hosts.filter((h) => h === 'nocodb.test.local').length, 15);
  });
});

// nginx/crm-gateway.conf read against the gateway's own defaults (from the review of the
// deployment files).
const CONF_TEXT = readFileSync(CONF, 'utf8');

describe('nginx/crm-gateway.conf against the gateway defaults', () => {
  test("nginx drops idle gateway connections before the gateway does (no 502 from reusing a socket the gateway is closing)", () => {
    // Every pool that keeps connections (one per public host) sets the timeout.
    const pools = [...CONF_TEXT.matchAll(/upstream (crm_gateway_\w+) \{([^}]*)\}/g)].filter((m) => /keepalive\s+\d+;/.test(m[2] ?? ''));
    assert.ok(pools.length >= 3, 'a keep-alive pool per public host');
    const gatewayIdleMs = parseDuration(DEFAULTS.keepAliveTimeout) ?? 0;
    for (const [, name, body] of pools) {
      const m = /^\s*keepalive_timeout\s+(\d+)s;/m.exec(body ?? '');
      assert.ok(m, `keepalive_timeout set in ${name} (nginx defaults to 60 s)`);
      assert.ok(Number(m[1]) * 1000 < gatewayIdleMs, `${name} keeps idle upstream sockets ${m[1]} s, the gateway closes them after ${gatewayIdleMs} ms`);
    }
  });
});
