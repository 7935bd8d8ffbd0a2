import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { findUnsafePattern, unsafePatternReason } from '../../../src/openapi/regex-safety.js';
import { ApiSpec } from '../../../src/openapi/spec.js';
import { OpenApiSpecError } from '../../../src/openapi/errors.js';

/**
 * ReDoS at spec load: patterns that can backtrack exponentially (a repeated group holding a
 * repetition, star height above one) are refused with the JSON pointer of the pattern; the
 * common safe shapes, separated repetitions included, load.
 */

const UNSAFE = [
  '^([a-z0-9]+-?)*[a-z0-9]\\.es$',
  '(a+)+',
  '(a*)*b',
  '^(\\w+\\s?)*$',
  '(.*,)*x',
  '^(([a-z])+.)+[A-Z]([a-z])+$',
  '(x+x+)+y',
  '^(\\w+){3}$',
  '(?:[a-z]+|\\d+)*$',
  '(?=(a+)+b)',
];

const SAFE = [
  '^[a-z]{2,16}$',
  '^ES[A-Z0-9]{9}$',
  '^[^@\\s]+@[^@\\s]+$',
  '^[a-z]+(-[a-z]+)*$',
  '^\\d+(\\.\\d+)*$',
  '^(\\d{1,3}\\.){3}\\d{1,3}$',
  '^(?:[A-Z]{2})+$',
  '((a+)b)*',
  '(ab?)*',
  '^(?<word>[a-z]+)\\k<word>$',
  '^\\p{Lu}[\\p{L} \'-]{0,63}$',
  '^(?=.*\\d)[A-Za-z\\d]{8,}$',
  '^\\+?[0-9 ]{6,20}$',
];

describe('regex safety: the shape of a pattern', () => {
  for (const p of UNSAFE) {
    test(`refused: ${p}`, () => assert.match(unsafePatternReason(p) ?? 'safe', /repeated group .* holds the repetition/));
  }
  for (const p of SAFE) {
    test(`loads: ${p}`, () => assert.equal(unsafePatternReason(p), undefined));
  }

  test('a refused pattern really is slow: the check is not guessing', () => {
    const re = new RegExp(UNSAFE[0] as string, 'u');
    const started = performance.now();
    re.test(`${'a'.repeat(24)}!`);
    const slow = performance.now() - started;
    const safe = new RegExp('^[a-z]+(-[a-z]+)*\\.es$', 'u');
    const t2 = performance.now();
    safe.test(`${'a-'.repeat(50_000)}!`);
    assert.ok(slow > performance.now() - t2, 'the unsafe shape on 25 characters costs more than the safe one on 100,000');
  });

  test('a pattern JavaScript cannot compile is left to ajv, which names it', () => {
    assert.equal(unsafePatternReason('(?P<name>x)'), undefined);
  });
});

describe('regex safety: at spec load', () => {
  const spec = (schemas: Record<string, unknown>, body: unknown = { $ref: '#/components/schemas/Domain' }): unknown => ({
    openapi: '3.1.0',
    info: { title: 't', version: '1' },
    paths: { '/domains': { post: { requestBody: { content: { 'application/json': { schema: body } } } } } },
    components: { schemas },
  });

  test('regression: a nested-quantifier pattern stops the spec, naming its JSON pointer and why', () => {
    const doc = spec({ Domain: { type: 'object', properties: { name: { type: 'string', pattern: UNSAFE[0] } } } });
    assert.throws(
      () => ApiSpec.compile(doc, 'crm.json'),
      (err: unknown) => {
        assert.ok(err instanceof OpenApiSpecError);
        assert.match(err.message, /^OpenAPI spec crm\.json: the pattern at #\/components\/schemas\/Domain\/properties\/name\/pattern \("\^\(\[a-z0-9\]\+-\?\)\*\[a-z0-9\]\\\\\.es\$"\) can backtrack exponentially/);
        assert.match(err.message, /repeated group \(\[a-z0-9\]\+-\?\)\* holds the repetition \[a-z0-9\]\+/);
        assert.match(err.message, /or drop it from the spec/);
        return true;
      },
    );
  });

  test('inline schemas, parameters and patternProperties keys are found where they are written', () => {
    const inline = { openapi: '3.0.3', info: { title: 't', version: '1' }, paths: { '/a/{id}': { get: { parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: '(a+)+$' } }] } } } };
    assert.equal(findUnsafePattern(inline)?.pointer, '#/paths/~1a~1{id}/get/parameters/0/schema/pattern');
    const keys = spec({ Tags: { type: 'object', patternProperties: { '^(x+x+)+y$': { type: 'string' } } } });
    assert.equal(findUnsafePattern(keys)?.pointer, '#/components/schemas/Tags/patternProperties/^(x+x+)+y$');
  });

  test('examples, defaults and a property named `default` are data, not patterns', () => {
    const doc = spec({
      Domain: {
        type: 'object',
        example: { pattern: '(a+)+' },
        properties: { default: { type: 'string', pattern: '^[a-z]+$' }, pattern: { type: 'string' } },
      },
    });
    assert.equal(findUnsafePattern(doc), undefined);
    assert.ok(ApiSpec.compile(doc, 'ok.json'));
  });

  test('safe patterns compile and are enforced as before', () => {
    const doc = spec({ Domain: { type: 'object', properties: { slug: { type: 'string', pattern: '^[a-z]+(-[a-z]+)*$' } } } });
    const compiled = ApiSpec.compile(doc, 'ok.json');
    const req = { method: 'POST', path: '/domains', query: '', headers: { 'content-type': 'application/json' } };
    compiled.validate(req, Buffer.from('{"slug":"mi-empresa"}'));
    assert.throws(() => compiled.validate(req, Buffer.from('{"slug":"Mi Empresa"}')), /API_BODY_INVALID/);
  });
});
