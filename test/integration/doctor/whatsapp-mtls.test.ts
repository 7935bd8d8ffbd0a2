import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runDoctor } from '../../../src/doctor/run.js';
import { makeClientCa, META_CN } from '../../helpers/client-certs.js';
import { tempDir } from '../../helpers/deployment.js';

const CONFIG = `routes:
  - { name: whatsapp-webhook, host: hook.test.local, path: /webhook/whatsapp, upstream: "http://127.0.0.1:8000", auth: whatsapp }
  - { name: crm-api, host: api.test.local, upstream: "http://127.0.0.1:8000", auth: none }
`;

/** The `whatsapp-mtls` lines of a doctor run on a deployment folder with the webhook on a host of its own. */
async function mtlsLines(env: Record<string, string>): Promise<{ status: string; message: string }[]> {
  const dir = tempDir('crm-gw-doctor-mtls-');
  mkdirSync(join(dir, 'config'));
  writeFileSync(join(dir, 'config', 'gateway.yaml'), CONFIG);
  writeFileSync(join(dir, '.env'), '');
  const results = await runDoctor({ cwd: dir, env: { GATEWAY_DOMAIN: 'test.local', ...env }, probeTimeoutMs: 500 });
  return results.filter((r) => r.id === 'whatsapp-mtls');
}

test('doctor says whether webhook client certificates are checked, and FAILs a CA file it cannot use', async () => {
  const meta = makeClientCa('Meta Test Outbound CA');
  const leaf = meta.issue(META_CN);
  const dir = tempDir('crm-gw-doctor-mtls-files-');
  const junk = join(dir, 'junk.pem');
  writeFileSync(junk, 'not a certificate');

  const off = await mtlsLines({});
  assert.equal(off.length, 1);
  assert.equal(off[0]?.status, 'PASS');
  assert.match(String(off[0]?.message), /^off/);

  const on = await mtlsLines({ WHATSAPP_MTLS: 'required', WHATSAPP_MTLS_CA_FILE: meta.caFile });
  assert.equal(on[0]?.status, 'PASS', JSON.stringify(on));
  assert.match(String(on[0]?.message), /required on hook\.test\.local; CA .*Meta Test Outbound CA Root/);

  for (const [file, why] of [
    [join(dir, 'absent.pem'), /cannot read .*ENOENT/],
    [junk, /no PEM certificate/],
    [leaf.certFile, /not a CA certificate/],
  ] as const) {
    const lines = await mtlsLines({ WHATSAPP_MTLS: 'optional', WHATSAPP_MTLS_CA_FILE: file });
    assert.equal(lines[0]?.status, 'FAIL', JSON.stringify(lines));
    assert.match(String(lines[0]?.message), why);
  }
});
