import { test } from 'node:test';
import assert from 'node:assert/strict';
import { judgePersistence, supportsWaitAof } from '../../../src/stores/persistence.js';

test('WAITAOF is known to exist from Redis 7.2 on', () => {
  for (const v of ['7.2.0', '7.2.4', '7.4.1', '8.0.0']) assert.equal(supportsWaitAof(v), true, v);
  for (const v of ['7.0.15', '7.1.9', '6.2.14', undefined, 'garbage']) assert.equal(supportsWaitAof(v), false, String(v));
});

test('persistence verdicts: no AOF is as serious as asked, everysec passes naming its risk, fsync left to the OS warns, unreadable is UNKNOWN', () => {
  assert.equal(judgePersistence({ version: '7.0.15', appendonly: 'no', appendfsync: 'everysec', save: '' }, 'FAIL').status, 'FAIL');
  assert.match(judgePersistence({ version: '7.0.15', appendonly: 'no', appendfsync: 'everysec', save: '3600 1' }, 'WARN').message, /RDB snapshots only \(save "3600 1"\)/);
  const everysec = judgePersistence({ version: '7.0.15', appendonly: 'yes', appendfsync: 'everysec', save: '' }, 'FAIL');
  assert.equal(everysec.status, 'PASS');
  assert.match(everysec.message, /up to about 1 s/);
  assert.equal(judgePersistence({ version: '7.0.15', appendonly: 'yes', appendfsync: 'always', save: '' }, 'FAIL').status, 'PASS');
  assert.equal(judgePersistence({ version: '7.0.15', appendonly: 'yes', appendfsync: 'no', save: '' }, 'FAIL').status, 'WARN');
  const hidden = judgePersistence({ version: undefined, unreadable: "ERR unknown command 'CONFIG'" }, 'FAIL');
  assert.equal(hidden.status, 'UNKNOWN');
  assert.match(hidden.message, /unknown command 'CONFIG'/);
  assert.ok(hidden.fix);
});
