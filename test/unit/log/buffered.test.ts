import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBufferedLogger } from '../../../src/log/buffered.js';
import { createMemoryLogger } from '../../../src/log/logger.js';

test('lines logged before the real logger exists reach it in order; later lines go straight through', () => {
  const early = createBufferedLogger();
  early.app('warn', 'generated a development certificate', { file: '/tmp/cert.pem' });
  early.access({ requestId: 'r1', status: 200 });
  early.security('request.denied', { requestId: 'r2', code: 'IP_DENIED' });
  assert.deepEqual(
    early.calls.map((c) => c.kind),
    ['app', 'access', 'security'],
  );

  const real = createMemoryLogger();
  early.replayInto(real);
  assert.equal(early.calls.length, 0, 'nothing is replayed twice');
  assert.deepEqual(real.appMessages.map((m) => m.message), ['generated a development certificate']);
  assert.deepEqual(real.accessEntries, [{ requestId: 'r1', status: 200 }]);
  assert.deepEqual(real.securityEvents.map((e) => [e.event, e.code]), [['request.denied', 'IP_DENIED']]);

  early.access({ requestId: 'r3', status: 404 });
  assert.deepEqual(real.accessEntries.at(-1), { requestId: 'r3', status: 404 });
  assert.equal(early.calls.length, 0);
});
