import { test } from 'node:test';
import assert from 'node:assert/strict';
import { routeHosts } from '../../../src/routing/route-hosts.js';

test('routeHosts: each named host once, in config order; a route without a host adds none', () => {
  const routes = [{ host: 'b.example' }, { host: undefined }, { host: 'a.example' }, { host: 'b.example' }];
  assert.deepEqual([...routeHosts(routes)], ['b.example', 'a.example']);
  assert.deepEqual([...routeHosts([])], []);
});
