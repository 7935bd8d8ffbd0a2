import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ariCertId, backoffDelay, parseRenewalInfo, renewalDue, renewalTime } from '../../../src/tls/acme/renewal.js';

const H = 3_600_000;

describe('ACME renewal time', () => {
  test('two thirds of the lifetime (60 days of a 90-day certificate)', () => {
    const from = new Date('2026-01-01T00:00:00Z');
    const to = new Date(from.getTime() + 90 * 24 * H);
    assert.equal(renewalDue(from, to).toISOString(), '2026-03-02T00:00:00.000Z');
    assert.equal(renewalTime(from, to, undefined).toISOString(), '2026-03-02T00:00:00.000Z');
  });

  test('an ARI window that opens earlier wins, at a random point inside it; a later one does not', () => {
    const from = new Date('2026-01-01T00:00:00Z');
    const to = new Date(from.getTime() + 90 * 24 * H);
    const early = { start: new Date('2026-01-10T00:00:00Z'), end: new Date('2026-01-10T10:00:00Z') };
    assert.equal(renewalTime(from, to, early, () => 0.5).toISOString(), '2026-01-10T05:00:00.000Z');
    const late = { start: new Date('2026-03-20T00:00:00Z'), end: new Date('2026-03-21T00:00:00Z') };
    assert.equal(renewalTime(from, to, late, () => 0.5).toISOString(), '2026-03-02T00:00:00.000Z');
  });

  test('renewalInfo answers: a window parsed, anything else ignored', () => {
    assert.deepEqual(parseRenewalInfo({ suggestedWindow: { start: '2026-01-01T00:00:00Z', end: '2026-01-02T00:00:00Z' } }), { start: new Date('2026-01-01T00:00:00Z'), end: new Date('2026-01-02T00:00:00Z') });
    for (const bad of [undefined, {}, { suggestedWindow: { start: 'x', end: 'y' } }, { suggestedWindow: { start: '2026-01-02T00:00:00Z', end: '2026-01-01T00:00:00Z' } }, { suggestedWindow: { start: 1, end: 2 } }]) {
      assert.equal(parseRenewalInfo(bad), undefined, JSON.stringify(bad));
    }
  });

  test('backoff doubles from the first wait and stops at the cap', () => {
    assert.deepEqual([1, 2, 3, 4].map((n) => backoffDelay(n, 1_000, 5_000)), [1_000, 2_000, 4_000, 5_000]);
    assert.equal(backoffDelay(1), 5 * 60_000);
    assert.equal(backoffDelay(100), 6 * H);
  });
});

describe('ARI certificate identifier (RFC 9773 §4.1)', () => {
  test('base64url of the authority key id, a dot, base64url of the serial (a leading zero when its high bit is set)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'crm-gw-ari-'));
    try {
      const run = (args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
      run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-subj', '/CN=ari CA', '-days', '2', '-addext', 'subjectKeyIdentifier=hash']);
      run(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', '/CN=api.acme.test']);
      writeFileSync(join(dir, 'ext'), 'authorityKeyIdentifier=keyid\nsubjectAltName=DNS:api.acme.test\n');
      run(['x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', '0x87654321', '-out', 'leaf.crt', '-days', '1', '-extfile', 'ext']);
      const ski = execFileSync('openssl', ['x509', '-in', join(dir, 'ca.crt'), '-noout', '-ext', 'subjectKeyIdentifier'], { encoding: 'utf8' }).split('\n')[1]?.trim().replace(/:/g, '') ?? '';
      const id = ariCertId(readFileSync(join(dir, 'leaf.crt'), 'utf8'));
      assert.equal(id, `${Buffer.from(ski, 'hex').toString('base64url')}.${Buffer.from('0087654321', 'hex').toString('base64url')}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
