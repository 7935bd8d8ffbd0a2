import { before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import WebSocket, { WebSocketServer } from 'ws';
import { startTestGateway, testCertificate, testConfig, type TestGateway } from '../helpers/harness.js';
import { makeClientCa, type ClientCert } from '../helpers/client-certs.js';
import { tempDir } from '../helpers/deployment.js';
import { ConfigError } from '../../src/config/load.js';
import { randomBytes } from 'node:crypto';
import { deleteKeys, gatewayRedis, runId, SHARED_REDIS_URL, waitFor } from '../helpers/redis.js';
import { createMemoryLogger } from '../../src/log/logger.js';
import { signBody } from '../../src/webhook/signature.js';

const serverCa = makeClientCa('CRM Internal CA');
const otherCa = makeClientCa('Unrelated CA');
const clientCa = makeClientCa('CRM Client CA');
let crmCert: ClientCert;
let gatewayClient: ClientCert;

before(() => {
  // The CRM API's certificate names its internal host and 127.0.0.1, not the public api host.
  crmCert = serverCa.issue('crm.internal', { usage: 'serverAuth', altNames: ['crm.internal', '127.0.0.1'] });
  gatewayClient = clientCa.issue('crm-gateway', { usage: 'clientAuth' });
});

interface TlsUpstream {
  port: number;
  /** Requests that reached the handler. */
  requests: { host: string | undefined; servername: string | false | null | undefined; clientCn: string | undefined }[];
  /** TLS connections completed (keep-alive reuse shows as fewer connections than requests). */
  connections: number;
  server: https.Server;
}

/** A real Node https server as the upstream; `requireClient`: a client certificate from clientCa is required. */
async function tlsUpstream(t: TestContext, requireClient = false): Promise<TlsUpstream> {
  const u: TlsUpstream = { port: 0, requests: [], connections: 0, server: undefined as unknown as https.Server };
  u.server = https.createServer(
    { cert: crmCert.cert, key: crmCert.key, ...(requireClient ? { requestCert: true, rejectUnauthorized: true, ca: readFileSync(clientCa.caFile) } : {}) },
    (req, res) => {
      const socket = req.socket as TLSSocket;
      const peer = requireClient ? socket.getPeerX509Certificate() : undefined;
      u.requests.push({ host: req.headers.host, servername: socket.servername, clientCn: peer?.subject.replace(/^CN=/, '') });
      res.setHeader('content-type', 'text/plain');
      res.end(`crm ${req.url}`);
    },
  );
  u.server.on('secureConnection', () => u.connections++);
  u.server.listen(0, '127.0.0.1');
  await once(u.server, 'listening');
  u.port = (u.server.address() as AddressInfo).port;
  t.after(() => {
    u.server.closeAllConnections();
    u.server.close();
  });
  return u;
}

function route(upstream: string, tls: string, extra = ''): string {
  return `
  - name: crm
    host: api.test.local
    upstream: ${upstream}
    auth: none
    upstreamTls: { ${tls} }${extra}
`;
}

async function gateway(t: TestContext, yaml: string): Promise<TestGateway> {
  const gw = await startTestGateway(yaml);
  t.after(() => gw.close());
  return gw;
}

/** The access line's detail of `path` (written once the answer has ended, so waited for). */
async function accessDetail(gw: TestGateway, path: string): Promise<string> {
  await waitFor(() => gw.log.accessEntries.some((e) => e.path === path), 2_000, `access line of ${path}`);
  return String(gw.log.accessEntries.find((e) => e.path === path)?.detail);
}

describe('TLS to upstreams', () => {
  test('proxied with the route CA; the name checked is serverName, the Host sent stays the public one', async (t) => {
    const up = await tlsUpstream(t);
    const gw = await gateway(t, route(`https://127.0.0.1:${up.port}/v1`, `ca: "${serverCa.caFile}", serverName: crm.internal`));
    const res = await gw.request({ path: '/x?q=1' });
    assert.equal(res.status, 200, res.body);
    assert.equal(res.body, 'crm /v1/x?q=1');
    assert.deepEqual(up.requests, [{ host: 'api.test.local', servername: 'crm.internal', clientCn: undefined }]);
  });

  test('without serverName the upstream URL host is checked (an IP against the IP SAN), never the public Host', async (t) => {
    const up = await tlsUpstream(t);
    const gw = await gateway(t, route(`https://127.0.0.1:${up.port}`, `ca: "${serverCa.caFile}"`));
    const res = await gw.request({ path: '/ip' });
    assert.equal(res.status, 200, res.body);
    // No SNI for an IP address (RFC 6066 §3).
    assert.equal(up.requests[0]?.servername, false);
  });

  test('a wrong server name: 502 UPSTREAM_UNAVAILABLE, the TLS reason in the log, nothing reached the upstream', async (t) => {
    const up = await tlsUpstream(t);
    const gw = await gateway(t, route(`https://127.0.0.1:${up.port}`, `ca: "${serverCa.caFile}", serverName: crm.other`));
    const res = await gw.request({ path: '/name' });
    assert.equal(res.status, 502);
    assert.equal(res.json<{ error: { code: string } }>().error.code, 'UPSTREAM_UNAVAILABLE');
    assert.match(await accessDetail(gw, '/name'), /TLS ERR_TLS_CERT_ALTNAME_INVALID/);
    assert.ok(!res.body.includes('crm.other'), 'the detail stays in the log');
    assert.equal(up.requests.length, 0);
  });

  test('an unknown CA: 502 UPSTREAM_UNAVAILABLE, nothing reached the upstream', async (t) => {
    const up = await tlsUpstream(t);
    const gw = await gateway(t, route(`https://127.0.0.1:${up.port}`, `ca: "${otherCa.caFile}", serverName: crm.internal`));
    const res = await gw.request({ path: '/ca' });
    assert.equal(res.status, 502);
    assert.equal(res.json<{ error: { code: string } }>().error.code, 'UPSTREAM_UNAVAILABLE');
    assert.match(await accessDetail(gw, '/ca'), /TLS UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
    assert.equal(up.requests.length, 0);
  });

  test('an upstream requiring a client certificate: refused without one (502), served with the route cert', async (t) => {
    const up = await tlsUpstream(t, true);
    const without = await gateway(t, route(`https://127.0.0.1:${up.port}`, `ca: "${serverCa.caFile}", serverName: crm.internal`));
    const refused = await without.request({ path: '/nocert' });
    assert.equal(refused.status, 502);
    assert.equal(refused.json<{ error: { code: string } }>().error.code, 'UPSTREAM_UNAVAILABLE');
    // TLS 1.3: the upstream's certificate_required alert comes after the client's Finished, with
    // the request already written; undici reads the close before the alert (UND_ERR_SOCKET).
    assert.match(await accessDetail(without, '/nocert'), /TLS|certificate|other side closed/i);
    assert.equal(up.requests.length, 0);

    const withCert = await gateway(t, route(`https://127.0.0.1:${up.port}`, `ca: "${serverCa.caFile}", serverName: crm.internal, cert: "${gatewayClient.certFile}", key: "${gatewayClient.keyFile}"`));
    const ok = await withCert.request({ path: '/cert' });
    assert.equal(ok.status, 200, ok.body);
    assert.equal(up.requests.length, 1);
    assert.equal(up.requests[0]?.clientCn, 'crm-gateway');
  });

  test('keep-alive: 20 requests, one TLS connection to the upstream', async (t) => {
    const up = await tlsUpstream(t, true);
    const gw = await gateway(t, route(`https://127.0.0.1:${up.port}`, `ca: "${serverCa.caFile}", serverName: crm.internal, cert: "${gatewayClient.certFile}", key: "${gatewayClient.keyFile}"`));
    for (let i = 0; i < 20; i++) assert.equal((await gw.request({ path: `/k${i}` })).status, 200);
    assert.equal(up.requests.length, 20);
    assert.equal(up.connections, 1);
  });

  test('a route timeout holds for an https upstream as for plain HTTP (504)', async (t) => {
    const up = await tlsUpstream(t);
    up.server.removeAllListeners('request');
    up.server.on('request', () => undefined);
    const gw = await gateway(t, route(`https://127.0.0.1:${up.port}`, `ca: "${serverCa.caFile}", serverName: crm.internal`, '\n    timeout: 1s'));
    const res = await gw.request({ path: '/slow' });
    assert.equal(res.status, 504);
    assert.equal(res.json<{ error: { code: string } }>().error.code, 'UPSTREAM_TIMEOUT');
  });

  test('websockets to an https upstream use the route CA, client certificate and server name; a wrong name is refused', async (t) => {
    const up = await tlsUpstream(t, true);
    const wss = new WebSocketServer({ server: up.server });
    let upgrades = 0;
    wss.on('connection', (ws, req) => {
      upgrades++;
      const cn = (req.socket as TLSSocket).getPeerX509Certificate()?.subject ?? 'none';
      ws.send(`hello ${cn} via ${(req.socket as TLSSocket).servername}`);
    });
    t.after(() => wss.close());
    const open = (gw: TestGateway): Promise<string> =>
      new Promise((resolve, reject) => {
        // Passed on to tls.connect; ws's types know neither servername nor an undefined identity check.
        const options = { ca: gw.ca, servername: 'api.test.local', headers: { host: 'api.test.local' }, checkServerIdentity: () => undefined } as unknown as WebSocket.ClientOptions;
        const ws = new WebSocket(`wss://127.0.0.1:${gw.port}/ws`, options);
        ws.once('message', (m: Buffer) => {
          resolve(m.toString());
          ws.close();
        });
        ws.once('unexpected-response', (_req, res) => resolve(`status ${res.statusCode}`));
        ws.once('error', reject);
      });
    const good = await gateway(t, route(`https://127.0.0.1:${up.port}`, `ca: "${serverCa.caFile}", serverName: crm.internal, cert: "${gatewayClient.certFile}", key: "${gatewayClient.keyFile}"`));
    assert.equal(await open(good), 'hello CN=crm-gateway via crm.internal');
    const wrongName = await gateway(t, route(`https://127.0.0.1:${up.port}`, `ca: "${serverCa.caFile}", serverName: crm.other, cert: "${gatewayClient.certFile}", key: "${gatewayClient.keyFile}"`));
    assert.equal(await open(wrongName), 'status 502');
    assert.equal(upgrades, 1, 'the refused handshake never reached the upstream');
  });

  test('WhatsApp webhook deliveries to an https CRM API use the route CA, server name and client certificate', async (t) => {
    const up = await tlsUpstream(t, true);
    const redis = await gatewayRedis(SHARED_REDIS_URL, createMemoryLogger());
    const name = runId('wa-tls-');
    t.after(async () => {
      await deleteKeys(SHARED_REDIS_URL, `crmgw:{wa:${name}}:*`);
      redis.disconnect();
    });
    const secret = randomBytes(24).toString('hex');
    const yaml = `
  - name: ${name}
    host: api.test.local
    path: /webhook/whatsapp
    upstream: https://127.0.0.1:${up.port}
    auth: whatsapp
    websocket: false
    upstreamTls: { ca: "${serverCa.caFile}", serverName: crm.internal, cert: "${gatewayClient.certFile}", key: "${gatewayClient.keyFile}" }
`;
    const env = { WHATSAPP_APP_SECRET: secret, WHATSAPP_VERIFY_TOKEN: randomBytes(16).toString('hex'), WHATSAPP_QUEUE_KEY: randomBytes(32).toString('hex') };
    const gw = await startTestGateway(yaml, env, '', { redis });
    t.after(() => gw.close());
    const ts = String(Math.floor(Date.now() / 1000));
    const body = Buffer.from(JSON.stringify({ object: 'whatsapp_business_account', entry: [{ id: '1', changes: [{ field: 'messages', value: { messaging_product: 'whatsapp', metadata: { display_phone_number: '1', phone_number_id: '2' }, messages: [{ from: '34600111222', id: `wamid.${name}`, timestamp: ts, type: 'text', text: { body: 'hola' } }] } }] }] }));
    const res = await gw.request({ method: 'POST', path: '/webhook/whatsapp', headers: { 'content-type': 'application/json', 'x-hub-signature-256': signBody(body, secret) }, body });
    assert.equal(res.status, 200, res.body);
    assert.equal(res.json<{ status: string }>().status, 'forwarded');
    assert.equal(up.requests.length, 1);
    assert.deepEqual(up.requests[0], { host: 'api.test.local', servername: 'crm.internal', clientCn: 'crm-gateway' });
  });
});

describe('TLS to upstreams: configuration', () => {
  const parse = async (tls: string, upstream = 'https://127.0.0.1:1'): Promise<ConfigError> => {
    const cert = await testCertificate();
    try {
      testConfig(route(upstream, tls), '', cert);
    } catch (err) {
      if (err instanceof ConfigError) return err;
      throw err;
    }
    throw new Error('config accepted');
  };

  test('only with an https upstream; cert and key together; files readable, PEM, and a matching pair', async () => {
    const dir = tempDir('crm-gw-uptls-');
    const junk = join(dir, 'junk.pem');
    writeFileSync(junk, 'not a certificate');
    const other = clientCa.issue('someone-else');
    assert.match((await parse(`ca: "${serverCa.caFile}"`, 'http://127.0.0.1:1')).message, /upstreamTls needs an https:\/\/ upstream/);
    assert.match((await parse(`cert: "${gatewayClient.certFile}"`)).message, /needs both cert and key/);
    assert.match((await parse(`ca: "${join(dir, 'absent.pem')}"`)).message, /routes\[0\]\.upstreamTls\.ca \(route crm\): cannot read .*ENOENT/);
    assert.match((await parse(`ca: "${junk}"`)).message, /no PEM certificate/);
    assert.match((await parse(`cert: "${gatewayClient.certFile}", key: "${other.keyFile}"`)).message, /is not the key of/);
    assert.match((await parse(`ca: "${serverCa.caFile}", verify: false`)).message, /verify/);
    const cert = await testCertificate();
    const ok = testConfig(route('https://127.0.0.1:1', `ca: "${serverCa.caFile}", serverName: CRM.Internal`), '', cert);
    assert.equal(ok.routes[0]?.upstreamTls?.serverName, 'crm.internal');
  });
});
