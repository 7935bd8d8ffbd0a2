import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import tls from 'node:tls';
import { once } from 'node:events';
import { spawnSync } from 'node:child_process';
import { ensureDevCertificate } from '../../src/tls/certificates.js';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { startTestGateway, testCertificate, testConfig, type TestGateway, type TestResponse } from '../helpers/harness.js';
import { StandInCrm } from '../helpers/crm-api.js';
import { deleteKeys, gatewayRedis, listKeys, runId, SHARED_REDIS_URL } from '../helpers/redis.js';
import { makeClientCa, META_CN, sClient, type ClientCert } from '../helpers/client-certs.js';
import { tempDir } from '../helpers/deployment.js';
import { createMemoryLogger } from '../../src/log/logger.js';
import { signBody } from '../../src/webhook/signature.js';
import { bindGateway } from '../../src/server/start.js';
import { ConfigError } from '../../src/config/load.js';

const APP_SECRET = randomBytes(24).toString('hex');
const VERIFY_TOKEN = randomBytes(16).toString('hex');
const QUEUE_KEY = randomBytes(32).toString('hex');
const HOOK_HOST = 'hook.test.local';
const PATH = '/webhook/whatsapp';

const meta = makeClientCa('Meta Test Outbound CA');
const stranger = makeClientCa('Some Other CA');
let good: ClientCert;
let wrongCn: ClientCert;
let expired: ClientCert;
let otherCa: ClientCert;
let notYet: ClientCert;
let redis: Redis;
const routeNames: string[] = [];

before(async () => {
  redis = await gatewayRedis(SHARED_REDIS_URL, createMemoryLogger());
  good = meta.issue(META_CN);
  wrongCn = meta.issue('client.webhooks.example.com');
  expired = meta.issue(META_CN, { notBefore: new Date('2024-01-01T00:00:00Z'), notAfter: new Date('2024-02-01T00:00:00Z') });
  notYet = meta.issue(META_CN, { notBefore: new Date(Date.now() + 30 * 86_400_000), notAfter: new Date(Date.now() + 60 * 86_400_000) });
  otherCa = stranger.issue(META_CN);
});
after(async () => {
  for (const name of routeNames) await deleteKeys(SHARED_REDIS_URL, `crmgw:{wa:${name}}:*`);
  redis.disconnect();
});

/** The webhook on a host of its own, and a browser route (NocoDB's stand-in) beside it. */
function routes(name: string, crm: StandInCrm): string {
  return `
  - name: ${name}
    host: ${HOOK_HOST}
    path: ${PATH}
    upstream: ${crm.url}
    auth: whatsapp
    maxBody: 3mb
    timeout: 5s
    websocket: false
  - name: nocodb
    host: nocodb.test.local
    upstream: UPSTREAM
    auth: none
`;
}

async function setup(t: { after(fn: () => Promise<void>): void }, mode: 'required' | 'optional'): Promise<{ gw: TestGateway; crm: StandInCrm; name: string }> {
  const crm = await StandInCrm.start();
  const name = runId('wamtls-');
  routeNames.push(name);
  const env = { WHATSAPP_APP_SECRET: APP_SECRET, WHATSAPP_VERIFY_TOKEN: VERIFY_TOKEN, WHATSAPP_QUEUE_KEY: QUEUE_KEY, WHATSAPP_MTLS: mode, WHATSAPP_MTLS_CA_FILE: meta.caFile };
  const gw = await startTestGateway(routes(name, crm), env, 'whatsapp: { ackTimeout: 3s, retryMin: 50ms, retryMax: 200ms }', { redis });
  t.after(async () => {
    await gw.close();
    await crm.stop();
  });
  return { gw, crm, name };
}

function notification(id: string): Buffer {
  const ts = String(Math.floor(Date.now() / 1000));
  return Buffer.from(
    JSON.stringify({
      object: 'whatsapp_business_account',
      entry: [{ id: '102290129340398', changes: [{ field: 'messages', value: { messaging_product: 'whatsapp', metadata: { display_phone_number: '15550783881', phone_number_id: '106540352242922' }, messages: [{ from: '34600111222', id, timestamp: ts, type: 'text', text: { body: 'hola' } }] } }] }],
    }),
  );
}

/** A signed delivery to the webhook host, over a fresh TLS connection with `client` as the client certificate. */
function deliver(gw: TestGateway, client: ClientCert | undefined, body = notification(`wamid.${randomBytes(8).toString('hex')}`), ca = gw.ca): Promise<TestResponse> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port: gw.port,
        method: 'POST',
        path: PATH,
        ca,
        servername: HOOK_HOST,
        headers: { host: HOOK_HOST, 'content-type': 'application/json', 'x-hub-signature-256': signBody(body, APP_SECRET) },
        agent: false,
        ...(client ? { cert: client.cert, key: client.key } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, json: () => JSON.parse(text) });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** A POST on `agent` (which keeps the TLS session and offers it again): the status and whether the session was resumed. */
function sendOnAgent(gw: TestGateway, client: ClientCert, agent: https.Agent, maxVersion: 'TLSv1.2' | 'TLSv1.3'): Promise<{ status: number; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const body = notification(`wamid.${randomBytes(8).toString('hex')}`);
    const headers = { host: HOOK_HOST, 'content-type': 'application/json', 'x-hub-signature-256': signBody(body, APP_SECRET), connection: 'close' };
    const req = https.request({ host: '127.0.0.1', port: gw.port, method: 'POST', path: PATH, ca: gw.ca, servername: HOOK_HOST, cert: client.cert, key: client.key, agent, maxVersion, headers }, (res) => {
      const reused = (res.socket as tls.TLSSocket).isSessionReused();
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, reused }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A Meta-shaped leaf issued by an intermediate of the test Meta CA; `cert` holds leaf then intermediate, as a client sends them. */
function chainedThroughIntermediate(): ClientCert {
  const dir = meta.dir;
  const openssl = (args: string[]): void => {
    const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8', timeout: 30_000 });
    if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  writeFileSync(join(dir, 'int.ext'), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n');
  openssl(['req', ...ec, '-keyout', 'int.key', '-out', 'int.csr', '-subj', '/CN=Meta Test Intermediate']);
  openssl(['x509', '-req', '-in', 'int.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'int.crt', '-days', '20', '-extfile', 'int.ext']);
  writeFileSync(join(dir, 'leaf-int.ext'), 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n');
  openssl(['req', ...ec, '-keyout', 'leaf-int.key', '-out', 'leaf-int.csr', '-subj', `/CN=${META_CN}`]);
  openssl(['x509', '-req', '-in', 'leaf-int.csr', '-CA', 'int.crt', '-CAkey', 'int.key', '-CAcreateserial', '-out', 'leaf-int.crt', '-days', '10', '-extfile', 'leaf-int.ext']);
  const certFile = join(dir, 'leaf-int.crt');
  const keyFile = join(dir, 'leaf-int.key');
  return { certFile, keyFile, cert: readFileSync(certFile, 'utf8') + readFileSync(join(dir, 'int.crt'), 'utf8'), key: readFileSync(keyFile, 'utf8') };
}

/** Refused with `code`, a `webhook.client_cert_rejected` event with `reason`, and nothing delivered or queued. */
async function assertRefused(s: { gw: TestGateway; crm: StandInCrm; name: string }, res: TestResponse, code: string, reason: string): Promise<Record<string, unknown>> {
  assert.equal(res.status, 403, res.body);
  assert.equal(res.json<{ error: { code: string } }>().error.code, code);
  const requestId = res.headers['x-request-id'];
  const events = s.gw.log.securityEvents.filter((e) => e.requestId === requestId);
  const rejected = events.find((e) => e.event === 'webhook.client_cert_rejected');
  assert.ok(rejected, `client_cert_rejected event for ${code}`);
  assert.equal(rejected.reason, reason);
  assert.ok(events.some((e) => e.event === 'request.denied' && e.code === code));
  // Refused before the body was read: no webhook outcome, nothing at the CRM, nothing in Redis.
  assert.ok(!events.some((e) => e.event === 'webhook.whatsapp'));
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(s.crm.received.length, 0);
  assert.deepEqual(await listKeys(redis, `crmgw:{wa:${s.name}}:*`), []);
  return rejected;
}

describe('Meta webhook client certificates: asked for on the webhook host only', () => {
  test('the webhook host gets a CertificateRequest naming Meta\'s CA; the browser host, and no SNI, get none', async (t) => {
    const { gw } = await setup(t, 'required');
    const hook = await sClient(gw.port, HOOK_HOST);
    assert.match(hook, /CertificateRequest/);
    assert.match(hook, /Acceptable client certificate CA names\s+O = Meta Test Outbound CA, CN = Meta Test Outbound CA Root/);
    for (const other of ['nocodb.test.local', 'api.test.local', undefined]) {
      const out = await sClient(gw.port, other);
      assert.match(out, /ServerHello/, `handshake with ${other ?? 'no SNI'} ran`);
      assert.doesNotMatch(out, /CertificateRequest/, `no certificate request for ${other ?? 'no SNI'}`);
      assert.match(out, /No client certificate CA names sent/);
    }
    // TLS 1.2 as well (the request is written in the server's first flight there).
    assert.match(await sClient(gw.port, HOOK_HOST, ['-tls1_2']), /CertificateRequest/);
    const other12 = await sClient(gw.port, 'nocodb.test.local', ['-tls1_2']);
    assert.match(other12, /ServerHelloDone/);
    assert.doesNotMatch(other12, /CertificateRequest/);
    // The browser host still serves.
    const page = await gw.request({ host: 'nocodb.test.local', path: '/' });
    assert.equal(page.status, 200);
  });
});

describe('Meta webhook client certificates: certificate reload', () => {
  test('a reloaded server certificate is served on the webhook host too (its context is rebuilt)', async (t) => {
    const dir = tempDir('crm-gw-mtls-reload-');
    const certFile = join(dir, 'gateway.crt');
    const keyFile = join(dir, 'gateway.key');
    await ensureDevCertificate(certFile, keyFile, 'test.local');
    const crm = await StandInCrm.start();
    const name = runId('wamtls-');
    routeNames.push(name);
    const env = { TLS_CERT_FILE: certFile, TLS_KEY_FILE: keyFile, WHATSAPP_APP_SECRET: APP_SECRET, WHATSAPP_VERIFY_TOKEN: VERIFY_TOKEN, WHATSAPP_QUEUE_KEY: QUEUE_KEY, WHATSAPP_MTLS: 'required', WHATSAPP_MTLS_CA_FILE: meta.caFile };
    const gw = await startTestGateway(routes(name, crm), env, 'tls: { watch: false }', { redis });
    t.after(async () => {
      await gw.close();
      await crm.stop();
    });
    const served = async (sni: string): Promise<string> => {
      const socket = tls.connect({ host: '127.0.0.1', port: gw.port, servername: sni, rejectUnauthorized: false });
      await once(socket, 'secureConnect');
      const fp = socket.getPeerX509Certificate()?.fingerprint256 ?? '';
      socket.destroy();
      return fp;
    };
    const before = await served(HOOK_HOST);
    assert.equal(before, await served('nocodb.test.local'));
    // A new pair in the same files (a renewal), then the reload SIGHUP or the watcher would do.
    rmSync(certFile);
    rmSync(keyFile);
    await ensureDevCertificate(certFile, keyFile, 'test.local');
    assert.ok(gw.running.certificates.reload('test'));
    const after = await served(HOOK_HOST);
    assert.notEqual(after, before);
    assert.equal(after, await served('nocodb.test.local'));
    assert.equal((await deliver(gw, good, undefined, readFileSync(certFile, 'utf8'))).status, 200);
  });
});

describe('Meta webhook client certificates: required', () => {
  test("Meta's certificate passes: the signed delivery reaches the CRM API", async (t) => {
    const s = await setup(t, 'required');
    const res = await deliver(s.gw, good);
    assert.equal(res.status, 200, res.body);
    assert.equal(s.crm.received.length, 1);
    assert.ok(!s.gw.log.securityEvents.some((e) => e.event === 'webhook.client_cert_rejected'));
  });

  test('a resumed TLS session (no certificate callback runs) is judged by the certificate it carries', async (t) => {
    const s = await setup(t, 'required');
    const send = (client: ClientCert, agent: https.Agent): Promise<{ status: number; reused: boolean }> =>
      new Promise((resolve, reject) => {
        const body = notification(`wamid.${randomBytes(8).toString('hex')}`);
        const req = https.request(
          { host: '127.0.0.1', port: s.gw.port, method: 'POST', path: PATH, ca: s.gw.ca, servername: HOOK_HOST, cert: client.cert, key: client.key, agent, headers: { host: HOOK_HOST, 'content-type': 'application/json', 'x-hub-signature-256': signBody(body, APP_SECRET), connection: 'close' } },
          (res) => {
            const reused = (res.socket as import('node:tls').TLSSocket).isSessionReused();
            res.resume();
            res.on('end', () => resolve({ status: res.statusCode ?? 0, reused }));
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    // The agent keeps the TLS session and offers it on the next connection (its certificate is not sent again).
    const metaAgent = new https.Agent({ keepAlive: false, maxCachedSessions: 10 });
    const first = await send(good, metaAgent);
    const second = await send(good, metaAgent);
    assert.deepEqual([first, second], [{ status: 200, reused: false }, { status: 200, reused: true }]);
    assert.equal(s.crm.received.length, 2);
    const foreignAgent = new https.Agent({ keepAlive: false, maxCachedSessions: 10 });
    const third = await send(otherCa, foreignAgent);
    const fourth = await send(otherCa, foreignAgent);
    assert.deepEqual([third, fourth], [{ status: 403, reused: false }, { status: 403, reused: true }]);
    const reasons = s.gw.log.securityEvents.filter((e) => e.event === 'webhook.client_cert_rejected').map((e) => e.reason);
    assert.deepEqual(reasons, ['untrusted', 'untrusted']);
    assert.equal(s.crm.received.length, 2);
  });

  test('a chain through an intermediate the client sends: the full handshake and the resumed session both pass (TLS 1.3 and 1.2)', async (t) => {
    // The server side of a session keeps the leaf, not the intermediates: the resumed request is
    // judged by OpenSSL's stored verdict, not re-verified from the leaf alone (which said untrusted).
    const chained = chainedThroughIntermediate();
    const leafAlone: ClientCert = { ...chained, cert: chained.cert.slice(0, chained.cert.indexOf('-----END CERTIFICATE-----') + 26) };
    const s = await setup(t, 'required');
    for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
      const agent = new https.Agent({ keepAlive: false, maxCachedSessions: 10 });
      const got = [await sendOnAgent(s.gw, chained, agent, maxVersion), await sendOnAgent(s.gw, chained, agent, maxVersion)];
      assert.deepEqual(got, [{ status: 200, reused: false }, { status: 200, reused: true }], maxVersion);
      // Without its intermediate the leaf does not chain: refused, and on the resumed session too.
      const bareAgent = new https.Agent({ keepAlive: false, maxCachedSessions: 10 });
      const bare = [await sendOnAgent(s.gw, leafAlone, bareAgent, maxVersion), await sendOnAgent(s.gw, leafAlone, bareAgent, maxVersion)];
      assert.deepEqual(bare, [{ status: 403, reused: false }, { status: 403, reused: true }], maxVersion);
    }
    assert.equal(s.crm.received.length, 4);
    const rejected = s.gw.log.securityEvents.filter((e) => e.event === 'webhook.client_cert_rejected');
    assert.deepEqual(rejected.map((e) => e.reason), ['untrusted', 'untrusted', 'untrusted', 'untrusted']);
    assert.ok(rejected.every((e) => String(e.subject).includes(META_CN)));
  });

  test('no certificate: 403 WEBHOOK_CLIENT_CERT_REQUIRED, an event, nothing forwarded or queued', async (t) => {
    const s = await setup(t, 'required');
    await assertRefused(s, await deliver(s.gw, undefined), 'WEBHOOK_CLIENT_CERT_REQUIRED', 'missing');
  });

  test('wrong subject, expired, not yet valid, another CA: 403 WEBHOOK_CLIENT_CERT_INVALID with the reason, subject, issuer and fingerprint', async (t) => {
    const s = await setup(t, 'required');
    const wrong = await assertRefused(s, await deliver(s.gw, wrongCn), 'WEBHOOK_CLIENT_CERT_INVALID', 'wrong_subject');
    assert.equal(wrong.subject, 'CN=client.webhooks.example.com');
    assert.match(String(wrong.issuer), /Meta Test Outbound CA Root/);
    assert.match(String(wrong.fingerprint256), /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    await assertRefused(s, await deliver(s.gw, expired), 'WEBHOOK_CLIENT_CERT_INVALID', 'expired');
    await assertRefused(s, await deliver(s.gw, notYet), 'WEBHOOK_CLIENT_CERT_INVALID', 'not_yet_valid');
    const foreign = await assertRefused(s, await deliver(s.gw, otherCa), 'WEBHOOK_CLIENT_CERT_INVALID', 'untrusted');
    assert.match(String(foreign.issuer), /Some Other CA Root/);
  });

  test("the handshake GET is checked too: without Meta's certificate no challenge is echoed", async (t) => {
    const s = await setup(t, 'required');
    const res = await s.gw.request({ host: HOOK_HOST, path: `${PATH}?hub.mode=subscribe&hub.verify_token=${VERIFY_TOKEN}&hub.challenge=xyzzy` });
    assert.equal(res.status, 403);
    assert.equal(res.json<{ error: { code: string } }>().error.code, 'WEBHOOK_CLIENT_CERT_REQUIRED');
    assert.ok(!res.body.includes('xyzzy'));
  });

  test("a request for the webhook's Host on another server name is refused (no certificate was asked there)", async (t) => {
    const s = await setup(t, 'required');
    // Same Host, SNI of the browser host: the gateway refuses the mismatch before any route runs.
    const res = await s.gw.request({ method: 'POST', host: HOOK_HOST, servername: 'nocodb.test.local', path: PATH, body: '{}' });
    assert.equal(res.status, 421);
    assert.equal(s.crm.received.length, 0);
  });
});

describe('Meta webhook client certificates: optional', () => {
  test('no certificate passes (event webhook.client_cert_absent); a wrong one is still refused', async (t) => {
    const s = await setup(t, 'optional');
    const ok = await deliver(s.gw, undefined);
    assert.equal(ok.status, 200, ok.body);
    assert.equal(s.crm.received.length, 1);
    assert.ok(s.gw.log.securityEvents.some((e) => e.event === 'webhook.client_cert_absent' && e.requestId === ok.headers['x-request-id'] && e.mode === 'optional'));
    const withMeta = await deliver(s.gw, good);
    assert.equal(withMeta.status, 200);
    assert.equal(s.crm.received.length, 2);
    const before = s.crm.received.length;
    const wrong = await deliver(s.gw, wrongCn);
    assert.equal(wrong.status, 403);
    assert.equal(wrong.json<{ error: { code: string } }>().error.code, 'WEBHOOK_CLIENT_CERT_INVALID');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(s.crm.received.length, before);
  });
});

describe('Meta webhook client certificates: configuration', () => {
  const base = (extra: Record<string, string>, hook = HOOK_HOST): (() => unknown) => async () => {
    const cert = await testCertificate();
    return testConfig(`  - { name: wa, host: ${hook}, path: ${PATH}, upstream: "http://127.0.0.1:1", auth: whatsapp }\n  - { name: api, host: api.test.local, upstream: UPSTREAM, auth: none }`, 'http://127.0.0.1:2', cert, extra);
  };

  test('WHATSAPP_MTLS needs its CA file, and the CA file needs WHATSAPP_MTLS', async () => {
    await assert.rejects(base({ WHATSAPP_MTLS: 'required' }) as () => Promise<unknown>, (e: ConfigError) => e.problems.some((p) => /WHATSAPP_MTLS_CA_FILE/.test(p.message)));
    await assert.rejects(base({ WHATSAPP_MTLS_CA_FILE: meta.caFile }) as () => Promise<unknown>, (e: ConfigError) => e.problems.some((p) => /WHATSAPP_MTLS is not/.test(p.message)));
    await assert.rejects(base({ WHATSAPP_MTLS: 'sometimes', WHATSAPP_MTLS_CA_FILE: meta.caFile }) as () => Promise<unknown>, (e: ConfigError) => e.problems.some((p) => p.path.includes('WHATSAPP_MTLS')));
  });

  test('the webhook must have a host of its own: on the API host every API client would be asked for a certificate', async () => {
    await assert.rejects(base({ WHATSAPP_MTLS: 'required', WHATSAPP_MTLS_CA_FILE: meta.caFile }, 'api.test.local') as () => Promise<unknown>, (e: ConfigError) =>
      e.problems.some((p) => p.path.startsWith('routes[0].host') && /host of its own/.test(p.message)),
    );
    const ok = (await (base({ WHATSAPP_MTLS: 'required', WHATSAPP_MTLS_CA_FILE: meta.caFile }) as () => Promise<{ whatsapp: { mtls?: string } }>)());
    assert.equal(ok.whatsapp.mtls, 'required');
  });

  test('a CA file that is missing, not PEM, or a leaf certificate stops startup', async () => {
    const cert = await testCertificate();
    const dir = tempDir('crm-gw-mtls-');
    const notPem = join(dir, 'not.pem');
    writeFileSync(notPem, 'hello');
    for (const [file, why] of [
      [join(dir, 'absent.pem'), /ENOENT/],
      [notPem, /no PEM certificate/],
      [good.certFile, /not a CA certificate/],
    ] as const) {
      const cfg = testConfig(`  - { name: wa, host: ${HOOK_HOST}, path: ${PATH}, upstream: "http://127.0.0.1:1", auth: whatsapp }`, '', cert, { WHATSAPP_MTLS: 'required', WHATSAPP_MTLS_CA_FILE: file });
      await assert.rejects(bindGateway(cfg), why);
    }
  });
});
