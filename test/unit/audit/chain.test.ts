import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { EMPTY_CHAIN, GENESIS, checkLine, recordJson, seal } from '../../../src/audit/writer/chain.js';
import { openCliAuditLog } from '../../../src/audit/writer/cli-log.js';
import { parseConfig } from '../../../src/config/load.js';
import { tempDir, rawSecurity } from '../../helpers/audit.js';

test('a sealed line checks; any change to it does not', () => {
  const a = seal(recordJson({ time: '2025-01-01T00:00:00.000Z', path: '/x' }), EMPTY_CHAIN);
  const b = seal(recordJson({ time: '2025-01-01T00:00:01.000Z', path: '/y' }), a);
  const ca = checkLine(a.line);
  const cb = checkLine(b.line);
  assert.ok(ca.ok && cb.ok);
  assert.deepEqual([ca.seq, ca.prev, cb.seq, cb.prev], [1, GENESIS, 2, a.hash]);
  assert.deepEqual(checkLine(b.line.replace('/y', '/z')), { ok: false, problem: 'hash-mismatch', seq: 2, prev: a.hash, hash: b.hash });
  assert.equal(checkLine(b.line.slice(0, -5)).ok, false);
});

test('record fields named like the chain fields cannot shadow them', () => {
  const s = seal(recordJson({ seq: 99, prev: 'x', hash: 'y', ok: true }), EMPTY_CHAIN);
  const c = checkLine(s.line);
  assert.ok(c.ok);
  assert.deepEqual([c.seq, c.record._seq, c.record._prev, c.record._hash], [1, 99, 'x', 'y']);
});

test('the CLI writes its admin events to a chain of its own in LOG_DIR', async () => {
  const dir = tempDir('crm-gw-cli-log-');
  try {
    const cfg = parseConfig('routes:\n  - { name: x, host: x.test, upstream: "http://127.0.0.1:9", auth: none }\n', { LOG_DIR: dir, LOG_HASH_KEY: 'cli-test-hash-key-0123456789' });
    const log = await openCliAuditLog(cfg);
    rawSecurity(log)('admin.user_added', { user: 'alice', roles: ['api'], password: 'never' });
    await log.close();
    const file = readdirSync(dir).find((n) => n.startsWith('security.cli-')) as string;
    const text = readFileSync(join(dir, file), 'utf8');
    assert.match(text, /"event":"admin.user_added","user":"alice"/);
    assert.ok(!text.includes('never'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
