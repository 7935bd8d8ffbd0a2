import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { startAcmeGateway } from '../helpers/acme-gateway.js';
import type { Pebble } from '../helpers/pebble.js';
import { freePort } from '../helpers/ports.js';
import { ariCertId } from '../../src/tls/acme/renewal.js';

// ACME Renewal Information (RFC 9773). Pebble 2.4 has no renewalInfo, so a real HTTPS server
// plays a directory that offers it: the gateway asks for its certificate's window and renews
// at a time inside it when it opens before two thirds of the lifetime.

const H = 3_600_000;

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
}

describe('ACME renewal information', { timeout: 60_000 }, () => {
  test('an earlier ARI window sets the renewal time; one that has opened starts an order', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'crm-gw-acme-ari-'));
    const pki = join(dir, 'pki');
    mkdirSync(pki);
    openssl(pki, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-subj', '/CN=ari test CA', '-days', '90', '-addext', 'subjectKeyIdentifier=hash']);
    const issue = (name: string, san: string, days: string): void => {
      openssl(pki, ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
      writeFileSync(join(pki, `${name}.ext`), `authorityKeyIdentifier=keyid\nsubjectAltName=${san}\n`);
      openssl(pki, ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', days, '-extfile', `${name}.ext`]);
    };
    issue('directory', 'IP:127.0.0.1', '2');
    issue('gateway', 'DNS:api.acme.test', '60');
    mkdirSync(join(dir, 'certs'), { mode: 0o700 });
    copyFileSync(join(pki, 'gateway.crt'), join(dir, 'certs/gateway.crt'));
    copyFileSync(join(pki, 'gateway.key'), join(dir, 'certs/gateway.key'));
    chmodSync(join(dir, 'certs/gateway.key'), 0o600);

    let window = { start: new Date(Date.now() + H), end: new Date(Date.now() + 2 * H) };
    const asked: string[] = [];
    const server = https.createServer({ cert: readFileSync(join(pki, 'directory.crt')), key: readFileSync(join(pki, 'directory.key')) }, (req, res) => {
      const base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
      if (req.url === '/dir') {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ newNonce: `${base}/nonce`, newAccount: `${base}/account`, newOrder: `${base}/order`, renewalInfo: `${base}/ari` }));
      } else if (req.url?.startsWith('/ari/')) {
        asked.push(req.url.slice('/ari/'.length));
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ suggestedWindow: { start: window.start.toISOString(), end: window.end.toISOString() } }));
      } else {
        res.statusCode = 503;
        res.end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const directoryUrl = `https://127.0.0.1:${(server.address() as AddressInfo).port}/dir`;
    const fake = { directoryUrl, caFile: join(pki, 'ca.crt'), httpPort: await freePort() } as Pebble;
    const gw = await startAcmeGateway({ pebble: fake, hosts: ['api.acme.test'], dir });
    try {
      await gw.acme.checkNow();
      assert.deepEqual(asked, [ariCertId(readFileSync(join(dir, 'certs/gateway.crt'), 'utf8'))]);
      const next = Date.parse(gw.acme.state.nextAttempt ?? '');
      assert.ok(next >= window.start.getTime() && next <= window.end.getTime(), `${gw.acme.state.nextAttempt} inside the window`);
      assert.deepEqual(gw.events('acme.order_failed'), [], 'nothing ordered before the window');

      // The CA moves the window into the past (say, a revocation): the next check orders at once.
      window = { start: new Date(Date.now() - 2 * H), end: new Date(Date.now() - H) };
      await gw.acme.checkNow();
      assert.equal(asked.length, 2);
      assert.equal(gw.events('acme.order_failed').length, 1, 'an order was attempted (this directory cannot complete one)');
    } finally {
      await gw.close();
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
