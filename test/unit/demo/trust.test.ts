import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { trustInstructions } from '../../../src/demo/trust.js';
import { devCaPaths, type CertificateInfo } from '../../../src/tls/certificates.js';

function info(over: Partial<CertificateInfo>): CertificateInfo {
  return { subject: 'CN=localhost', issuer: 'CN=localhost', selfSigned: false, validFrom: new Date(0), validTo: new Date(0), altNames: ['localhost'], developmentCa: false, fingerprint256: '00', keyMode: 0o600, ...over };
}

test('a certificate from the development CA: how to trust that CA once, and curl --cacert', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'crm-gw-demo-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const cert = join(dir, 'cert.pem');
  const ca = devCaPaths(cert).cert;
  writeFileSync(ca, 'a CA certificate');
  const said = trustInstructions(cert, info({ developmentCa: true }));
  assert.equal(said.summary, `certificate from the development CA ${ca}`);
  assert.equal(said.curlTrust, `--cacert ${ca}`);
  assert.match(said.steps, new RegExp(`certutil -d sql:\\$HOME/\\.pki/nssdb -A -t C,, -n crm-gateway-dev -i ${ca.replace(/[.]/g, '\\.')}`));
});

test('the development CA file gone, or an old self-signed certificate: accept it in the browser, curl -k', () => {
  const said = trustInstructions('/nowhere/cert.pem', info({ developmentCa: true, selfSigned: true }));
  assert.match(said.summary, /^certificate \/nowhere\/cert\.pem, self-signed: your browser will ask you to accept it; delete \/nowhere\/cert\.pem and its key/);
  assert.equal(said.steps, '');
  assert.equal(said.curlTrust, '-k');
});

test("an operator's certificate: nothing to trust, nothing to skip", () => {
  assert.deepEqual(trustInstructions('/etc/crm/cert.pem', info({})), { summary: 'certificate /etc/crm/cert.pem', steps: '', curlTrust: '' });
});
