import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import { startPebble } from '../helpers/pebble.js';
import { plainGet, servedCertificate, startAcmeGateway } from '../helpers/acme-gateway.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';

// Issue 15, item 1: TLS-ALPN-01 (RFC 8737) on the HTTPS listener, against pebble validating on
// the gateway's HTTPS port.

/** A handshake offering only `protocols`: the certificate got, or the error. */
function handshake(port: number, servername: string, protocols: string[]): Promise<{ fingerprint?: string; alpn?: string | false | null; error?: string }> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername, ALPNProtocols: protocols, rejectUnauthorized: false }, () => {
      const fingerprint = socket.getPeerX509Certificate()?.fingerprint256;
      const alpn = socket.alpnProtocol;
      socket.end();
      resolve({ ...(fingerprint ? { fingerprint } : {}), alpn });
    });
    socket.once('error', (err) => resolve({ error: err.message }));
  });
}

describe('ACME TLS-ALPN-01 against pebble', { timeout: 60_000 }, () => {
  test('issues through the HTTPS listener; ordinary clients never get a challenge certificate', async () => {
    const pebble = await startPebble();
    const gw = await startAcmeGateway({ pebble, hosts: ['api.acme.test', 'nocodb.acme.test'], challenge: 'tls-alpn-01', httpsPort: pebble.tlsPort, httpPort: await freePort() });
    try {
      await waitFor(() => gw.events('acme.certificate_issued').length > 0 || gw.events('acme.order_failed').length > 0, 'the order', 30_000, 50);
      assert.deepEqual(gw.events('acme.order_failed'), []);
      const answered = gw.events('acme.challenge_answered');
      assert.ok(answered.length >= 2 && answered.every((e) => e.type === 'tls-alpn-01'), JSON.stringify(answered));
      const root = await pebble.issuingRoot();
      const served = await servedCertificate(gw.running.ports.https, 'nocodb.acme.test', root);
      assert.equal(served.authorized, true, served.error);
      // No challenge pending now: a validation-shaped hello is closed, not answered with any certificate.
      const probe = await handshake(gw.running.ports.https, 'api.acme.test', ['acme-tls/1']);
      assert.ok(probe.error, JSON.stringify(probe));
      assert.ok(gw.events('acme.challenge_unknown').some((e) => e.host === 'api.acme.test'));
      // A client offering acme-tls/1 among others is an ordinary client: the real certificate.
      const mixed = await handshake(gw.running.ports.https, 'api.acme.test', ['acme-tls/1', 'http/1.1']);
      assert.equal(mixed.fingerprint, served.x509.fingerprint256);
      assert.equal(mixed.alpn, 'http/1.1');
      // HTTP over it still works, and the plain listener still redirects everything.
      const r = await plainGet(gw.running.ports.http, '/.well-known/acme-challenge/AAAAAAAAAAAAAAAAAAAAAAAA', 'api.acme.test');
      assert.equal(r.status, 308, 'with tls-alpn-01 the HTTP-01 path is not exempt');
      assert.equal(gw.upstream.seen.length, 0);
    } finally {
      await gw.close();
      await pebble.stop();
    }
  });
});
