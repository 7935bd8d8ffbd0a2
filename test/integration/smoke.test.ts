import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestGateway } from '../helpers/harness.js';

test('a public route forwards to the upstream over TLS and the upstream sees the gateway headers', async (t) => {
  const gw = await startTestGateway(`
  - name: public
    host: api.test.local
    upstream: UPSTREAM
    auth: none
`);
  t.after(() => gw.close());
  const res = await gw.request({ path: '/hello?x=1' });
  assert.equal(res.status, 200);
  assert.equal(gw.upstream.seen.length, 1);
  const seen = gw.upstream.seen[0]!;
  assert.equal(seen.url, '/hello?x=1');
  assert.equal(seen.headers['x-forwarded-proto'], 'https');
  assert.equal(seen.headers['x-request-id'], res.headers['x-request-id']);
  assert.match(String(res.headers['strict-transport-security']), /max-age=31536000; includeSubDomains/);
});
