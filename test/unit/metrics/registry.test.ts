import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { createMetricsRegistry } from '../../../src/metrics/registry.js';
import { createRequestMetrics } from '../../../src/metrics/requests.js';
import type { RequestContext } from '../../../src/context.js';

const PACKAGE = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

test('a registry has crmgw_build_info (the package version, this Node) and no gauge named like a counter', async () => {
  const text = await createMetricsRegistry().metrics();
  assert.ok(text.includes(`crmgw_build_info{version="${PACKAGE.version}",node="${process.version}"} 1`), text.slice(0, 500));
  assert.match(text, /^crmgw_nodejs_active_handles\{/m, 'the per-type gauge stays');
  assert.doesNotMatch(text, /^crmgw_nodejs_active_(handles|requests|resources)_total\b/m);
});

test('two registries share nothing: the request metrics register on each, and count apart', async () => {
  const a = createRequestMetrics(createMetricsRegistry());
  const b = createRequestMetrics(createMetricsRegistry());
  const reply = (status: number, outcome: string, error?: { code: string; status: number }): RequestContext =>
    ({ kind: 'http', startedAt: performance.now(), route: { name: 'api' }, reply: { status, outcome, error } }) as unknown as RequestContext;
  a.observeRequest(reply(200, 'forwarded'));
  a.observeRequest(reply(403, 'denied', { code: 'IP_DENIED', status: 403 }));
  a.observeRequest(reply(502, 'failed', { code: 'UPSTREAM_UNAVAILABLE', status: 502 }));
  const value = async (m: { get(): Promise<{ values: { labels: object; value: number }[] }> }): Promise<[object, number][]> =>
    (await m.get()).values.map((v) => [v.labels, v.value]);
  assert.deepEqual(await value(a.requestsTotal), [
    [{ route: 'api', status: '200', kind: 'http' }, 1],
    [{ route: 'api', status: '403', kind: 'http' }, 1],
    [{ route: 'api', status: '502', kind: 'http' }, 1],
  ]);
  assert.deepEqual(await value(a.denialsTotal), [[{ reason: 'IP_DENIED' }, 1]]);
  assert.deepEqual(await value(a.upstreamErrors), [[{ route: 'api', reason: 'UPSTREAM_UNAVAILABLE' }, 1]]);
  assert.deepEqual(await value(b.requestsTotal), []);
});
