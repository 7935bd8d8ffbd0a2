import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSpecDocument, MAX_SPEC_BYTES } from '../../../src/openapi/source.js';
import { OpenApiSpecError } from '../../../src/openapi/errors.js';
import { ApiSpec } from '../../../src/openapi/spec.js';
import { parseConfig } from '../../../src/config/load.js';
import { ConfigError } from '../../../src/config/load.js';

/** Specs from files (JSON, YAML) and URLs (a real local HTTP server), and what a bad one gets. */

let dir: string;
let server: http.Server;
let base: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'crm-gw-spec-'));
  server = http.createServer((req, res) => {
    if (req.url === '/openapi.json') {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ openapi: '3.0.2', info: { title: 't', version: '1' }, paths: { '/x': { get: {} } } }));
    } else if (req.url === '/huge.json') {
      // No Content-Length: the limit must hold as the body streams.
      res.setHeader('content-type', 'application/json');
      const chunk = Buffer.alloc(1024 * 1024, 0x20);
      let sent = 0;
      const more = (): void => {
        while (sent < MAX_SPEC_BYTES + 2 * chunk.length) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', more);
        }
        res.end();
      };
      more();
    } else if (req.url === '/redirect') {
      res.writeHead(302, { location: '/openapi.json' }).end();
    } else res.writeHead(500).end('boom');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

const rejects = (spec: string, message: RegExp): Promise<void> => assert.rejects(loadSpecDocument(spec), (err: unknown) => err instanceof OpenApiSpecError && message.test(err.message));

describe('spec sources', () => {
  test('a YAML file and a JSON URL both load and compile', async () => {
    const file = join(dir, 'spec.yaml');
    writeFileSync(file, 'openapi: 3.1.0\ninfo: { title: t, version: "1" }\npaths:\n  /contacts/{id}:\n    get:\n      parameters:\n        - { name: id, in: path, required: true, schema: { type: integer } }\n');
    assert.equal(ApiSpec.compile(await loadSpecDocument(file), file).operationCount, 1);
    assert.equal(ApiSpec.compile(await loadSpecDocument(`${base}/openapi.json`), base).version, '3.0');
  });

  test('a file that does not parse, or is missing: a clear error', async () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{ "openapi": "3.1.0", ');
    await rejects(bad, /does not parse/);
    await rejects(join(dir, 'nope.yaml'), /cannot read it/);
  });

  test('YAML alias bombs are refused', async () => {
    const bomb = join(dir, 'bomb.yaml');
    const lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]'];
    for (let i = 1; i < 12; i++) lines.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10).fill(`*${String.fromCharCode(96 + i)}`).join(',')}]`);
    writeFileSync(bomb, lines.join('\n'));
    await rejects(bomb, /does not parse/);
  });

  test('URLs: an error status, a redirect and an endless body are refused', async () => {
    await rejects(`${base}/missing`, /answered 500/);
    await rejects(`${base}/redirect`, /cannot fetch it/);
    await rejects(`${base}/huge.json`, /larger than/);
    await rejects('http://127.0.0.1:1/openapi.json', /cannot fetch it/);
  });
});

describe('the route key', () => {
  const yaml = (extra: string): string => `routes:\n  - name: api\n    path: /v1\n    upstream: http://127.0.0.1:8000\n    auth: none\n${extra}`;

  test('openapi: takes a spec and a mode, enforce by default', () => {
    const cfg = parseConfig(yaml('    openapi: { spec: http://127.0.0.1:8000/openapi.json }\n'), {});
    assert.deepEqual(cfg.routes[0]?.openapi, { spec: 'http://127.0.0.1:8000/openapi.json', mode: 'enforce' });
  });

  test('an unknown mode or key, or a webhook route, is a config error', () => {
    assert.throws(() => parseConfig(yaml('    openapi: { spec: a.json, mode: warn }\n'), {}), ConfigError);
    assert.throws(() => parseConfig(yaml('    openapi: { spec: a.json, strict: true }\n'), {}), ConfigError);
    assert.throws(() => parseConfig(yaml('    openapi: { spec: a.json }\n').replace('auth: none', 'auth: whatsapp'), { WHATSAPP_APP_SECRET: 'x'.repeat(32), WHATSAPP_VERIFY_TOKEN: 'y'.repeat(16) }), /openapi validation does not apply to auth: whatsapp/);
  });
});
