import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiSpec, type ApiRequest } from '../../../src/openapi/spec.js';
import { OpenApiSpecError } from '../../../src/openapi/errors.js';
import { GatewayError, type ErrorCode } from '../../../src/errors.js';
import { MAX_JSON_DEPTH } from '../../../src/openapi/json-body.js';

/**
 * The validator against a hand-written OpenAPI 3.1 spec (and a 3.0 one for its dialect): path
 * templates, enums, $ref, nullable against type lists, required headers, content types, and
 * the pointer each refusal names.
 */

const SPEC_31 = {
  openapi: '3.1.0',
  info: { title: 'CRM', version: '1' },
  servers: [{ url: 'https://crm.example.com/api' }],
  paths: {
    '/contacts': {
      get: {
        parameters: [
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 100 } },
          { name: 'status', in: 'query', schema: { $ref: '#/components/schemas/Status' } },
          { name: 'tag', in: 'query', schema: { type: 'array', items: { type: 'string', maxLength: 10 } } },
          { name: 'ids', in: 'query', explode: false, schema: { type: 'array', items: { type: 'integer' } } },
          { name: 'X-Tenant', in: 'header', required: true, schema: { type: 'string', pattern: '^[a-z]{2,8}$' } },
        ],
      },
      post: {
        parameters: [{ $ref: '#/components/parameters/Tenant' }],
        requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/ContactIn' } } } },
      },
    },
    '/contacts/export': { get: {} },
    '/contacts/{contact_id}': {
      parameters: [{ name: 'contact_id', in: 'path', required: true, schema: { type: 'integer', minimum: 1 } }],
      get: {},
      patch: { requestBody: { content: { 'application/merge-patch+json': { schema: { type: 'object', properties: { phone: { type: ['string', 'null'] } }, additionalProperties: false } } } } },
      delete: {},
    },
    '/files/{name}.{ext}': { get: { parameters: [{ name: 'ext', in: 'path', required: true, schema: { enum: ['pdf', 'png'] } }] } },
    '/attachments': { post: { requestBody: { content: { 'multipart/form-data': { schema: { type: 'object' } } } } } },
    '/tree': { post: { requestBody: { content: { 'application/json': { schema: { $ref: '#/components/schemas/Node' } } } } } },
  },
  components: {
    parameters: { Tenant: { name: 'x-tenant', in: 'header', required: true, schema: { type: 'string' } } },
    schemas: {
      Status: { type: 'string', enum: ['lead', 'customer', 'lost'] },
      ContactIn: {
        type: 'object',
        required: ['name', 'email'],
        additionalProperties: false,
        properties: {
          name: { type: 'string', minLength: 1 },
          email: { type: 'string', format: 'email' },
          status: { $ref: '#/components/schemas/Status' },
          company: { anyOf: [{ $ref: '#/components/schemas/Company' }, { type: 'null' }] },
          tags: { type: 'array', items: { type: 'string' }, example: ['vip'] },
        },
      },
      Company: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } },
      // Recursion through properties is fine: the data ends it.
      Node: { type: 'object', properties: { children: { type: 'array', items: { $ref: '#/components/schemas/Node' } } } },
    },
  },
};

const spec = ApiSpec.compile(SPEC_31, 'spec-31.json');

function req(method: string, pathAndQuery: string, headers: Record<string, string> = {}): ApiRequest {
  const [path, query = ''] = pathAndQuery.split('?') as [string, string?];
  return { method, path, query, headers: { 'x-tenant': 'acme', ...headers } };
}

function refused(code: ErrorCode, pointer: string | undefined, run: () => void): GatewayError {
  let caught: unknown;
  try {
    run();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof GatewayError, `expected ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.equal(caught.pointer, pointer);
  return caught;
}

const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));

describe('paths and methods', () => {
  test('the server URL path is the base: paths outside it are unknown', () => {
    spec.validate(req('GET', '/api/contacts'));
    refused('API_PATH_UNKNOWN', undefined, () => spec.validate(req('GET', '/contacts')));
    refused('API_PATH_UNKNOWN', undefined, () => spec.validate(req('GET', '/api/nothing')));
  });

  test('a concrete path wins over a template; a template takes one non-empty segment', () => {
    assert.equal(spec.match('GET', '/api/contacts/export').operation.template, '/contacts/export');
    assert.equal(spec.match('GET', '/api/contacts/7').operation.template, '/contacts/{contact_id}');
    refused('API_PATH_UNKNOWN', undefined, () => spec.match('GET', '/api/contacts/7/notes'));
    refused('API_PATH_UNKNOWN', undefined, () => spec.match('GET', '/api/contacts/'));
  });

  test('a method the path does not have is 405 with Allow', () => {
    const err = refused('API_METHOD_NOT_ALLOWED', undefined, () => spec.match('PUT', '/api/contacts/7'));
    assert.equal(err.status, 405);
    assert.equal(err.headers.allow, 'GET, DELETE, PATCH');
  });

  test('regression: HEAD is not taken for GET (FastAPI answers 405 to HEAD on a GET route); only a spec listing head allows it', () => {
    const err = refused('API_METHOD_NOT_ALLOWED', undefined, () => spec.match('HEAD', '/api/contacts/7'));
    assert.equal(err.headers.allow, 'GET, DELETE, PATCH');
    const withHead = ApiSpec.compile({ openapi: '3.1.0', info: { title: 't', version: '1' }, paths: { '/x': { get: {}, head: {} } } }, 'head.json');
    assert.equal(withHead.match('HEAD', '/x').operation.method, 'HEAD');
  });

  test('path parameters are decoded, coerced and checked; a segment with two parameters', () => {
    refused('API_PARAMETER_INVALID', '/path/contact_id', () => spec.validate(req('GET', '/api/contacts/abc')));
    refused('API_PARAMETER_INVALID', '/path/contact_id', () => spec.validate(req('GET', '/api/contacts/0')));
    spec.validate(req('GET', '/api/files/report%202026.pdf'));
    refused('API_PARAMETER_INVALID', '/path/ext', () => spec.validate(req('GET', '/api/files/report.exe')));
  });
});

describe('query and header parameters', () => {
  test('query strings are coerced to the declared types and checked', () => {
    spec.validate(req('GET', '/api/contacts?limit=20&status=lead'));
    refused('API_PARAMETER_INVALID', '/query/limit', () => spec.validate(req('GET', '/api/contacts?limit=500')));
    refused('API_PARAMETER_INVALID', '/query/limit', () => spec.validate(req('GET', '/api/contacts?limit=ten')));
    refused('API_PARAMETER_INVALID', '/query/status', () => spec.validate(req('GET', '/api/contacts?status=LEAD')));
  });

  test('a repeated scalar parameter is refused (each framework would read a different one)', () => {
    refused('API_PARAMETER_INVALID', '/query/limit', () => spec.validate(req('GET', '/api/contacts?limit=1&limit=2')));
  });

  test('lists: exploded by repeating the key, not exploded by commas', () => {
    spec.validate(req('GET', '/api/contacts?tag=a&tag=b'));
    spec.validate(req('GET', '/api/contacts?tag=a'));
    refused('API_PARAMETER_INVALID', '/query/tag/1', () => spec.validate(req('GET', '/api/contacts?tag=a&tag=much-too-long')));
    spec.validate(req('GET', '/api/contacts?ids=1,2,3'));
    refused('API_PARAMETER_INVALID', '/query/ids/1', () => spec.validate(req('GET', '/api/contacts?ids=1,x')));
  });

  test('a required header is required, matched without regard to case, and checked', () => {
    refused('API_PARAMETER_INVALID', '/header/x-tenant', () => spec.validate({ method: 'GET', path: '/api/contacts', query: '', headers: {} }));
    refused('API_PARAMETER_INVALID', '/header/x-tenant', () => spec.validate(req('GET', '/api/contacts', { 'x-tenant': 'ACME!' })));
  });
});

describe('bodies', () => {
  const ok = { name: 'Ana', email: 'ana@example.com', status: 'lead', company: null, tags: ['vip'] };
  const post = (body: Buffer | undefined, type = 'application/json'): void => spec.validate(req('POST', '/api/contacts', { 'content-type': type }), body);

  test('a valid body passes; $ref, enum, anyOf with null and formats are checked', () => {
    post(json(ok));
    post(json({ ...ok, company: { name: 'Acme' } }));
    refused('API_BODY_INVALID', '/body/status', () => post(json({ ...ok, status: 'vip' })));
    refused('API_BODY_INVALID', '/body/email', () => post(json({ ...ok, email: 'not-an-address' })));
    refused('API_BODY_INVALID', '/body/company', () => post(json({ ...ok, company: 'Acme' })));
  });

  test('the pointer names a missing or unexpected property, never its value', () => {
    refused('API_BODY_INVALID', '/body/email', () => post(json({ name: 'Ana' })));
    const err = refused('API_BODY_INVALID', '/body/secret', () => post(json({ ...ok, secret: 'hunter2' })));
    assert.ok(!String(err.detail).includes('hunter2'));
    const bad = refused('API_BODY_INVALID', '/body/status', () => post(json({ ...ok, status: 'top-secret-value' })));
    assert.ok(!String(bad.detail).includes('top-secret-value'));
  });

  test('the declared content type is required: others 415; charset parameters are fine', () => {
    post(json(ok), 'application/json; charset=utf-8');
    refused('API_CONTENT_TYPE_UNSUPPORTED', undefined, () => post(json(ok), 'text/plain'));
    refused('API_CONTENT_TYPE_UNSUPPORTED', undefined, () => spec.validate(req('POST', '/api/contacts'), json(ok)));
    refused('API_CONTENT_TYPE_UNSUPPORTED', undefined, () => spec.validate(req('DELETE', '/api/contacts/1', { 'content-type': 'application/json' }), json({})));
  });

  test('a required body that is missing is refused at /body', () => {
    refused('API_BODY_INVALID', '/body', () => post(undefined));
  });

  test('malformed JSON and JSON nested deeper than the limit are 400 API_BODY_MALFORMED', () => {
    refused('API_BODY_MALFORMED', '/body', () => post(Buffer.from('{"name": "Ana",')));
    refused('API_BODY_MALFORMED', '/body', () => post(Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d])));
    const deep = Buffer.from(`${'['.repeat(10_000)}${']'.repeat(10_000)}`);
    const started = performance.now();
    refused('API_BODY_MALFORMED', '/body', () => spec.validate(req('POST', '/api/tree', { 'content-type': 'application/json' }), deep));
    assert.ok(performance.now() - started < 50, 'refused by a scan, quickly');
    // Brackets inside strings are not nesting.
    spec.validate(req('POST', '/api/tree', { 'content-type': 'application/json' }), json({ children: [{ children: [] }], note: '['.repeat(1000) }));
    const nested = (n: number): unknown => (n === 0 ? {} : { children: [nested(n - 1)] });
    spec.validate(req('POST', '/api/tree', { 'content-type': 'application/json' }), json(nested(MAX_JSON_DEPTH / 2 - 1)));
  });

  test('a +json media type is parsed and validated; type lists allow null', () => {
    const patch = (v: unknown): void => spec.validate(req('PATCH', '/api/contacts/3', { 'content-type': 'application/merge-patch+json' }), json(v));
    patch({ phone: null });
    patch({ phone: '+34 600 000 000' });
    refused('API_BODY_INVALID', '/body/phone', () => patch({ phone: 34 }));
    refused('API_CONTENT_TYPE_UNSUPPORTED', undefined, () => spec.validate(req('PATCH', '/api/contacts/3', { 'content-type': 'application/json' }), json({})));
  });

  test('a body of a type not read as JSON is checked for its type only', () => {
    spec.validate(req('POST', '/api/attachments', { 'content-type': 'multipart/form-data; boundary=x' }), Buffer.from('--x--'));
  });
});

describe('OpenAPI 3.0', () => {
  const spec30 = ApiSpec.compile(
    {
      openapi: '3.0.3',
      info: { title: 'x', version: '1' },
      paths: {
        '/deals': {
          post: {
            requestBody: {
              content: {
                'application/json': {
                  schema: {
                    type: 'object',
                    properties: {
                      amount: { type: 'number', minimum: 0, exclusiveMinimum: true },
                      note: { type: 'string', nullable: true },
                      stage: { type: 'string', enum: ['open', 'won'], nullable: true },
                      owner: { allOf: [{ $ref: '#/components/schemas/Owner' }], nullable: true },
                      // Siblings of $ref are ignored in 3.0.
                      kind: { $ref: '#/components/schemas/Kind', maxLength: 1 },
                    },
                    discriminator: { propertyName: 'kind' },
                    example: { amount: 1 },
                  },
                },
              },
            },
          },
        },
      },
      components: { schemas: { Owner: { type: 'object', required: ['id'], properties: { id: { type: 'integer' } } }, Kind: { type: 'string' } } },
    },
    'spec-30.json',
  );
  const post = (v: unknown): void => spec30.validate({ method: 'POST', path: '/deals', query: '', headers: { 'content-type': 'application/json' } }, json(v));

  test('nullable widens the type (and an enum); exclusiveMinimum: true is the 3.0 boolean form', () => {
    post({ amount: 1, note: null, stage: null, owner: null, kind: 'long kind' });
    post({ amount: 1, owner: { id: 3 } });
    refused('API_BODY_INVALID', '/body/amount', () => post({ amount: 0 }));
    refused('API_BODY_INVALID', '/body/owner/id', () => post({ owner: {} }));
    refused('API_BODY_INVALID', '/body/stage', () => post({ stage: 'lost' }));
  });
});

describe('specs that cannot be used', () => {
  const base = { openapi: '3.1.0', info: { title: 'x', version: '1' } };
  const bad = (doc: unknown, message: RegExp): void => assert.throws(() => ApiSpec.compile(doc, 'bad.json'), (err: unknown) => err instanceof OpenApiSpecError && message.test(err.message));

  test('not OpenAPI 3.x', () => {
    bad({ swagger: '2.0', paths: {} }, /not an OpenAPI 3\.0 or 3\.1 document/);
    bad([], /not a JSON or YAML object/);
  });

  test('a $ref loop, directly or through allOf, is refused; a ref to nothing too', () => {
    const loop = (schemas: Record<string, unknown>): unknown => ({ ...base, paths: { '/x': { post: { requestBody: { content: { 'application/json': { schema: { $ref: '#/components/schemas/A' } } } } } } }, components: { schemas } });
    bad(loop({ A: { $ref: '#/components/schemas/B' }, B: { $ref: '#/components/schemas/A' } }), /\$ref loop: #\/components\/schemas\/A → #\/components\/schemas\/B → #\/components\/schemas\/A/);
    bad(loop({ A: { allOf: [{ $ref: '#/components/schemas/A' }] } }), /\$ref loop/);
    bad(loop({}), /\$ref to nothing: #\/components\/schemas\/A/);
    bad({ ...base, paths: { '/x': { get: { parameters: [{ $ref: '#/components/parameters/P' }] } } }, components: { parameters: { P: { $ref: '#/components/parameters/P' } } } }, /\$ref loop/);
  });

  test('remote refs are refused, never fetched', () => {
    bad({ ...base, paths: { '/x': { post: { requestBody: { content: { 'application/json': { schema: { $ref: 'https://evil.example/schema.json' } } } } } } } }, /only local \$refs/);
  });

  test('an invalid schema is a compile error naming it', () => {
    bad({ ...base, paths: { '/x': { post: { requestBody: { content: { 'application/json': { schema: { type: 'int' } } } } } } } }, /does not compile/);
  });

  test('schemas nested absurdly deep stop with an error, not a stack overflow', () => {
    let deep: unknown = { type: 'string' };
    for (let i = 0; i < 5000; i++) deep = { type: 'object', properties: { a: deep } };
    bad({ ...base, paths: { '/x': { post: { requestBody: { content: { 'application/json': { schema: deep } } } } } } }, /nested deeper than/);
  });
});

describe('names that are not plain', () => {
  test('a parameter named __proto__ pollutes nothing; pointers escape / and ~', () => {
    const odd = ApiSpec.compile(
      {
        openapi: '3.1.0',
        info: { title: 'x', version: '1' },
        paths: {
          '/x': {
            post: {
              parameters: [{ name: '__proto__', in: 'query', required: true, schema: { type: 'integer' } }],
              requestBody: { content: { 'application/json': { schema: { type: 'object', properties: { 'a/b~c': { type: 'string' } } } } } },
            },
          },
        },
      },
      'odd.json',
    );
    const post = (query: string, body: unknown): void => odd.validate({ method: 'POST', path: '/x', query, headers: { 'content-type': 'application/json' } }, json(body));
    // The spec compiles and nothing's prototype changed (ajv itself skips a property of that name).
    post('__proto__=1', {});
    assert.equal(Object.getPrototypeOf({}), Object.prototype);
    refused('API_BODY_INVALID', '/body/a~1b~0c', () => post('__proto__=1', { 'a/b~c': 1 }));
  });
});
