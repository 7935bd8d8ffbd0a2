import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { UpstreamOrigin } from '../../../src/proxy/upstream-urls.js';
import { secureUpstreamHeaders } from '../../../src/proxy/response-headers.js';
import { parseConfig } from '../../../src/config/load.js';
import type { RouteConfig } from '../../../src/config/schema.js';
import type { RequestContext } from '../../../src/context.js';
import { Reply } from '../../../src/reply.js';

// secureUpstreamHeaders (src/proxy/response-headers.ts): what an upstream response may not set.
const UP = 'http://127.0.0.1:8000';

function routes(yaml: string): RouteConfig[] {
  return parseConfig(`routes:\n${yaml}`, {}, 'test').routes;
}

describe('response headers named in the upstream Connection', () => {
  const route = routes(`  - { name: r, host: api.localhost, upstream: ${UP}, auth: none }`)[0] as RouteConfig;
  const ctx = { id: 'req-1', reply: new Reply('req-1', true, { hsts: undefined }) } as unknown as RequestContext;

  test('are removed; the gateway’s own headers and framing stay', () => {
    const headers: IncomingHttpHeaders = {
      connection: 'close, X-Internal, Strict-Transport-Security, content-length, X-Request-Id',
      'x-internal': 'secret',
      'content-length': '2',
      'strict-transport-security': 'max-age=0',
    };
    secureUpstreamHeaders(headers, ctx, route, 'max-age=31536000', { upstream: new UpstreamOrigin(new URL(UP)), connected: '127.0.0.1', view: { scheme: 'https', authority: 'api.localhost', prefix: '' } });
    assert.equal(headers['x-internal'], undefined);
    assert.equal(headers.connection, undefined);
    assert.equal(headers['content-length'], '2');
    assert.equal(headers['strict-transport-security'], 'max-age=31536000');
    assert.equal(headers['x-request-id'], 'req-1');
    assert.equal(headers['x-content-type-options'], 'nosniff');
  });
});
