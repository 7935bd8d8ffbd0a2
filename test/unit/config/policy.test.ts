import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../../src/config/load.js';
import { insecureSettings } from '../../../src/config/policy.js';

const ROUTES = `
routes:
  - name: api
    host: api.example.com
    upstream: http://127.0.0.1:8000
    auth: none
`;

/** A certificate production accepts, so only the setting under test can produce a finding. */
const GOOD_CERT = {
  subject: 'CN=api.example.com',
  issuer: 'CN=Example CA',
  selfSigned: false,
  developmentCa: false,
  validFrom: new Date(Date.now() - 86_400_000),
  validTo: new Date(Date.now() + 90 * 86_400_000),
  altNames: ['DNS:api.example.com'],
  fingerprint256: 'AA',
  keyMode: 0o600,
};

function findings(yaml: string): string[] {
  const cfg = parseConfig(`${yaml}\n${ROUTES}`, { LOG_HASH_KEY: 'k'.repeat(32) });
  return insecureSettings(cfg, GOOD_CERT).map((f) => f.id);
}

describe('production refuses an admin listener off loopback (docs/configuration.md: "admin binds to 127.0.0.1 only")', () => {
  for (const address of ['0.0.0.0', '::', '10.0.0.5', '192.168.1.10', '::ffff:10.0.0.5', 'gateway.internal']) {
    test(`listen.adminAddress ${address} is a finding`, () => {
      assert.deepEqual(findings(`listen: { adminAddress: "${address}" }`), ['admin-not-loopback']);
    });
  }
  for (const address of ['127.0.0.1', '127.0.0.2', '::1', '::ffff:127.0.0.1', 'localhost']) {
    test(`listen.adminAddress ${address} is fine`, () => {
      assert.deepEqual(findings(`listen: { adminAddress: "${address}" }`), []);
    });
  }
  test('the default is fine', () => {
    assert.deepEqual(findings(''), []);
  });
});
