import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import net from 'node:net';
import { networkInterfaces } from 'node:os';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runLive } from '../../src/doctor/live/run.js';
import { reachTarget } from '../../src/doctor/live/target.js';
import { buildContext } from '../../src/doctor/context.js';
import { redisPasswordCheck } from '../../src/doctor/checks/stores.js';
import type { CheckResult } from '../../src/doctor/types.js';
import { testCertificate } from '../helpers/harness.js';
import { freePort, runCli, tempDir } from '../helpers/deployment.js';

/**
 * Issue 18, item 12: `doctor --live` reported `PASS live-exposed-ports closed from here` for
 * four open ports because the host did not resolve. A probe that reached nothing never passes;
 * the report leads with the real cause, names the configured ports in its fixes, and says when
 * it probes from the gateway's own host. Real listeners, and a name that cannot resolve.
 */

const ROUTES = 'routes:\n  - name: api\n    host: api.test.local\n    upstream: http://127.0.0.1:9\n    auth: jwt\n    roles: [api]\n';
const show = (rs: CheckResult[]): string => rs.map((r) => `${r.status} ${r.id} ${r.message}${r.fix ? ` | fix: ${r.fix}` : ''}`).join('\n');
const byId = (rs: CheckResult[], id: string): CheckResult[] => rs.filter((r) => r.id === id);

let server: https.Server;
let tlsPort: number;
let open: net.Server;
let openPort: number;
let closedPort: number;

before(async () => {
  const cert = await testCertificate();
  server = https.createServer({ cert: readFileSync(cert.cert), key: readFileSync(cert.key) }, (_req, res) => res.writeHead(401).end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  tlsPort = (server.address() as net.AddressInfo).port;
  open = net.createServer((s) => s.destroy());
  await new Promise<void>((r) => open.listen(0, '127.0.0.1', () => r()));
  openPort = (open.address() as net.AddressInfo).port;
  closedPort = await freePort();
});

after(() => {
  server?.close();
  open?.close();
});

describe('a name that does not resolve', () => {
  test('FAIL led by ENOTFOUND, every other check UNKNOWN, nothing PASSes', async () => {
    const rs = await runLive({ url: 'https://gateway.invalid', routes: [], production: true, timeoutMs: 2_000, ports: [openPort, closedPort] });
    const [first] = rs;
    assert.equal(first?.id, 'live-target', show(rs));
    assert.equal(first?.status, 'FAIL');
    assert.match(first?.message ?? '', /^ENOTFOUND: gateway\.invalid does not resolve/);
    assert.deepEqual(rs.filter((r) => r.status === 'PASS'), [], show(rs));
    const ports = byId(rs, 'live-exposed-ports');
    assert.deepEqual(ports.map((p) => p.status), ['UNKNOWN'], show(rs));
    assert.match(ports[0]?.message ?? '', /not probed: gateway\.invalid does not resolve \(ENOTFOUND\)/);
  });

  test('the command exits 1 and prints the cause first', async () => {
    const r = await runCli(['doctor', '--live', 'https://gateway.invalid', '--ports', '5432,6379', '--timeout', '2s'], { cwd: tempDir() });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const lines = r.stdout.split('\n');
    assert.match(lines.find((l) => /live-target/.test(l)) ?? '', /^FAIL {2}live-target .*ENOTFOUND: gateway\.invalid does not resolve/);
    assert.doesNotMatch(r.stdout, /^PASS/m);
    assert.match(r.stdout, /UNKNOWN {2}live-exposed-ports/);
  });
});

describe('a host that refuses the HTTPS port', () => {
  test('FAIL led by ECONNREFUSED; TLS checks fail with it, not with a vague message', async () => {
    const rs = await runLive({ url: `https://127.0.0.1:${closedPort}`, routes: [], production: true, timeoutMs: 2_000, ports: [openPort] });
    const [first] = rs;
    assert.equal(first?.status, 'FAIL', show(rs));
    assert.match(first?.message ?? '', new RegExp(`^ECONNREFUSED: nothing accepts connections at 127\\.0\\.0\\.1:${closedPort}`));
    assert.match(byId(rs, 'live-tls-versions')[0]?.message ?? '', /^ECONNREFUSED: no TLS 1\.2 or 1\.3 handshake/, show(rs));
    assert.match(byId(rs, 'live-certificate')[0]?.message ?? '', /^ECONNREFUSED: no TLS handshake/);
    // The host answered (it refused), so the open backend port is a real finding.
    assert.deepEqual(byId(rs, 'live-exposed-ports').map((p) => p.status), ['FAIL']);
  });
});

describe('probing from the gateway’s own host', () => {
  test('loopback: said on the first line, and the default port scan is not trusted from here', async () => {
    const rs = await runLive({ url: `https://127.0.0.1:${tlsPort}`, routes: [], production: false, timeoutMs: 2_000 });
    const [first] = rs;
    assert.equal(first?.status, 'WARN', show(rs));
    assert.match(first?.message ?? '', /127\.0\.0\.1 is this machine, so this probes from the gateway's own host/);
    const [ports] = byId(rs, 'live-exposed-ports');
    assert.equal(ports?.status, 'WARN');
    assert.match(ports?.message ?? '', /probing from the gateway's own host/);
  });

  test('an address of one of this machine’s interfaces counts as its own host too', async (t) => {
    const own = Object.values(networkInterfaces())
      .flat()
      .find((i) => i && !i.internal && i.family === 'IPv4');
    if (!own) {
      t.skip('no non-loopback IPv4 interface here');
      return;
    }
    const reach = await reachTarget(own.address, closedPort, 1_000);
    assert.equal(reach.local, true);
  });

  test('an explicit --ports list is probed, with the closed ones named as refused', async () => {
    const rs = await runLive({ url: `https://127.0.0.1:${tlsPort}`, routes: [], production: false, timeoutMs: 2_000, ports: [closedPort] });
    const [ports] = byId(rs, 'live-exposed-ports');
    assert.equal(ports?.status, 'PASS', show(rs));
    assert.match(ports?.message ?? '', new RegExp(`closed from here: ${closedPort} \\(refused\\) \\(probed from the gateway's own host, 127\\.0\\.0\\.1\\)`));
  });
});

describe('fix lines name the configured ports', () => {
  test('runLive: the gateway ports given are the ones in the fixes', async () => {
    const rs = await runLive({
      url: `https://127.0.0.1:${tlsPort}`,
      httpUrl: `http://127.0.0.1:${closedPort}`,
      routes: [],
      production: true,
      timeoutMs: 2_000,
      ports: [openPort],
      gatewayPorts: { https: 9443, http: 9880 },
    });
    assert.match(byId(rs, 'live-http-redirect')[0]?.fix ?? '', /HTTP port \(9880\) as 80/, show(rs));
    assert.match(byId(rs, 'live-exposed-ports')[0]?.fix ?? '', new RegExp(`gateway's ports \\(9443, 9880\\).*close port ${openPort}`));
  });

  test('the command reads them from the deployment’s config (HTTP_PORT, HTTPS_PORT)', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'gateway.yaml'), ROUTES);
    const r = await runCli(['doctor', '--live', `https://127.0.0.1:${tlsPort}`, '--http-url', `http://127.0.0.1:${closedPort}`, '--config', 'gateway.yaml', '--ports', String(openPort), '--timeout', '2s'], {
      cwd: dir,
      env: { GATEWAY_DOMAIN: 'test.local', API_SECRET_KEY: 'f0'.repeat(32), HTTP_PORT: '9880', HTTPS_PORT: '9443' },
    });
    assert.match(r.stdout, /fix: publish the gateway’s HTTP port \(9880\) as 80/, r.stdout + r.stderr);
    assert.match(r.stdout, /fix: publish only the gateway's ports \(9443, 9880\)/);
  });
});

describe('doctor: Redis without a password', () => {
  test('is a WARN in development and a FAIL in production (a real Redis that answers anonymously)', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'gateway.yaml'), ROUTES);
    const ctx = (production: boolean): ReturnType<typeof buildContext> =>
      buildContext({ cwd: dir, env: { REDIS_URL: 'redis://127.0.0.1:6379', API_SECRET_KEY: 'f0'.repeat(32), GATEWAY_DOMAIN: 'test.local' }, configFile: 'gateway.yaml', composeFiles: [], production });
    const dev = await redisPasswordCheck(ctx(false));
    assert.equal(dev[0]?.status, 'WARN', show(dev));
    assert.match(dev[0]?.message ?? '', /answers without a password/);
    const prod = await redisPasswordCheck(ctx(true));
    assert.equal(prod[0]?.status, 'FAIL', show(prod));
  });
});
