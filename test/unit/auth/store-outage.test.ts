import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isStoreOutage, storeUnavailable, STORE_RETRY_AFTER_S } from '../../../src/auth/store/guarded.js';
import { FAILED_AUTH_CODES } from '../../../src/audit/alerts/rules.js';

test('an account store that does not answer is an outage; the server answering about the query is not', () => {
  const withCode = (code: string, message = code): Error => Object.assign(new Error(message), { code });
  for (const err of [withCode('ECONNREFUSED'), new Error('Connection terminated unexpectedly'), new Error('no answer within 2000 ms'), withCode('57P01', 'terminating connection due to administrator command'), withCode('08006'), withCode('53300')]) {
    assert.equal(isStoreOutage(err), true, err.message);
  }
  for (const err of [withCode('23505', 'duplicate key value'), withCode('42P01', 'relation does not exist')]) assert.equal(isStoreOutage(err), false, err.message);
});

test('AUTH_STORE_UNAVAILABLE is a 503 with Retry-After, and no failed authentication', () => {
  const err = storeUnavailable('account store (postgres) unavailable during getUser: ECONNREFUSED');
  assert.equal(err.status, 503);
  assert.equal(err.headers['retry-after'], String(STORE_RETRY_AFTER_S));
  assert.equal(err.headers['www-authenticate'], undefined);
  assert.ok(!err.publicMessage.includes('ECONNREFUSED'));
  assert.equal(FAILED_AUTH_CODES.has(err.code), false);
});
