import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PIPELINE_ORDER } from '../../../src/app.js';

test('blocks run where DESIGN.md puts them: addresses and routes right after the route match, accounts right after authentication', () => {
  const c = PIPELINE_ORDER.connection;
  assert.equal(c.indexOf('blocks'), c.indexOf('route') + 1, 'blocks right after route');
  const r = PIPELINE_ORDER.route;
  assert.equal(r.indexOf('account-blocks'), r.indexOf('authenticate') + 1, 'account-blocks right after authenticate');
  assert.ok(r.indexOf('account-blocks') < r.indexOf('authorize'));
  assert.ok(r.indexOf('account-blocks') < r.indexOf('user-rate-limit'), 'a blocked account is not charged to the user limit');
});
