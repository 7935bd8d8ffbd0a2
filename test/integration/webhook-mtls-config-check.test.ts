import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeClientCa, META_CN } from '../helpers/client-certs.js';
import { runCli, tempDir } from '../helpers/deployment.js';
import { prepare, RefusedToStart } from '../../src/bootstrap.js';
import { loadConfigFile } from '../../src/config/load.js';
import { createMemoryLogger } from '../../src/log/logger.js';
import { readClientCa } from '../../src/tls/client-certs.js';
import { runDoctor } from '../../src/doctor/run.js';

// WHATSAPP_MTLS_CA_FILE that is missing, not PEM, or a leaf: startup, `config check` and doctor
// report it with one message (readClientCa in src/tls/client-certs.ts). The path is relative,
// resolved as every configured file is: against the working directory (doctor: its folder).

const YAML = 'routes:\n  - { name: wa, host: hook.test.local, path: /webhook/whatsapp, upstream: "http://127.0.0.1:1", auth: whatsapp }\n  - { name: api, host: api.test.local, upstream: "http://127.0.0.1:2", auth: none }\n';

describe('WHATSAPP_MTLS_CA_FILE checked by config check, startup and doctor alike', { timeout: 60_000 }, () => {
  test('missing, not PEM, a leaf: one message from all three; a good CA passes config check', async () => {
    const dir = tempDir('crm-gw-mtls-check-');
    const meta = makeClientCa('Meta Outbound Test CA');
    const leaf = meta.issue(META_CN);
    try {
      writeFileSync(join(dir, 'gateway.yaml'), YAML);
      writeFileSync(join(dir, 'not.pem'), 'hello');
      copyFileSync(leaf.certFile, join(dir, 'leaf.pem'));
      copyFileSync(meta.caFile, join(dir, 'meta-ca.pem'));
      const base = { GATEWAY_CONFIG: 'gateway.yaml', GATEWAY_DOMAIN: 'test.local', GATEWAY_ENV: 'development', TLS_CERT_FILE: 'certs/gw.crt', TLS_KEY_FILE: 'certs/gw.key', DATA_DIR: 'data', LOG_DIR: 'logs', WHATSAPP_MTLS: 'required' };
      for (const [file, why] of [['absent.pem', /cannot read absent\.pem \(ENOENT\)/], ['not.pem', /no PEM certificate/], ['leaf.pem', /not a CA certificate/]] as const) {
        const env = { ...base, WHATSAPP_MTLS_CA_FILE: file };
        const cfg = loadConfigFile(join(dir, 'gateway.yaml'), env);
        const message = readClientCa(cfg, join(dir, file)).problem ?? '';
        assert.match(message, why);
        assert.match(message, /^WHATSAPP_MTLS=required but the CA file is unusable: /);

        const cli = await runCli(['config', 'check'], { cwd: dir, env });
        assert.equal(cli.code, 1, `${cli.stdout}${cli.stderr}`);
        assert.ok(cli.stderr.includes(message), `config check says:\n${cli.stderr}\nexpected: ${message}`);
        assert.ok(cli.stderr.includes('[whatsapp-mtls-ca]'), cli.stderr);

        const doctor = (await runDoctor({ cwd: dir, env })).find((r) => r.id === 'whatsapp-mtls');
        assert.equal(doctor?.status, 'FAIL');
        assert.equal(doctor?.message, message);

        const cwd = process.cwd();
        process.chdir(dir);
        try {
          await assert.rejects(prepare(env, createMemoryLogger(), { generateCertificate: false }), (e: unknown) => e instanceof RefusedToStart && e.message.includes(message));
        } finally {
          process.chdir(cwd);
        }
      }
      const ok = await runCli(['config', 'check'], { cwd: dir, env: { ...base, WHATSAPP_MTLS_CA_FILE: 'meta-ca.pem' } });
      assert.equal(ok.code, 0, `${ok.stdout}${ok.stderr}`);
      assert.match(ok.stdout, /config OK: 2 routes/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
