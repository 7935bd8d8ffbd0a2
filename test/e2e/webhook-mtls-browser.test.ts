import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startTestGateway } from '../helpers/harness.js';
import { CHROMIUM } from '../helpers/browser.js';
import { makeClientCa } from '../helpers/client-certs.js';
import { StandInCrm } from '../helpers/crm-api.js';

const TEST_TIMEOUT_MS = 60_000;

/** Event names of a Chromium NetLog file (written whole when the browser closes) that occurred. */
function netLogEvents(file: string): Set<string> {
  const log = JSON.parse(readFileSync(file, 'utf8')) as { constants: { logEventTypes: Record<string, number> }; events: { type: number }[] };
  const names = new Map(Object.entries(log.constants.logEventTypes).map(([name, id]) => [id, name]));
  return new Set(log.events.map((e) => names.get(e.type) ?? String(e.type)));
}

/**
 * Chromium's own record of the handshakes: a browser is prompted for a certificate only after a
 * CertificateRequest, which Chromium's NetLog records as SSL_CLIENT_CERT_REQUESTED. On the
 * NocoDB host it must never appear; on the webhook host it must (the control: the NetLog would
 * show the request if there were one).
 */
async function visit(port: number, host: string): Promise<{ events: Set<string>; status: number | undefined }> {
  const dir = mkdtempSync(join(tmpdir(), 'crm-gw-netlog-'));
  const netLog = join(dir, 'netlog.json');
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    timeout: 30_000,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      `--host-resolver-rules=MAP *.test.local 127.0.0.1`,
      `--log-net-log=${netLog}`,
      '--net-log-capture-mode=Default',
    ],
    env: { ...process.env, HOME: dir },
  });
  try {
    // The certificate's trust is not what this test is about: errors ignored, the handshake still runs whole.
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    const res = await page.goto(`https://${host}:${port}/`, { timeout: 15_000 });
    const status = res?.status();
    await context.close();
    await browser.close();
    assert.ok(existsSync(netLog), 'Chromium wrote its NetLog');
    return { events: netLogEvents(netLog), status };
  } finally {
    if (browser.isConnected()) await browser.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('Chromium on the NocoDB host is never asked for a client certificate; on the webhook host it is', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const meta = makeClientCa('Meta Test Outbound CA');
  const crm = await StandInCrm.start();
  const env = { WHATSAPP_APP_SECRET: randomBytes(24).toString('hex'), WHATSAPP_VERIFY_TOKEN: randomBytes(16).toString('hex'), WHATSAPP_MTLS: 'required', WHATSAPP_MTLS_CA_FILE: meta.caFile };
  const gw = await startTestGateway(
    `
  - { name: whatsapp-webhook, host: hook.test.local, upstream: "${crm.url}", auth: whatsapp, websocket: false }
  - { name: nocodb, host: nocodb.test.local, upstream: UPSTREAM, auth: none }
`,
    env,
  );
  t.after(async () => {
    await gw.close();
    await crm.stop();
  });

  const nocodb = await visit(gw.port, 'nocodb.test.local');
  assert.equal(nocodb.status, 200);
  assert.ok(nocodb.events.has('SSL_CONNECT'), 'the NetLog recorded the TLS handshake');
  assert.ok(!nocodb.events.has('SSL_CLIENT_CERT_REQUESTED'), 'no certificate request on the NocoDB host');

  const hook = await visit(gw.port, 'hook.test.local');
  assert.ok(hook.events.has('SSL_CLIENT_CERT_REQUESTED'), 'the webhook host asks (the NetLog shows it when it happens)');
  // Chromium, with no certificate to offer, goes on without one: the webhook refuses.
  assert.equal(hook.status, 403);
  assert.equal(crm.received.length, 0);
});
